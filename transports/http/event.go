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

// event is a CloudEvent as this package writes it, every attribute a string.
// Its extensions travel beside it, as a []attr sorted by name, on the
// caller's stack: held in the event, they would follow it to the heap.
type event struct {
	id, source, typ, subject, time, dataContentType, dataSchema string
	data                                                        []byte
}

type attr struct{ name, value string }

// eventSettings are what a Publisher adds to a message to make an event.
type eventSettings struct {
	source, defaultType, contentType string
	// media is contentType's media type, when known.
	media string
}

// newEvent returns the CloudEvent of msg, mapped as docs/http.md tells:
// when the attributes do not give back exactly the metadata (see
// metadataFromAttributes), it also travels whole in switchyardmetadata.
// The extensions are appended to ext[:0], which the caller keeps on its
// stack, and the event is returned by value, for no allocation.
func newEvent(topic string, msg *message.Message, s eventSettings, ext []attr) (event, []attr, error) {
	if err := checkMessage(msg, "CloudEvents id"); err != nil {
		return event{}, nil, err
	}
	md := msg.Metadata
	ev := event{id: msg.UUID, source: s.source, typ: s.defaultType, dataContentType: s.contentType, data: msg.Payload}
	ext = ext[:0]
	// exact: the attributes alone give back md. Without event_type, the
	// receiver would read the default type as one.
	exact := md[metakey.EventType] != ""
	take := func(key string, valid func(string) bool, attribute *string) {
		if v, ok := md[key]; ok {
			if valid(v) {
				*attribute = v
			} else {
				exact = false
			}
		}
	}
	nonEmpty := func(v string) bool { return v != "" }
	take(metakey.EventType, nonEmpty, &ev.typ)
	take(metakey.EventKey, nonEmpty, &ev.subject)
	take(metaPublishedAt, validTime, &ev.time)
	take(metaSource, nonEmpty, &ev.source)
	take(metaDataContentType, validMediaType, &ev.dataContentType)
	take(metaDataSchema, validAbsoluteURI, &ev.dataSchema)
	if v, ok := md[metaTopic]; ok {
		// A relayed event's own topic extension: the Receiver reads it back
		// as ce_topic only when it is not the topic it delivers to.
		ext = append(ext, attr{extTopic, v})
		exact = exact && v != topic
	} else if topic != "" {
		ext = append(ext, attr{extTopic, topic})
	}
	var keysBuf [8]string
	keys := keysBuf[:0]
	for k := range md {
		switch k {
		case metakey.EventType, metakey.EventKey, metaPublishedAt, metaSource, metaDataContentType, metaDataSchema, metaTopic:
		default:
			keys = append(keys, k)
		}
	}
	// Sorted, so that when two keys map to one name the same one wins.
	slices.Sort(keys)
	for _, k := range keys {
		name := extensionName(k)
		if name == "" || len(name) > maxExtName || slices.Contains(reserved, name) || hasAttr(ext, name) {
			exact = false
			continue
		}
		exact = exact && name == k
		ext = append(ext, attr{name, md[k]})
	}
	if !exact {
		ext = append(ext, attr{extMetadata, metadataJSONString(md, false)})
	}
	slices.SortFunc(ext, func(a, b attr) int { return strings.Compare(a.name, b.name) })
	return ev, ext, nil
}

func hasAttr(attrs []attr, name string) bool {
	return slices.ContainsFunc(attrs, func(a attr) bool { return a.name == name })
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
