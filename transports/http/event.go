package httptransport

import (
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
)

// The metadata keys the bus uses (constants in package bus, which transports
// never import).
const (
	metaEventType   = "event_type"
	metaEventKey    = "event_key"
	metaPublishedAt = "published_at"
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

// reserved are the names an extension may not take: the context attributes
// of CloudEvents 1.0, the JSON format's data members, and ours.
var reserved = []string{
	"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema",
	"data", "data_base64", extTopic, extMetadata,
}

// event is a CloudEvent as this package writes it: every attribute is a
// string, as in the HTTP binding.
type event struct {
	id, source, typ, subject, time, dataContentType string
	// ext is sorted by name, names unique.
	ext  []attr
	data []byte
}

type attr struct{ name, value string }

// eventSettings are what a Publisher adds to a message to make an event.
type eventSettings struct {
	source, defaultType, contentType string
}

var errInvalidUTF8 = errors.New("metadata or UUID is not valid UTF-8: CloudEvents attributes and JSON carry only Unicode text")

// newEvent returns the CloudEvent of msg: id is the UUID, type the event_type
// (or the default), subject the event_key, time the published_at; every other
// metadata key whose lower-cased alphanumerics make a free extension name
// travels as that extension. When those attributes do not give back exactly
// the metadata, the metadata also travels whole in switchyardmetadata.
//
// ext is where the extensions go, appended from ext[:0], so that one
// allocation the caller sizes holds them all. The event is returned by value:
// escape analysis sends anything stored through a pointer to the heap.
func newEvent(topic string, msg *message.Message, s eventSettings, ext []attr) (event, error) {
	if msg.UUID == "" {
		return event{}, errors.New("message has no UUID: it is the CloudEvents id")
	}
	if !utf8.ValidString(msg.UUID) {
		return event{}, errInvalidUTF8
	}
	md := msg.Metadata
	ev := event{
		id:              msg.UUID,
		source:          s.source,
		typ:             s.defaultType,
		dataContentType: s.contentType,
		data:            msg.Payload,
	}
	ev.ext = ext[:0]
	// exact: the attributes alone give back md (see metadataFromAttributes).
	exact := true
	if v, ok := md[metaEventType]; ok && v != "" {
		ev.typ = v
	} else {
		exact = false // the receiver would read the default type as event_type
	}
	if v, ok := md[metaEventKey]; ok {
		ev.subject = v
		exact = exact && v != ""
	}
	if v, ok := md[metaPublishedAt]; ok {
		if validTime(v) {
			ev.time = v
		} else {
			exact = false
		}
	}
	if topic != "" {
		ev.ext = append(ev.ext, attr{extTopic, topic})
	}
	var keysBuf [8]string
	keys := keysBuf[:0]
	for k, v := range md {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return event{}, errInvalidUTF8
		}
		if k != metaEventType && k != metaEventKey && k != metaPublishedAt {
			keys = append(keys, k)
		}
	}
	// Sorted, so that when two keys map to one name the same one wins.
	slices.Sort(keys)
	for _, k := range keys {
		name := extensionName(k)
		if name == "" || len(name) > maxExtName || slices.Contains(reserved, name) || hasAttr(ev.ext, name) {
			exact = false
			continue
		}
		exact = exact && name == k
		ev.ext = append(ev.ext, attr{name, md[k]})
	}
	if !exact {
		ev.ext = append(ev.ext, attr{extMetadata, string(appendMetadataJSON(nil, md, false))})
	}
	slices.SortFunc(ev.ext, func(a, b attr) int { return strings.Compare(a.name, b.name) })
	return ev, nil
}

func hasAttr(attrs []attr, name string) bool {
	for _, a := range attrs {
		if a.name == name {
			return true
		}
	}
	return false
}

// extensionName maps a metadata key to a CloudEvents extension name: ASCII
// letters lower-cased, digits kept, everything else dropped.
func extensionName(key string) string {
	ok := true
	for i := 0; i < len(key); i++ {
		if c := key[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			ok = false
			break
		}
	}
	if ok {
		return key
	}
	b := make([]byte, 0, len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		}
	}
	return string(b)
}

// validTime reports whether s is an RFC 3339 timestamp, as the time attribute
// must be.
func validTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// metadataFromAttributes is the metadata a received event carries: the exact
// metadata of switchyardmetadata when present; otherwise event_type from
// type, event_key from subject, published_at from time and one key per
// extension but topic. source, specversion, datacontenttype and dataschema
// are not copied.
func metadataFromAttributes(typ, subject, t string, ext map[string]string) (message.Metadata, error) {
	if raw, ok := ext[extMetadata]; ok {
		md, err := parseMetadataJSON([]byte(raw))
		if err != nil {
			return nil, errors.New("switchyardmetadata: " + err.Error())
		}
		return md, nil
	}
	md := make(message.Metadata, 3+len(ext))
	md[metaEventType] = typ
	if subject != "" {
		md[metaEventKey] = subject
	}
	if t != "" {
		md[metaPublishedAt] = t
	}
	for name, v := range ext {
		if name != extTopic {
			md[name] = v
		}
	}
	return md, nil
}
