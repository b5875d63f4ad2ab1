package httptransport

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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
	headerID           = "Ce-Id"
	headerSource       = "Ce-Source"
	headerType         = "Ce-Type"
	headerSubject      = "Ce-Subject"
	headerTime         = "Ce-Time"
	headerDataSchema   = "Ce-Dataschema"
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
	set(headerID, ev.id)
	set(headerType, ev.typ)
	if ev.source != s.source {
		set(headerSource, ev.source)
	}
	if ev.dataContentType != s.contentType {
		values = setValue(h, values, headerContentType, ev.dataContentType)
	}
	if ev.dataSchema != "" {
		set(headerDataSchema, ev.dataSchema)
	}
	if ev.subject != "" {
		set(headerSubject, ev.subject)
	}
	if ev.time != "" {
		set(headerTime, ev.time)
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

// structuredBody writes ev in the CloudEvents JSON format; media is the
// media type of its datacontenttype. The payload is embedded as JSON when
// the content type is JSON and the payload is a JSON value with no
// surrounding space (so it reads back byte for byte), as a string when the
// content type is text and the payload UTF-8, and as data_base64 otherwise.
func structuredBody(ev *event, ext []attr, media string) []byte {
	b := make([]byte, 0, structuredSize(ev, ext))
	b = append(b, `{"specversion":"1.0"`...)
	member := func(name, value string) {
		b = append(b, ',')
		b = appendJSONString(b, name, false)
		b = append(b, ':')
		b = appendJSONString(b, value, false)
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
	if len(ev.data) > 0 {
		switch {
		case isJSONMedia(media) && embeddableJSON(ev.data):
			b = append(b, `,"data":`...)
			b = append(b, ev.data...)
		case strings.HasPrefix(media, "text/") && utf8.Valid(ev.data):
			member("data", string(ev.data))
		default:
			b = append(b, `,"data_base64":"`...)
			b = base64.StdEncoding.AppendEncode(b, ev.data)
			b = append(b, '"')
		}
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

func embeddableJSON(p []byte) bool {
	return len(bytes.TrimSpace(p)) == len(p) && json.Valid(p)
}

func mediaType(contentType string) string {
	if contentType == "" {
		return ""
	}
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

// decodeRequest reads a message for topic in any of the three formats:
// structured mode by its Content-Type, binary mode by its ce-specversion
// header, raw otherwise.
func decodeRequest(topic string, h http.Header, body []byte) (*message.Message, error) {
	media := mediaType(h.Get(headerContentType))
	switch {
	case media == mediaStructured:
		return decodeStructured(topic, body)
	case strings.HasPrefix(media, "application/cloudevents"):
		return nil, &requestError{status: http.StatusUnsupportedMediaType,
			reason: "unsupported CloudEvents format " + media + ": only " + mediaStructured + " (no batches)"}
	case !isRaw(h):
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
		// Header names are case-insensitive: lower-cased, an attribute name
		// has only a-z and 0-9.
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
	for _, name := range contextAttributes {
		if raw, ok := doc[name]; ok && string(raw) != "null" {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, badRequest("%s must be a string", name)
			}
			attrs[name] = s
		}
	}
	if err := checkRequired(attrs); err != nil {
		return nil, err
	}
	data, hasData := doc["data"]
	data64, hasData64 := doc["data_base64"]
	if hasData && hasData64 {
		return nil, badRequest("data and data_base64 are exclusive")
	}
	var payload []byte
	switch {
	case hasData64:
		var s string
		if err := json.Unmarshal(data64, &s); err != nil {
			return nil, badRequest("data_base64 must be a string")
		}
		p, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, badRequest("data_base64: %v", err)
		}
		payload = p
	case hasData && string(data) != "null":
		// JSON data (or no datacontenttype, which means JSON in this format)
		// is the JSON text itself; a string of another type is its content.
		media := mediaType(attrs["datacontenttype"])
		if media != "" && !isJSONMedia(media) && len(data) > 0 && data[0] == '"' {
			var s string
			if err := json.Unmarshal(data, &s); err != nil {
				return nil, badRequest("data: %v", err)
			}
			payload = []byte(s)
		} else {
			payload = bytes.Clone(data)
		}
	}
	for name, raw := range doc {
		if name == "data" || name == "data_base64" || slices.Contains(contextAttributes, name) {
			continue
		}
		if !validExtensionName(name) {
			return nil, badRequest("%q %s", name, errExtensionName)
		}
		v, ok, err := extensionValue(raw)
		if err != nil {
			return nil, badRequest("extension %s: %v", name, err)
		}
		if ok {
			attrs[name] = v
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

// extensionValue is an extension's canonical string: a string as it is, a
// number or a boolean as its JSON text. null means absent.
func extensionValue(raw json.RawMessage) (string, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, err
		}
		return s, true, nil
	case '{', '[':
		return "", false, errors.New("must be a string, a number or a boolean")
	}
	return string(raw), true, nil
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
