package httptransport

import (
	"errors"
	"maps"
	"mime"
	"net/url"
	"regexp"
	"slices"
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

// rfc3339 is RFC 3339's date-time (§5.6), which the time attribute must
// be: time.Parse is laxer (a ',' before fractions, offsets up to +24:59)
// and refuses the leap second that RFC 3339 allows.
var rfc3339 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$`)

func validTime(s string) bool {
	if !rfc3339.MatchString(s) {
		return false
	}
	_, err := time.Parse(time.DateOnly, s[:len(time.DateOnly)]) // a day of its month
	return err == nil
}

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
		md = message.Metadata{metakey.EventType: attrs["type"], metakey.EventKey: attrs["subject"], metaPublishedAt: attrs["time"]}
		maps.DeleteFunc(md, func(_, v string) bool { return v == "" })
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
