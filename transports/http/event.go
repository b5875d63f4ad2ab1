package httptransport

import (
	"errors"
	"maps"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/internal/metakey"
)

// metaPublishedAt is the bus's published_at metadata key (a constant in
// package bus, which transports never import).
const metaPublishedAt = "published_at"

// Metadata keys of the attributes that have none of their own: a Receiver
// sets them, a Publisher sends them as those attributes, so that an event
// relayed Receiver → bus → Publisher keeps them.
const (
	metaSource          = "ce_source"
	metaDataContentType = "ce_datacontenttype"
	metaDataSchema      = "ce_dataschema"
	// metaTopic holds a topic extension that is not the topic the Receiver
	// delivers the event to.
	metaTopic = "ce_topic"
)

// The extension attributes of our own.
const (
	// extTopic carries the topic, which also travels in the URL.
	extTopic = "topic"
	// extMetadata carries the exact metadata, as a JSON object of strings,
	// when the attributes cannot.
	extMetadata = "switchyardmetadata"
	// maxExtName is the longest extension name the CloudEvents spec advises.
	maxExtName = 20
)

// contextAttributes are those of CloudEvents 1.0: every other attribute is
// an extension.
var contextAttributes = []string{"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema"}

// reserved are the names an extension may not take: the context
// attributes, the JSON format's data members, and ours.
var reserved = append(slices.Clip(contextAttributes), "data", "data_base64", extTopic, extMetadata)

var errInvalidUTF8 = errors.New("metadata or UUID is not valid UTF-8: CloudEvents attributes and JSON carry only Unicode text")

// checkMessage reports what no format can send: a message without UUID
// (which travels as idName), or with metadata that is not UTF-8.
func checkMessage(msg *message.Message, idName string) error {
	if msg.UUID == "" {
		return errors.New("message has no UUID: it is the " + idName)
	}
	if !utf8.ValidString(msg.UUID) {
		return errInvalidUTF8
	}
	for k, v := range msg.Metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return errInvalidUTF8
		}
	}
	return nil
}

// newEvent returns the CloudEvents attributes of msg by name, mapped as
// docs/http.md tells: when they do not give back exactly the metadata (see
// metadataFromAttributes), it also travels whole in switchyardmetadata.
func newEvent(topic string, msg *message.Message, cfg *Config) (map[string]string, error) {
	if err := checkMessage(msg, "CloudEvents id"); err != nil {
		return nil, err
	}
	md := msg.Metadata
	attrs := map[string]string{
		"specversion": "1.0", "id": msg.UUID, "source": cfg.Source, "type": cfg.EventType, "datacontenttype": cfg.ContentType,
	}
	// exact: the attributes alone give back md. Without event_type, the
	// receiver would read the default type as one.
	exact := md[metakey.EventType] != ""
	take := func(key, attribute string, valid func(string) bool) {
		if v, ok := md[key]; ok {
			if valid(v) {
				attrs[attribute] = v
			} else {
				exact = false
			}
		}
	}
	nonEmpty := func(v string) bool { return v != "" }
	take(metakey.EventType, "type", nonEmpty)
	take(metakey.EventKey, "subject", nonEmpty)
	take(metaPublishedAt, "time", validTime)
	take(metaSource, "source", nonEmpty)
	take(metaDataContentType, "datacontenttype", validMediaType)
	take(metaDataSchema, "dataschema", validAbsoluteURI)
	if v, ok := md[metaTopic]; ok {
		// A relayed event's own topic extension: the Receiver reads it back
		// as ce_topic only when it is not the topic it delivers to.
		attrs[extTopic] = v
		exact = exact && v != topic
	} else if topic != "" {
		attrs[extTopic] = topic
	}
	// Sorted, so that when two keys map to one name the same one wins.
	for _, k := range slices.Sorted(maps.Keys(md)) {
		switch k {
		case metakey.EventType, metakey.EventKey, metaPublishedAt, metaSource, metaDataContentType, metaDataSchema, metaTopic:
			continue
		}
		name := extensionName(k)
		if _, taken := attrs[name]; taken || name == "" || len(name) > maxExtName || slices.Contains(reserved, name) {
			exact = false
			continue
		}
		exact = exact && name == k
		attrs[name] = md[k]
	}
	if !exact {
		attrs[extMetadata] = metadataJSON(md, false)
	}
	return attrs, nil
}

// extensionName maps a metadata key to a CloudEvents extension name: ASCII
// letters lower-cased, digits kept, everything else dropped.
func extensionName(key string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, key)
}

// validExtensionName reports whether name may name a CloudEvents attribute:
// one or more of a-z and 0-9. Names over maxExtName are accepted.
func validExtensionName(name string) bool {
	return name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789") == ""
}

func validMediaType(v string) bool {
	_, _, err := mime.ParseMediaType(v)
	return err == nil && !strings.ContainsAny(v, "\r\n")
}

func validAbsoluteURI(v string) bool {
	u, err := url.Parse(v)
	return err == nil && u.Scheme != ""
}

// validTime reports whether s is an RFC 3339 timestamp (§5.6), as the time
// attribute must be. time.Parse is laxer (a ',' before fractions, offsets up
// to +24:59) and refuses a leap second, which RFC 3339 allows; a regexp
// costs several times as much on every published message
// (BenchmarkValidTime).
func validTime(s string) bool {
	if len(s) < 20 {
		return false
	}
	for i, c := range []byte(s[:19]) {
		switch want := "0000-00-00T00:00:00"[i]; {
		case want == '0' && !isDigit(c), want == 'T' && c != 'T' && c != 't', want != '0' && want != 'T' && c != want:
			return false
		}
	}
	zone := s[19:]
	if zone[0] == '.' {
		n := 1
		for n < len(zone) && isDigit(zone[n]) {
			n++
		}
		if n == 1 {
			return false
		}
		zone = zone[n:]
	}
	offset := len(zone) == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':' &&
		isDigit(zone[1]) && isDigit(zone[2]) && isDigit(zone[4]) && isDigit(zone[5]) && zone[1:3] <= "23" && zone[4:] <= "59"
	if !offset && zone != "Z" && zone != "z" {
		return false
	}
	year, _ := strconv.Atoi(s[:4])
	month, _ := strconv.Atoi(s[5:7])
	day, _ := strconv.Atoi(s[8:10])
	return month >= 1 && month <= 12 && day >= 1 && time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC).Day() == day &&
		s[11:13] <= "23" && s[14:16] <= "59" && s[17:19] <= "60"
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// metadataFromAttributes is the metadata a received event carries: that of
// switchyardmetadata, or else the attributes mapped back as newEvent maps
// them; plus, unless set already, ce_source, ce_datacontenttype,
// ce_dataschema, and ce_topic from a topic extension that is not the topic
// the Receiver delivers to (a third party's).
func metadataFromAttributes(topic string, attrs map[string]string) (message.Metadata, error) {
	var md message.Metadata
	if raw, ok := attrs[extMetadata]; ok {
		var err error
		if md, err = parseMetadataJSON([]byte(raw)); err != nil {
			return nil, errors.New("switchyardmetadata: " + err.Error())
		}
	} else {
		md = make(message.Metadata, len(attrs))
		md[metakey.EventType] = attrs["type"]
		if v := attrs["subject"]; v != "" {
			md[metakey.EventKey] = v
		}
		if v := attrs["time"]; v != "" {
			md[metaPublishedAt] = v
		}
		for name, v := range attrs {
			if name != extTopic && !slices.Contains(contextAttributes, name) {
				md[name] = v
			}
		}
	}
	setIfAbsent := func(k, v string) {
		if _, ok := md[k]; !ok && v != "" {
			md[k] = v
		}
	}
	setIfAbsent(metaSource, attrs["source"])
	setIfAbsent(metaDataContentType, attrs["datacontenttype"])
	setIfAbsent(metaDataSchema, attrs["dataschema"])
	if v, ok := attrs[extTopic]; ok && v != topic {
		if _, ok := md[metaTopic]; !ok {
			md[metaTopic] = v
		}
	}
	return md, nil
}
