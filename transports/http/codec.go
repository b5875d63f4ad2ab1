package httptransport

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf16"
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

// structuredBody is the event of attrs and data in the CloudEvents JSON
// format, data embedded as JSON, a string or data_base64 as docs/http.md
// tells, so that it reads back byte for byte. It adds to attrs.
func structuredBody(attrs map[string]string, data []byte) []byte {
	media := mediaType(attrs["datacontenttype"])
	embed := len(data) > 0 && isJSONMedia(media) && len(bytes.TrimSpace(data)) == len(data) && json.Valid(data)
	switch {
	case len(data) == 0, embed:
	case strings.HasPrefix(media, "text/") && utf8.Valid(data):
		attrs["data"] = string(data)
	default:
		attrs["data_base64"] = base64.StdEncoding.EncodeToString(data)
	}
	b, _ := json.Marshal(attrs) // a map of strings always marshals
	if embed {
		b = append(append(append(b[:len(b)-1], `,"data":`...), data...), '}')
	}
	return b
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

// metadataJSON is md as a JSON object. With ascii, DEL and every non-ASCII
// character are escaped too, so that it can be an HTTP header value as it
// is: encoding/json has no such mode.
func metadataJSON(md message.Metadata, ascii bool) string {
	if md == nil {
		return "{}"
	}
	b, _ := json.Marshal(md) // a map of strings always marshals
	if !ascii {
		return string(b)
	}
	var out strings.Builder
	out.Grow(len(b))
	for _, r := range string(b) {
		switch {
		case r < utf8.RuneSelf-1:
			out.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&out, `\u%04x`, r)
		}
	}
	return out.String()
}

func parseMetadataJSON(data []byte) (message.Metadata, error) {
	var md map[string]string
	if err := json.Unmarshal(data, &md); err != nil {
		return nil, err
	}
	if md == nil {
		md = make(map[string]string)
	}
	return md, nil
}
