package httptransport

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/netip"
	"regexp"
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
		_, ext, err := newEvent("chat", msg, settings, nil)
		require.NoError(t, err)
		assert.Equal(t, !tc.exact, hasAttr(ext, extMetadata), tc.name)
		assert.True(t, hasAttr(ext, extTopic), tc.name)
	}

	msg := message.NewMessage("id", nil)
	msg.Metadata = message.Metadata{"k": "\xff"}
	_, _, err := newEvent("chat", msg, settings, nil)
	require.ErrorIs(t, err, errInvalidUTF8)
	_, _, err = newEvent("chat", message.NewMessage("", nil), settings, nil)
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
		require.NoError(t, json.Unmarshal(structuredBody(ev, nil, mediaType(ev.dataContentType)), &doc), tc.payload)
		assert.Contains(t, doc, tc.member, "%s %q", tc.contentType, tc.payload)
		msg, err := decodeStructured("chat", structuredBody(ev, nil, mediaType(ev.dataContentType)))
		require.NoError(t, err)
		assert.Equal(t, tc.payload, string(msg.Payload))
	}
}

func TestASCIIJSONIsAHeaderValue(t *testing.T) {
	md := message.Metadata{"ключ": "значение 😀", "ctl": "\x00\x1f\x7f\"\\"}
	b := metadataJSONString(md, true)
	for _, c := range []byte(b) {
		require.True(t, c >= 0x20 && c < 0x7f, "byte %q in %s", c, b)
	}
	back, err := parseMetadataJSON([]byte(b))
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
	for _, tc := range []struct{ addr, why string }{
		{"127.0.0.1", "loopback"}, {"127.255.0.9", "loopback"}, {"::1", "loopback"}, {"::ffff:127.0.0.1", "loopback"},
		{"169.254.169.254", "link-local"}, {"fe80::1", "link-local"}, {"fe80::1%eth0", "link-local"},
		{"10.1.2.3", "private"}, {"172.16.0.1", "private"}, {"192.168.1.1", "private"}, {"fd00::1", "private"},
		{"fd00:ec2::254", "private"},
		{"0.0.0.0", "unspecified"}, {"::", "unspecified"},
		{"0.1.2.3", "this-network"},
		{"100.64.0.1", "shared"}, {"100.100.100.200", "shared"}, {"100.127.255.254", "shared"},
		{"192.0.0.170", "IETF protocol assignments"},
		{"192.0.2.1", "documentation"}, {"198.51.100.7", "documentation"}, {"203.0.113.9", "documentation"},
		{"2001:db8::1", "documentation"},
		{"198.18.0.1", "benchmarking"}, {"198.19.255.1", "benchmarking"},
		{"224.0.0.1", "link-local"}, {"233.252.0.1", "multicast"}, {"239.1.2.3", "multicast"}, {"ff02::1", "link-local"}, {"ff0e::1", "multicast"},
		{"240.0.0.1", "reserved"}, {"255.255.255.255", "reserved"},
		{"fec0::1", "site-local"},
		// IPv6 that embeds an IPv4 address: the IPv4 address is checked.
		{"64:ff9b::a9fe:a9fe", "link-local"}, {"64:ff9b::7f00:1", "loopback"}, {"64:ff9b::a00:1", "private"},
		{"64:ff9b:1::a00:1", "NAT64 local-use"},
		{"2002:a9fe:a9fe::1", "link-local"}, {"2002:7f00:1::", "loopback"}, {"2002:c0a8:101::1", "private"},
		{"::127.0.0.1", "loopback"}, {"::10.0.0.1", "private"}, {"::8.8.8.8", "IPv4-compatible"},
		{"::ffff:0:10.0.0.1", "private"},
		{"2001::1", "Teredo"}, {"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"100::1", "discard-only"},
		{"2001:2::1", "benchmarking"},
		// Global unicast, including what embeds a global IPv4 address.
		{"8.8.8.8", ""}, {"1.1.1.1", ""}, {"100.63.255.255", ""}, {"100.128.0.0", ""}, {"172.32.0.1", ""},
		{"2001:4860:4860::8888", ""}, {"2606:4700::1111", ""}, {"64:ff9b::808:808", ""}, {"2002:808:808::1", ""},
	} {
		why := refusedAddress(netip.MustParseAddr(tc.addr))
		if tc.why == "" {
			assert.Empty(t, why, tc.addr)
		} else {
			assert.Contains(t, why, tc.why, tc.addr)
		}
	}
}

// allowed_hosts patterns: a bare host matches every port, host:port only
// that port (the scheme's default when the URL names none).
func TestHostAllowed(t *testing.T) {
	for _, tc := range []struct {
		pattern, scheme, host, port string
		ok                          bool
	}{
		{"hub.example.com", "https", "hub.example.com", "", true},
		{"hub.example.com", "https", "hub.example.com", "8443", true},
		{"hub.example.com:8443", "https", "hub.example.com", "8443", true},
		{"hub.example.com:8443", "https", "hub.example.com", "", false},
		{"hub.example.com:443", "https", "hub.example.com", "", true},
		{"hub.example.com:80", "http", "hub.example.com", "", true},
		{"hub.example.com:443", "http", "hub.example.com", "", false},
		{"*.example.com", "https", "a.example.com", "9000", true},
		{"*.example.com:9000", "https", "a.example.com", "9000", true},
		{"*.example.com:9000", "https", "a.example.com", "9001", false},
		{"127.0.0.1:5000", "http", "127.0.0.1", "5000", true},
		{"127.0.0.1:5000", "http", "127.0.0.1", "5001", false},
		{"[::1]:5000", "http", "::1", "5000", true},
		{"[::1]:5000", "http", "::1", "6000", false},
		{"::1", "http", "::1", "6000", true},
		{"[::1]", "http", "::1", "6000", true},
	} {
		assert.Equal(t, tc.ok, hostAllowed([]string{tc.pattern}, tc.scheme, tc.host, tc.port), "%s vs %s://%s:%s", tc.pattern, tc.scheme, tc.host, tc.port)
	}
	for _, bad := range []string{"", "h:", "h:0", "h:65536", "h:x", "a b", "*.", "[::1", "::1]:80", "h:1:2", "user@h"} {
		assert.False(t, validHostPattern(bad), bad)
	}
	for _, good := range []string{"h", "h:1", "*.example.com:443", "10.0.0.1", "[fe80::1]:80", "2001:db8::1"} {
		assert.True(t, validHostPattern(good), good)
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
		msg, err := decodeRequest("chat", h, []byte(body))
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
		tmpl, err := parseTemplate("http://h/")
		require.NoError(t, err)
		for _, format := range []Format{FormatBinary, FormatStructured, FormatRaw} {
			p := &Publisher{cfg: Config{Format: format}, tmpl: tmpl, static: http.Header{},
				settings: eventSettings{source: "s", defaultType: "d", contentType: contentType}}
			switch format {
			case FormatBinary:
				p.static[headerSpecVersion] = []string{"1.0"}
				p.static["Ce-Source"] = []string{"s"}
				p.static[headerContentType] = []string{contentType}
			case FormatStructured:
				p.static[headerContentType] = []string{mediaStructured}
			case FormatRaw:
				p.static[headerContentType] = []string{contentType}
			}
			r, err := p.encode("chat", msg)
			require.NoError(t, err)
			got, err := decodeRequest("chat", r.header, r.body)
			require.NoError(t, err, format)
			require.Equal(t, id, got.UUID, format)
			require.Equal(t, receivedMetadata(format, msg.Metadata, "s", contentType), got.Metadata, format)
			require.True(t, bytes.Equal(payload, got.Payload), "%s: %q", format, got.Payload)
		}
	})
}

// receivedMetadata is what a Receiver gives back of md sent in format by a
// Publisher with source and contentType: md, and for the CloudEvents
// formats the attributes a Receiver adds, when md does not have them.
func receivedMetadata(format Format, md message.Metadata, source, contentType string) message.Metadata {
	want := message.Metadata{}
	for k, v := range md {
		want[k] = v
	}
	if format == FormatRaw {
		return want
	}
	if v, ok := md[metaSource]; ok && v != "" {
		source = v
	}
	if _, ok := want[metaSource]; !ok {
		want[metaSource] = source
	}
	if _, ok := want[metaDataContentType]; !ok && contentType != "" {
		want[metaDataContentType] = contentType
	}
	return want
}

func mimeParse(contentType string) (string, map[string]string, error) {
	if contentType == "" {
		return "", nil, errEmptyContentType
	}
	return mime.ParseMediaType(contentType)
}

var errEmptyContentType = errors.New("empty content type")

// time must be RFC 3339 (§5.6), no laxer: time.Parse alone takes a comma
// before fractions, and rejects leap seconds, which RFC 3339 allows.
func TestValidTime(t *testing.T) {
	for _, s := range []string{
		"2026-01-02T03:04:05Z", "2026-01-02t03:04:05z", "2026-01-02T03:04:05.123456789+05:30",
		"2016-12-31T23:59:60Z", "0001-01-01T00:00:00-00:00", "2026-01-02T03:04:05.1234567891234Z",
		"2024-02-29T00:00:00Z",
	} {
		assert.True(t, validTime(s), s)
	}
	for _, s := range []string{
		"", "now", "2026-01-02T03:04:05,123Z", "2026-01-02T03:04:05", "2026-01-02 03:04:05Z", "2026-1-02T03:04:05Z",
		"2026-01-02T03:04:05.Z", "2026-13-02T03:04:05Z", "2026-02-30T03:04:05Z", "2026-01-02T24:00:00Z",
		"2026-01-02T03:04:05+0530", "2026-01-02T03:04:05+05", "2026-01-02T03:04:05+24:00", "2026-01-02T03:04:05-05:60", "2026-01-02T03:60:05Z", "2026-01-02T03:04:61Z",
		"+2026-01-02T03:04:05Z", "2026-01-02T03:04:05ZZ", "2026-01-02T03:04:05Z ", "２026-01-02T03:04:05Z",
	} {
		assert.False(t, validTime(s), s)
	}
}

// BenchmarkValidTime weighs validTime, run on every published message,
// against the regexp that would replace it.
func BenchmarkValidTime(b *testing.B) {
	rfc3339 := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$`)
	const ts = "2026-01-02T03:04:05.123456789Z"
	b.Run("validTime", func(b *testing.B) {
		for b.Loop() {
			validTime(ts)
		}
	})
	b.Run("regexp", func(b *testing.B) {
		for b.Loop() {
			_ = rfc3339.MatchString(ts) && validTime(ts)
		}
	})
}

// A Publisher's bytes are pinned: structured members in the order
// specversion, id, source, type, the other context attributes, extensions
// by name, data last; JSON strings escape only what JSON requires, control
// characters and DEL as upper-case \u00XX, so that <, >, & and U+2028
// travel as they are; Switchyard-Metadata also escapes all non-ASCII.
func TestEncodingIsPinned(t *testing.T) {
	for format, want := range map[Format][]string{
		FormatStructured: {
			"{\"specversion\":\"1.0\",\"id\":\"id-1\",\"source\":\"switchyard\",\"type\":\"chat_message\",\"subject\":\"room-1\",\"time\":\"2026-01-02T03:04:05.123Z\",\"datacontenttype\":\"application/json\",\"topic\":\"chat\",\"data\":{\"text\":\"hi\"}}",
			"{\"specversion\":\"1.0\",\"id\":\"id-<2>&\",\"source\":\"switchyard\",\"type\":\"typing\",\"datacontenttype\":\"text/plain; charset=utf-8\",\"ctl\":\"\\u0000\\u001F\\u007F\\\"\\\\\\n\\r\\t\u2029\",\"switchyardmetadata\":\"{\\\"ce_datacontenttype\\\":\\\"text/plain; charset=utf-8\\\",\\\"ctl\\\":\\\"\\\\u0000\\\\u001F\\\\u007F\\\\\\\"\\\\\\\\\\\\n\\\\r\\\\t\u2029\\\",\\\"event_type\\\":\\\"typing\\\",\\\"tenant\\\":\\\"acme <&>\\\",\\\"Ключ\\\":\\\"значение 😀\\\"}\",\"tenant\":\"acme <&>\",\"topic\":\"chat\",\"data\":\"héllo <b>&amp;</b>\u2028\\u0001\"}",
			"{\"specversion\":\"1.0\",\"id\":\"id-3\",\"source\":\"/src?a=1&b=<2>\",\"type\":\"blob\",\"datacontenttype\":\"application/octet-stream\",\"dataschema\":\"https://example.com/s.json\",\"region\":\"us\",\"switchyardmetadata\":\"{\\\"Region\\\":\\\"us\\\",\\\"ce_datacontenttype\\\":\\\"application/octet-stream\\\",\\\"ce_dataschema\\\":\\\"https://example.com/s.json\\\",\\\"ce_source\\\":\\\"/src?a=1&b=<2>\\\",\\\"ce_topic\\\":\\\"other\\\",\\\"event_type\\\":\\\"blob\\\",\\\"region\\\":\\\"eu\\\"}\",\"topic\":\"other\",\"data_base64\":\"AP9iaW4=\"}",
			"{\"specversion\":\"1.0\",\"id\":\"id-4\",\"source\":\"switchyard\",\"type\":\"switchyard.event\",\"datacontenttype\":\"application/json\",\"switchyardmetadata\":\"{}\",\"topic\":\"chat\",\"data_base64\":\"IHsiYSI6MX0=\"}",
		},
		FormatRaw: {
			"{\"event_key\":\"room-1\",\"event_type\":\"chat_message\",\"published_at\":\"2026-01-02T03:04:05.123Z\"}",
			"{\"ce_datacontenttype\":\"text/plain; charset=utf-8\",\"ctl\":\"\\u0000\\u001F\\u007F\\\"\\\\\\n\\r\\t\\u2029\",\"event_type\":\"typing\",\"tenant\":\"acme <&>\",\"\\u041A\\u043B\\u044E\\u0447\":\"\\u0437\\u043D\\u0430\\u0447\\u0435\\u043D\\u0438\\u0435 \\uD83D\\uDE00\"}",
			"{\"Region\":\"us\",\"ce_datacontenttype\":\"application/octet-stream\",\"ce_dataschema\":\"https://example.com/s.json\",\"ce_source\":\"/src?a=1&b=<2>\",\"ce_topic\":\"other\",\"event_type\":\"blob\",\"region\":\"eu\"}",
			"",
		},
	} {
		p, err := NewPublisher(Config{URL: "http://127.0.0.1:1/{topic}", Format: format}, nil)
		require.NoError(t, err)
		for i, msg := range wireCases() {
			r, err := p.encode("chat", msg)
			require.NoError(t, err)
			got := string(r.body)
			if format == FormatRaw {
				got = r.header.Get(headerRawMetadata)
			}
			assert.Equal(t, want[i], got, "%s %s", format, msg.UUID)
		}
		require.NoError(t, p.Close())
	}
}

// wireCases are the messages whose encodings TestEncodingIsPinned pins.
func wireCases() []*message.Message {
	mk := func(id, payload string, md message.Metadata) *message.Message {
		msg := message.NewMessage(id, []byte(payload))
		msg.Metadata = md
		return msg
	}
	return []*message.Message{
		mk("id-1", `{"text":"hi"}`, message.Metadata{"event_type": "chat_message", "event_key": "room-1", "published_at": "2026-01-02T03:04:05.123Z"}),
		mk("id-<2>&", "héllo <b>&amp;</b>\u2028\x01", message.Metadata{
			"event_type": "typing", "ce_datacontenttype": "text/plain; charset=utf-8", "tenant": "acme <&>",
			"Ключ": "значение 😀", "ctl": "\x00\x1f\x7f\"\\\n\r\t\u2029",
		}),
		mk("id-3", "\x00\xffbin", message.Metadata{
			"event_type": "blob", "ce_datacontenttype": "application/octet-stream", "ce_source": "/src?a=1&b=<2>",
			"ce_dataschema": "https://example.com/s.json", "ce_topic": "other", "region": "eu", "Region": "us",
		}),
		mk("id-4", ` {"a":1}`, nil),
	}
}
