package httptransport

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/netip"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPercentEncoding(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"typing", "typing"},
		{"Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"}, // the binding's own example
		{`say "hi" 100%`, "say%20%22hi%22%20100%25"},
		{"a\nb\x7f", "a%0Ab%7F"},
		{"", ""},
	} {
		assert.Equal(t, tc.out, percentEncode(tc.in), tc.in)
		back, err := headerValue(tc.out)
		require.NoError(t, err)
		assert.Equal(t, tc.in, back)
	}
}

func TestHeaderValueDecoding(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"%e2%82%ac", "€"},                 // lower-case hex is accepted
		{`"quoted value"`, "quoted value"}, // older senders quote
		{`"a \"b\""`, `a "b"`},
		{"100%", "100%"},   // not an escape: kept, for senders that do not encode
		{"%zz%4", "%zz%4"}, // likewise
		{"%41", "A"},       // unnecessarily encoded: accepted
	} {
		got, err := headerValue(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.out, got, tc.in)
	}
	for _, bad := range []string{"%C0%A0", "%FF", "\xff"} { // overlong, invalid UTF-8
		_, err := headerValue(bad)
		assert.Error(t, err, bad)
	}
}

func TestExtensionName(t *testing.T) {
	for in, out := range map[string]string{
		"transport": "transport", "X-Request-ID": "xrequestid", "event_type": "eventtype", "über": "ber", "__": "", "a1": "a1",
	} {
		assert.Equal(t, out, extensionName(in), in)
	}
}

// The bus's metadata maps onto attributes alone; anything else also travels
// whole in switchyardmetadata.
func TestNewEventCarriesExactMetadataOnlyWhenNeeded(t *testing.T) {
	settings := eventSettings{source: "switchyard", defaultType: "switchyard.event", contentType: "application/json"}
	busMetadata := message.Metadata{
		"event_type": "typing", "event_key": "k", "published_at": "2026-01-02T03:04:05Z", "transport": "http",
	}
	for _, tc := range []struct {
		name  string
		md    message.Metadata
		exact bool
	}{
		{"bus metadata", busMetadata, true},
		{"only event_type", message.Metadata{"event_type": "t"}, true},
		{"no metadata: the default type is not event_type", message.Metadata{}, false},
		{"upper-case key", message.Metadata{"event_type": "t", "Key": "v"}, false},
		{"empty event_key", message.Metadata{"event_type": "t", "event_key": ""}, false},
		{"published_at not RFC 3339", message.Metadata{"event_type": "t", "published_at": "now"}, false},
		{"reserved name", message.Metadata{"event_type": "t", "source": "x"}, false},
		{"over 20 characters", message.Metadata{"event_type": "t", "abcdefghijklmnopqrstu": "x"}, false},
	} {
		msg := message.NewMessage("id", nil)
		msg.Metadata = tc.md
		ev, err := newEvent("chat", msg, settings, nil)
		require.NoError(t, err)
		assert.Equal(t, !tc.exact, hasAttr(ev.ext, extMetadata), tc.name)
		assert.True(t, hasAttr(ev.ext, extTopic), tc.name)
	}

	msg := message.NewMessage("id", nil)
	msg.Metadata = message.Metadata{"k": "\xff"}
	_, err := newEvent("chat", msg, settings, nil)
	require.ErrorIs(t, err, errInvalidUTF8)
	_, err = newEvent("chat", message.NewMessage("", nil), settings, nil)
	require.Error(t, err)
}

func TestStructuredBodyDataEncodings(t *testing.T) {
	for _, tc := range []struct {
		contentType string
		payload     string
		member      string
	}{
		{"application/json", `{"a":1}`, "data"},
		{"application/cloudevents-thing+json", `[1]`, "data"},
		{"application/json", ` {"a":1}`, "data_base64"}, // would not read back byte for byte
		{"application/json", `{oops`, "data_base64"},
		{"text/plain", "héllo", "data"},
		{"text/plain", "\xff", "data_base64"},
		{"application/octet-stream", "bin", "data_base64"},
	} {
		ev := &event{id: "1", source: "s", typ: "t", dataContentType: tc.contentType, data: []byte(tc.payload)}
		var doc map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(structuredBody(ev), &doc), tc.payload)
		assert.Contains(t, doc, tc.member, "%s %q", tc.contentType, tc.payload)
		msg, err := decodeStructured(structuredBody(ev))
		require.NoError(t, err)
		assert.Equal(t, tc.payload, string(msg.Payload))
	}
}

func TestASCIIJSONIsAHeaderValue(t *testing.T) {
	md := message.Metadata{"ключ": "значение 😀", "ctl": "\x00\x1f\x7f\"\\"}
	b := appendMetadataJSON(nil, md, true)
	for _, c := range b {
		require.True(t, c >= 0x20 && c < 0x7f, "byte %q in %s", c, b)
	}
	back, err := parseMetadataJSON(b)
	require.NoError(t, err)
	require.Equal(t, md, back)
}

func TestSignature(t *testing.T) {
	secret := []byte("k1")
	now := time.Unix(1_800_000_000, 0)
	h := http.Header{"Ce-Type": {"typing"}, "Content-Type": {"application/json"}, "X-Other": {"not covered"}}
	body := []byte(`{"a":1}`)
	h.Set(headerSignature, signRequest(secret, now, h, body))

	require.NoError(t, verifyRequest(secret, now.Add(time.Minute), 5*time.Minute, h, body))
	h.Set("X-Other", "changed")
	require.NoError(t, verifyRequest(secret, now, 5*time.Minute, h, body), "only ce-* and switchyard-* are covered")

	tampered := h.Clone()
	tampered.Set("Ce-Type", "chat_message")
	require.ErrorIs(t, verifyRequest(secret, now, 5*time.Minute, tampered, body), errSignatureInvalid, "binary-mode attributes are covered")
	require.ErrorIs(t, verifyRequest(secret, now, 5*time.Minute, h, []byte(`{"a":2}`)), errSignatureInvalid)
	require.ErrorIs(t, verifyRequest([]byte("k2"), now, 5*time.Minute, h, body), errSignatureInvalid)
	require.ErrorIs(t, verifyRequest(secret, now.Add(6*time.Minute), 5*time.Minute, h, body), errSignatureExpired)
	require.ErrorIs(t, verifyRequest(secret, now, 5*time.Minute, http.Header{}, body), errSignatureMissing)
	bad := h.Clone()
	bad.Set(headerSignature, "t=x,v1=zz")
	require.ErrorIs(t, verifyRequest(secret, now, 5*time.Minute, bad, body), errSignatureFormat)
}

func TestRefusedAddress(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1": "loopback", "::1": "loopback", "::ffff:127.0.0.1": "loopback",
		"169.254.169.254": "link-local", "fe80::1": "link-local",
		"10.1.2.3": "private", "172.16.0.1": "private", "192.168.1.1": "private", "fd00::1": "private",
		"0.0.0.0": "unspecified", "::": "unspecified",
		"8.8.8.8": "", "2001:4860:4860::8888": "",
	} {
		assert.Equal(t, want, refusedAddress(netip.MustParseAddr(addr)), addr)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "0": 0, "3": 3 * time.Second, "-1": 0, "soon": 0, "99999999": time.Hour,
		now.Add(10 * time.Second).Format(http.TimeFormat): 10 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	} {
		assert.Equal(t, want, parseRetryAfter(v, now), v)
	}
}

// FuzzDecodeRequest: whatever arrives, decoding answers without panicking,
// and what it accepts is valid UTF-8 metadata.
func FuzzDecodeRequest(f *testing.F) {
	f.Add("application/cloudevents+json", "", `{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"a":1},"x":true}`)
	f.Add("application/json", "1.0", `{}`)
	f.Add("text/plain", "", "raw")
	f.Add("application/cloudevents+json", "", `{"specversion":"1.0","id":"1","source":"s","type":"t","switchyardmetadata":"{\"a\":\"b\"}"}`)
	f.Fuzz(func(t *testing.T, contentType, spec, body string) {
		h := http.Header{"Content-Type": {contentType}, "Ce-Id": {"%41"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}}
		if spec != "" {
			h.Set("Ce-Specversion", spec)
		}
		msg, err := decodeRequest(h, []byte(body))
		if err != nil {
			return
		}
		for k, v := range msg.Metadata {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("invalid UTF-8 metadata %q: %q", k, v)
			}
		}
	})
}

// FuzzRoundTrip: any valid message reads back exactly, in every format.
func FuzzRoundTrip(f *testing.F) {
	f.Add("id-1", "event_type", "typing", "X-Key", "v a l", []byte(`{"a":1}`), "application/json")
	f.Add("€", "published_at", "2026-01-02T03:04:05Z", "topic", "%", []byte{0, 1}, "text/plain")
	f.Fuzz(func(t *testing.T, id, k1, v1, k2, v2 string, payload []byte, contentType string) {
		for _, s := range []string{id, k1, v1, k2, v2} {
			if !utf8.ValidString(s) {
				return
			}
		}
		if id == "" {
			return
		}
		if _, _, err := mimeParse(contentType); err != nil {
			return
		}
		msg := message.NewMessage(id, payload)
		msg.Metadata.Set(k1, v1)
		msg.Metadata.Set(k2, v2)
		for _, format := range []Format{FormatBinary, FormatStructured, FormatRaw} {
			p := &Publisher{cfg: Config{Format: format}, tmpl: &urlTemplate{static: "http://h/"}, static: http.Header{},
				settings: eventSettings{source: "s", defaultType: "d", contentType: contentType}}
			switch format {
			case FormatBinary:
				p.static[headerSpecVersion] = []string{"1.0"}
				p.static[headerSource] = []string{"s"}
				p.static[headerContentType] = []string{contentType}
			case FormatStructured:
				p.static[headerContentType] = []string{mediaStructured}
			case FormatRaw:
				p.static[headerContentType] = []string{contentType}
			}
			r, err := p.encode("chat", msg)
			require.NoError(t, err)
			got, err := decodeRequest(r.header, r.body)
			require.NoError(t, err, format)
			require.Equal(t, id, got.UUID, format)
			require.Equal(t, msg.Metadata, got.Metadata, format)
			require.True(t, bytes.Equal(payload, got.Payload), "%s: %q", format, got.Payload)
		}
	})
}

func mimeParse(contentType string) (string, map[string]string, error) {
	if contentType == "" {
		return "", nil, errEmptyContentType
	}
	return mime.ParseMediaType(contentType)
}

var errEmptyContentType = errors.New("empty content type")
