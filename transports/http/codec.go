package httptransport

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Media types and headers (in canonical form) of the wire formats.
const (
	mediaStructured    = "application/cloudevents+json"
	headerContentType  = "Content-Type"
	headerSpecVersion  = "Ce-Specversion"
	headerRawID        = "Switchyard-Id"
	headerRawMetadata  = "Switchyard-Metadata"
	headerSignature    = "Switchyard-Signature"
	headerTopic        = "Switchyard-Topic"
	headerRetryAfter   = "Retry-After"
	headerAuthenticate = "Www-Authenticate"
)

// setBinaryHeaders sets the ce-* headers of ev but specversion, and source
// and Content-Type when they are s's, which a Publisher sets once for all.
// The values are appended to values, whose backing array they share.
func setBinaryHeaders(h http.Header, ev *event, ext []attr, s *eventSettings, values []string) {
	set := func(name, value string) { values = setValue(h, values, name, percentEncode(value)) }
	set("Ce-Id", ev.id)
	set("Ce-Type", ev.typ)
	if ev.source != s.source {
		set("Ce-Source", ev.source)
	}
	if ev.dataContentType != s.contentType {
		values = setValue(h, values, headerContentType, ev.dataContentType)
	}
	for _, a := range [...]attr{{"Ce-Dataschema", ev.dataSchema}, {"Ce-Subject", ev.subject}, {"Ce-Time", ev.time}} {
		if a.value != "" {
			set(a.name, a.value)
		}
	}
	for _, a := range ext {
		set(extensionHeader(a.name), a.value)
	}
}

// extensionHeaders caches the header names of the first maxCachedNames
// extensions seen: an application's metadata keys.
var (
	extensionHeaders     sync.Map // name → "Ce-Name"
	extensionHeaderCount atomic.Int32
)

const maxCachedNames = 1024

// extensionHeader is the canonical header name of an extension.
func extensionHeader(name string) string {
	if h, ok := extensionHeaders.Load(name); ok {
		return h.(string)
	}
	h := textproto.CanonicalMIMEHeaderKey("ce-" + name)
	if extensionHeaderCount.Add(1) <= maxCachedNames {
		extensionHeaders.Store(name, h)
	}
	return h
}

// structuredBody writes ev in the CloudEvents JSON format, specversion
// first; media is the media type of its datacontenttype. The data is
// embedded as JSON, a string or data_base64 as docs/http.md tells, so that
// it reads back byte for byte.
func structuredBody(ev *event, ext []attr, media string) []byte {
	b := make([]byte, 0, structuredSize(ev, ext))
	b = append(b, `{"specversion":"1.0"`...)
	member := func(name, value string) {
		b = appendJSONString(append(appendJSONString(append(b, ','), name, false), ':'), value, false)
	}
	member("id", ev.id)
	member("source", ev.source)
	member("type", ev.typ)
	for _, a := range [...]attr{{"subject", ev.subject}, {"time", ev.time}, {"datacontenttype", ev.dataContentType}, {"dataschema", ev.dataSchema}} {
		if a.value != "" {
			member(a.name, a.value)
		}
	}
	for _, a := range ext {
		member(a.name, a.value)
	}
	switch data := ev.data; {
	case len(data) == 0:
	case isJSONMedia(media) && len(bytes.TrimSpace(data)) == len(data) && json.Valid(data):
		b = append(append(b, `,"data":`...), data...)
	case strings.HasPrefix(media, "text/") && !isJSONMedia(media) && utf8.Valid(data):
		// Not text/json and the like: their data is read back as JSON, and
		// a string would keep its quotes.
		member("data", string(data))
	default:
		b = append(base64.StdEncoding.AppendEncode(append(b, `,"data_base64":"`...), data), '"')
	}
	return append(b, '}')
}

// structuredSize is the length of ev's structured body if nothing is
// escaped, and a little more: one allocation holds it.
func structuredSize(ev *event, ext []attr) int {
	// The members' names, quotes, colons, commas and braces.
	n := len(`{"specversion":"1.0","id":"","source":"","type":"","subject":"","time":"","datacontenttype":"","dataschema":"","data_base64":""}`)
	n += len(ev.id) + len(ev.source) + len(ev.typ) + len(ev.subject) + len(ev.time) + len(ev.dataContentType) + len(ev.dataSchema)
	for _, a := range ext {
		n += len(a.name) + len(a.value) + len(`,"":""`)
	}
	n += max(len(ev.data)+2, base64.StdEncoding.EncodedLen(len(ev.data)))
	return n + n/16
}

func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(contentType))
	}
	return mt
}

func isJSONMedia(mt string) bool {
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// requestError is a request the Receiver rejects: Status is the answer.
type requestError struct {
	status int
	reason string
}

func (e *requestError) Error() string { return e.reason }

func badRequest(format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, reason: fmt.Sprintf(format, args...)}
}

// decodeRequest reads a message for topic in any of the three formats.
func decodeRequest(topic string, h http.Header, body []byte) (*message.Message, error) {
	switch media := mediaType(h.Get(headerContentType)); {
	case media == mediaStructured:
		return decodeStructured(topic, body)
	case strings.HasPrefix(media, "application/cloudevents"):
		return nil, &requestError{status: http.StatusUnsupportedMediaType,
			reason: "unsupported CloudEvents format " + media + ": only " + mediaStructured + " (no batches)"}
	case len(h[headerSpecVersion]) > 0:
		return decodeBinary(topic, h, body)
	}
	return decodeRaw(h, body)
}

// isRaw reports whether decodeRequest reads a request with header h as raw.
func isRaw(h http.Header) bool {
	return !strings.HasPrefix(mediaType(h.Get(headerContentType)), "application/cloudevents") &&
		len(h[headerSpecVersion]) == 0
}

const errExtensionName = "is not a CloudEvents attribute name (only a-z and 0-9)"

func decodeBinary(topic string, h http.Header, body []byte) (*message.Message, error) {
	attrs := make(map[string]string, len(h))
	for k, vs := range h {
		if len(k) <= 3 || !strings.EqualFold(k[:3], "ce-") || len(vs) == 0 {
			continue
		}
		v, err := headerValue(vs[0])
		if err != nil {
			return nil, badRequest("header %s: %v", k, err)
		}
		// Header names are case-insensitive: lower-case them.
		name := strings.ToLower(k[3:])
		if !validExtensionName(name) {
			return nil, badRequest("header %s: %q %s", k, name, errExtensionName)
		}
		attrs[name] = v
	}
	// Content-Type is datacontenttype in binary mode.
	delete(attrs, "datacontenttype")
	if err := checkRequired(attrs); err != nil {
		return nil, err
	}
	if ct := h.Get(headerContentType); ct != "" {
		// It becomes metadata, which must be UTF-8 to travel on.
		if !utf8.ValidString(ct) {
			return nil, badRequest("Content-Type is not valid UTF-8")
		}
		attrs["datacontenttype"] = ct
	}
	return receivedMessage(topic, attrs, body)
}

func checkRequired(attrs map[string]string) error {
	if spec := attrs["specversion"]; spec != "1.0" {
		return badRequest("specversion must be 1.0, got %q", spec)
	}
	if attrs["id"] == "" || attrs["source"] == "" || attrs["type"] == "" {
		return badRequest("id, source and type are required")
	}
	if t := attrs["time"]; t != "" && !validTime(t) {
		return badRequest("time is not an RFC 3339 timestamp")
	}
	return nil
}

func decodeStructured(topic string, body []byte) (*message.Message, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, badRequest("not a CloudEvents JSON document: %v", err)
	}
	attrs := make(map[string]string, len(doc))
	for _, name := range slices.Sorted(maps.Keys(doc)) {
		raw := doc[name]
		if name == "data" || name == "data_base64" || string(raw) == "null" {
			continue
		}
		if !validExtensionName(name) {
			return nil, badRequest("%q %s", name, errExtensionName)
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			// An extension may also be a number or a boolean: its JSON text.
			switch {
			case slices.Contains(contextAttributes, name):
				return nil, badRequest("%s must be a string", name)
			case raw[0] == '{' || raw[0] == '[':
				return nil, badRequest("extension %s: must be a string, a number or a boolean", name)
			}
			v = string(raw)
		}
		attrs[name] = v
	}
	if err := checkRequired(attrs); err != nil {
		return nil, err
	}
	data, hasData := doc["data"]
	data64, hasData64 := doc["data_base64"]
	var payload []byte
	switch {
	case hasData && hasData64:
		return nil, badRequest("data and data_base64 are exclusive")
	case hasData64:
		if err := json.Unmarshal(data64, &payload); err != nil { // base64 into []byte
			return nil, badRequest("data_base64: %v", err)
		}
	case hasData && string(data) != "null":
		// JSON data (or no datacontenttype, which means JSON in this format)
		// is the JSON text itself; a string of another type is its content.
		payload = bytes.Clone(data)
		if media := mediaType(attrs["datacontenttype"]); media != "" && !isJSONMedia(media) && data[0] == '"' {
			var s string
			if err := json.Unmarshal(data, &s); err != nil {
				return nil, badRequest("data: %v", err)
			}
			payload = []byte(s)
		}
	}
	return receivedMessage(topic, attrs, payload)
}

// receivedMessage makes the message of a received event.
func receivedMessage(topic string, attrs map[string]string, payload []byte) (*message.Message, error) {
	md, err := metadataFromAttributes(topic, attrs)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	msg := message.NewMessage(attrs["id"], payload)
	msg.Metadata = md
	return msg, nil
}

func decodeRaw(h http.Header, body []byte) (*message.Message, error) {
	id := watermill.NewUUID()
	if v := h.Get(headerRawID); v != "" {
		d, err := headerValue(v)
		if err != nil {
			return nil, badRequest("%s: %v", headerRawID, err)
		}
		id = d
	}
	msg := message.NewMessage(id, body)
	if v := h.Get(headerRawMetadata); v != "" {
		md, err := parseMetadataJSON([]byte(v))
		if err != nil {
			return nil, badRequest("%s: %v", headerRawMetadata, err)
		}
		msg.Metadata = md
	}
	return msg, nil
}
