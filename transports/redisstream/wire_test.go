package redisstream

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/vmihailenco/msgpack"
)

// asRead returns what a reader gets back for the XADD field/value list vals:
// go-redis hands every value back as a string. A field written twice is an
// encoder bug (the reader would see only the last value), so it fails t.
func asRead(t testing.TB, vals []any) map[string]any {
	t.Helper()
	if len(vals)%2 != 0 {
		t.Fatalf("odd field/value list of %d items", len(vals))
	}
	out := make(map[string]any, len(vals)/2)
	for i := 0; i < len(vals); i += 2 {
		k, ok := vals[i].(string)
		if !ok {
			t.Fatalf("field name %d is a %T, not a string", i/2, vals[i])
		}
		if _, dup := out[k]; dup {
			t.Fatalf("field %q written twice", k)
		}
		switch v := vals[i+1].(type) {
		case string:
			out[k] = v
		case []byte:
			out[k] = string(v)
		default:
			t.Fatalf("field %q has a %T value", k, v)
		}
	}
	return out
}

// requireSame fails t unless got has want's UUID, payload and metadata. It
// compares metadata as maps (message.Equals takes a missing key for an empty
// value) and keeps the report short for huge metadata.
func requireSame(t testing.TB, want, got *message.Message) {
	t.Helper()
	if got.UUID != want.UUID {
		t.Fatalf("UUID = %q, want %q", got.UUID, want.UUID)
	}
	if !bytes.Equal(got.Payload, want.Payload) {
		t.Fatalf("payload of %s = %s, want %s", want.UUID, shortQuote(string(got.Payload)), shortQuote(string(want.Payload)))
	}
	if diff := metadataDiff(want.Metadata, got.Metadata); diff != "" {
		t.Fatalf("metadata of %s: %s", want.UUID, diff)
	}
}

func metadataDiff(want, got map[string]string) string {
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			return fmt.Sprintf("key %s missing (%d keys, want %d)", shortQuote(k), len(got), len(want))
		}
		if g != v {
			return fmt.Sprintf("key %s = %s, want %s", shortQuote(k), shortQuote(g), shortQuote(v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			return fmt.Sprintf("unexpected key %s (%d keys, want %d)", shortQuote(k), len(got), len(want))
		}
	}
	return ""
}

func shortQuote(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q…(%d bytes)", s[:40], len(s))
	}
	return fmt.Sprintf("%q", s)
}

func wireMsg(uuid string, payload []byte, md map[string]string) *message.Message {
	m := message.NewMessage(uuid, payload)
	maps.Copy(m.Metadata, md)
	return m
}

func allByteValues() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func manyKeys(n int) map[string]string {
	md := make(map[string]string, n)
	for i := range n {
		md[fmt.Sprintf("k%d", i)] = fmt.Sprintf("v%d", i)
	}
	return md
}

// wireCase is a message both formats must carry intact, in either
// direction; the Redis interop tests publish the same ones.
type wireCase struct {
	name    string
	uuid    string
	payload []byte
	md      map[string]string
}

func (c wireCase) message() *message.Message { return wireMsg(c.uuid, c.payload, c.md) }

// wireCases are the messages of the round-trip, cross-check and interop
// tests: every MessagePack length boundary of a string (fixstr/str8/
// str16/str32) and of a map (fixmap/map16/map32), unicode, empty and
// invalid UTF-8 strings, binary payloads, and metadata keys that look like
// field names of either format. With huge, two maps of more than 65535 keys.
func wireCases(huge bool) []wireCase {
	cases := []wireCase{
		{name: "no metadata", uuid: "6f1c1a3e-0000-4000-8000-000000000001", payload: []byte(`{"text":"hi"}`)},
		{name: "bus metadata", uuid: "6f1c1a3e-0000-4000-8000-000000000002", payload: []byte(`{"text":"hello"}`), md: map[string]string{
			"event_type": "chat_message", "event_key": "req-123",
			"published_at": "2025-01-02T03:04:05.123456789Z", "transport": "redis",
		}},
		{name: "empty payload", uuid: "u-empty-payload", md: map[string]string{"event_type": "typing"}},
		{name: "binary payload", uuid: "u-binary", payload: append(allByteValues(), 0xc1, 0xff, 0, 0), md: map[string]string{"k": "v"}},
		{name: "unicode", uuid: "ünïcødé-üüíd-✓", payload: []byte("héllo wörld ✓ 😀"), md: map[string]string{
			"ключ": "значение", "名前": "値", "emoji🚀": "🎉👍", "nul": "a\x00b", "event_key": "клиент-42",
		}},
		{name: "empty values and key", uuid: "u-empty", md: map[string]string{"": "", "empty": "", "event_key": "", "x": "y"}},
		{name: "invalid UTF-8", uuid: "u-\xff\xfe", payload: []byte{0xff}, md: map[string]string{"\xff\xfe": "\xc3\x28", "k": "\x80"}},
		{name: "reserved key with empty value", uuid: "u-reserved", md: map[string]string{FieldWatermillUUID: ""}},
		{name: "field names as metadata", uuid: "u-fields", md: map[string]string{
			FieldID: "not-the-id", FieldPayload: "not-the-payload", FieldMetadata: "not-metadata",
			FlatMetaPrefix + "x": "prefixed", "meta.": "prefix only", "meta": "bare",
			DeadLetterReasonField: "r",
		}},
		{name: "string boundaries", uuid: "u-strings", md: map[string]string{
			strings.Repeat("a", 31):  strings.Repeat("1", 31),
			strings.Repeat("b", 32):  strings.Repeat("2", 32),
			strings.Repeat("c", 255): strings.Repeat("3", 255),
			strings.Repeat("d", 256): strings.Repeat("4", 256),
			"v65535":                 strings.Repeat("5", 65535),
			"v65536":                 strings.Repeat("6", 65536),
			"v70000":                 strings.Repeat("é", 35000),
		}},
		{name: "long uuid and payload", uuid: strings.Repeat("u", 300), payload: bytes.Repeat([]byte{0, 1, 2}, 40000), md: map[string]string{"event_type": "big"}},
		{name: "15 keys", uuid: "u-15", md: manyKeys(15)},
		{name: "16 keys", uuid: "u-16", md: manyKeys(16)},
		{name: "300 keys", uuid: "u-300", md: manyKeys(300)},
	}
	if huge {
		cases = append(cases,
			wireCase{name: "65535 keys", uuid: "u-65535", md: manyKeys(65535)},
			wireCase{name: "65536 keys", uuid: "u-65536", md: manyKeys(65536)},
			wireCase{name: "70000 keys", uuid: "u-70000", payload: []byte("p"), md: manyKeys(70000)},
		)
	}
	return cases
}

func TestWireRoundTrip(t *testing.T) {
	for _, f := range []Format{FormatWatermill, FormatFlat} {
		for _, c := range wireCases(true) {
			t.Run(string(f)+"/"+c.name, func(t *testing.T) {
				want := c.message()
				vals, err := encode(f, want)
				if err != nil {
					t.Fatal(err)
				}
				got, err := decode(asRead(t, vals))
				if err != nil {
					t.Fatal(err)
				}
				requireSame(t, want, got)
			})
		}
	}
}

// TestWireEncoderShared encodes many messages with one encoder, as a
// Publish of many messages does, with metadata that outgrows its first
// guess several times over: every field list stays what it was when it
// was made, though the arrays they were cut from moved on.
func TestWireEncoderShared(t *testing.T) {
	for _, f := range []Format{FormatWatermill, FormatFlat} {
		t.Run(string(f), func(t *testing.T) {
			var msgs []*message.Message
			for i := range 40 {
				md := map[string]string{"event_key": fmt.Sprint("k-", i)}
				if i%7 == 3 {
					md = manyKeys(50 + i)
				}
				if i%11 == 5 {
					md = nil
				}
				msgs = append(msgs, wireMsg(fmt.Sprint("u-", i), []byte(fmt.Sprint("p-", i)), md))
			}
			enc := newEncoder(f, len(msgs), msgs[0])
			lists := make([][]any, len(msgs))
			for i, m := range msgs {
				var err error
				if lists[i], err = enc.encode(f, m); err != nil {
					t.Fatal(err)
				}
			}
			for i, m := range msgs {
				got, err := decode(asRead(t, lists[i]))
				if err != nil {
					t.Fatal(err)
				}
				requireSame(t, m, got)
			}
		})
	}
}

func TestWireWatermillFields(t *testing.T) {
	m := wireMsg("u-1", []byte("p"), map[string]string{"event_type": "typing"})
	got := asRead(t, mustEncode(t, FormatWatermill, m))
	want := map[string]any{
		FieldWatermillUUID: "u-1",
		FieldMetadata:      "\x81\xaaevent_type\xa6typing",
		FieldPayload:       "p",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("fields = %q, want %q", got, want)
	}

	// No metadata: an empty "metadata" field, as watermill-redisstream
	// writes it (a nil []byte), not an empty MessagePack map.
	got = asRead(t, mustEncode(t, FormatWatermill, wireMsg("u-2", nil, nil)))
	want = map[string]any{FieldWatermillUUID: "u-2", FieldMetadata: "", FieldPayload: ""}
	if !maps.Equal(got, want) {
		t.Fatalf("fields = %q, want %q", got, want)
	}
}

func TestWireFlatFields(t *testing.T) {
	m := wireMsg("u-1", []byte(`{"a":1}`), map[string]string{
		"event_type": "chat_message", "event_key": "req-1", "published_at": "2025-01-02T03:04:05Z",
		"transport": "redis", "id": "shadowed", "": "empty key",
	})
	vals := mustEncode(t, FormatFlat, m)
	if vals[0] != FieldID || vals[1] != "u-1" {
		t.Errorf("first field = %v %v, want id u-1", vals[0], vals[1])
	}
	if n := len(vals); vals[n-2] != FieldPayload {
		t.Errorf("last field = %v, want payload", vals[n-2])
	}
	got := asRead(t, vals)
	want := map[string]any{
		"id": "u-1", "event_type": "chat_message", "event_key": "req-1",
		"published_at": "2025-01-02T03:04:05Z", "meta.transport": "redis",
		"meta.id": "shadowed", "meta.": "empty key", "payload": `{"a":1}`,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("fields = %q, want %q", got, want)
	}

	got = asRead(t, mustEncode(t, FormatFlat, wireMsg("u-2", nil, nil)))
	want = map[string]any{"id": "u-2", "payload": ""}
	if !maps.Equal(got, want) {
		t.Fatalf("fields = %q, want %q", got, want)
	}
}

func mustEncode(t testing.TB, f Format, m *message.Message) []any {
	t.Helper()
	vals, err := encode(f, m)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

func TestWireReservedUUIDKey(t *testing.T) {
	m := wireMsg("u-1", nil, map[string]string{FieldWatermillUUID: "other"})
	if _, err := encode(FormatWatermill, m); err == nil || !strings.Contains(err.Error(), FieldWatermillUUID) {
		t.Fatalf("encode = %v, want an error naming %s", err, FieldWatermillUUID)
	}
	if _, err := (wmredis.DefaultMarshallerUnmarshaller{}).Marshal("s", m); err == nil {
		t.Fatal("watermill-redisstream accepts what we refuse")
	}
	// The flat format has no such field: the key is carried like any other.
	got, err := decode(asRead(t, mustEncode(t, FormatFlat, m)))
	if err != nil {
		t.Fatal(err)
	}
	requireSame(t, m, got)
}

// TestWireAccepts decodes entries other writers may produce: MessagePack
// types beyond those we write, and non-canonical lengths.
func TestWireAccepts(t *testing.T) {
	wm := func(md string) map[string]any {
		return map[string]any{FieldWatermillUUID: "u", FieldMetadata: md, FieldPayload: "p"}
	}
	for _, c := range []struct {
		name   string
		values map[string]any
		want   map[string]string
	}{
		{"no metadata field", map[string]any{FieldWatermillUUID: "u", FieldPayload: "p"}, nil},
		{"no payload field", map[string]any{FieldWatermillUUID: "u"}, nil},
		{"empty metadata", wm(""), nil},
		{"nil metadata", wm("\xc0"), nil},
		{"empty fixmap", wm("\x80"), nil},
		{"empty map16", wm("\xde\x00\x00"), nil},
		{"empty map32", wm("\xdf\x00\x00\x00\x00"), nil},
		{"map16 of one pair", wm("\xde\x00\x01\xa1k\xa1v"), map[string]string{"k": "v"}},
		{"map32 of one pair", wm("\xdf\x00\x00\x00\x01\xa1k\xa1v"), map[string]string{"k": "v"}},
		{"str8 for a short string", wm("\x81\xd9\x01k\xd9\x00"), map[string]string{"k": ""}},
		{"str16 for a short string", wm("\x81\xda\x00\x01k\xda\x00\x01v"), map[string]string{"k": "v"}},
		{"str32 for a short string", wm("\x81\xdb\x00\x00\x00\x01k\xdb\x00\x00\x00\x01v"), map[string]string{"k": "v"}},
		{"bin8 values", wm("\x81\xc4\x01k\xc4\x02\x00\xff"), map[string]string{"k": "\x00\xff"}},
		{"bin16 value", wm("\x81\xa1k\xc5\x00\x01v"), map[string]string{"k": "v"}},
		{"bin32 value", wm("\x81\xa1k\xc6\x00\x00\x00\x01v"), map[string]string{"k": "v"}},
		{"nil value", wm("\x81\xa1k\xc0"), map[string]string{"k": ""}},
		{"nil key", wm("\x81\xc0\xa1v"), map[string]string{"": "v"}},
		{"duplicate key: the last wins", wm("\x82\xa1k\xa11\xa1k\xa12"), map[string]string{"k": "2"}},
		{"extra fields are ignored", map[string]any{FieldWatermillUUID: "u", "other": "x", DeadLetterReasonField: "r"}, nil},
		{"flat: only id", map[string]any{FieldID: "u"}, nil},
		{"flat: unknown fields are ignored", map[string]any{FieldID: "u", "foo": "bar", DeadLetterIDField: "1-0"},
			nil},
		{"flat: meta. prefix is stripped once", map[string]any{FieldID: "u", "meta.meta.x": "1", "meta.": "2"},
			map[string]string{"meta.x": "1", "": "2"}},
		{"watermill wins over flat", map[string]any{FieldWatermillUUID: "u", FieldID: "other", FieldEventType: "t"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := decode(c.values)
			if err != nil {
				t.Fatal(err)
			}
			if got.UUID != "u" {
				t.Errorf("UUID = %q, want u", got.UUID)
			}
			if diff := metadataDiff(c.want, got.Metadata); diff != "" {
				t.Error(diff)
			}
		})
	}
}

// malformedCases are entries that are not messages; the fuzz test seeds
// with them too.
func malformedCases() []struct {
	name   string
	values map[string]any
} {
	wm := func(md string) map[string]any {
		return map[string]any{FieldWatermillUUID: "u", FieldMetadata: md, FieldPayload: "p"}
	}
	return []struct {
		name   string
		values map[string]any
	}{
		{"no fields", map[string]any{}},
		{"no id field", map[string]any{FieldPayload: "p", FieldMetadata: "\x80", FieldEventType: "t"}},
		{"dead-letter fields only", map[string]any{DeadLetterReasonField: "r", DeadLetterIDField: "1-0"}},
		{"empty watermill UUID", map[string]any{FieldWatermillUUID: "", FieldPayload: "p"}},
		{"empty flat id", map[string]any{FieldID: "", FieldPayload: "p"}},
		{"watermill UUID not a string", map[string]any{FieldWatermillUUID: 42}},
		{"flat id not a string", map[string]any{FieldID: []byte("u")}},
		{"metadata a string", wm("\xa1a")},
		{"metadata an array", wm("\x91\xa1a")},
		{"metadata an integer", wm("\x01")},
		{"metadata JSON", wm(`{"k":"v"}`)},
		{"metadata bin", wm("\xc4\x01a")},
		{"truncated: no pairs", wm("\x81")},
		{"truncated: no value", wm("\x81\xa1k")},
		{"truncated: second pair", wm("\x82\xa1k\xa1v\xa1k")},
		{"truncated: fixstr", wm("\x81\xa5ab\xa1v")},
		{"truncated: str8 length", wm("\x81\xd9")},
		{"truncated: str8 body", wm("\x81\xd9\x05ab")},
		{"truncated: str16 length", wm("\x81\xda\x00")},
		{"truncated: str16 body", wm("\x81\xa1k\xda\x01\x00ab")},
		{"truncated: str32 length", wm("\x81\xdb\x00\x00\x00")},
		{"truncated: str32 body", wm("\x81\xa1k\xdb\x00\x00\x01\x00ab")},
		{"truncated: bin8 body", wm("\x81\xa1k\xc4\x05ab")},
		{"truncated: map16 header", wm("\xde\x00")},
		{"truncated: map32 header", wm("\xdf\x00\x00\x00")},
		{"trailing bytes after empty map", wm("\x80\x00")},
		{"trailing bytes after pairs", wm("\x81\xa1k\xa1v\xa0")},
		{"trailing bytes after nil", wm("\xc0\xc0")},
		{"two maps", wm("\x81\xa1k\xa1v\x81\xa1k\xa1v")},
		{"absurd map32 count", wm("\xdf\xff\xff\xff\xff\xa0\xa0")},
		{"absurd map16 count", wm("\xde\xff\xff\xa1k\xa1v")},
		{"absurd fixmap count", wm("\x8f\xa1k\xa1v")},
		{"absurd str32 length", wm("\x81\xdb\xff\xff\xff\xffab")},
		{"absurd bin32 length", wm("\x81\xa1k\xc6\xff\xff\xff\xffab")},
		{"absurd str16 length", wm("\x81\xa1k\xda\xff\xffab")},
		{"integer key", wm("\x81\x01\xa1v")},
		{"integer value", wm("\x81\xa1k\x01")},
		{"map value", wm("\x81\xa1k\x80")},
		{"array value", wm("\x81\xa1k\x90")},
		{"boolean value", wm("\x81\xa1k\xc3")},
		{"float value", wm("\x81\xa1k\xcb\x00\x00\x00\x00\x00\x00\x00\x00")},
		{"ext value", wm("\x81\xa1k\xd4\x01\x02")},
		{"reserved code", wm("\x81\xa1k\xc1")},
	}
}

func TestWireMalformed(t *testing.T) {
	for _, c := range malformedCases() {
		t.Run(c.name, func(t *testing.T) {
			m, err := decode(c.values)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode = %v, %v; want an error wrapping ErrMalformed", m, err)
			}
			if m != nil {
				t.Errorf("decode returned a message with its error: %v", m)
			}
		})
	}
}

// TestWireMsgpackHeaders pins the header of each string and map length
// class, at both ends of each.
func TestWireMsgpackHeaders(t *testing.T) {
	for _, c := range []struct {
		n    int
		head string
	}{
		{0, "\xa0"}, {1, "\xa1"}, {31, "\xbf"},
		{32, "\xd9\x20"}, {255, "\xd9\xff"},
		{256, "\xda\x01\x00"}, {65535, "\xda\xff\xff"},
		{65536, "\xdb\x00\x01\x00\x00"}, {1 << 20, "\xdb\x00\x10\x00\x00"},
	} {
		s := strings.Repeat("x", c.n)
		got := appendMsgpackString(nil, s)
		if string(got) != c.head+s {
			t.Errorf("string of %d bytes: header % x, want % x", c.n, got[:min(len(got), len(c.head))], c.head)
		}
	}
	for _, c := range []struct {
		n    int
		head string
	}{
		{0, "\x80"}, {1, "\x81"}, {15, "\x8f"},
		{16, "\xde\x00\x10"}, {65535, "\xde\xff\xff"},
		{65536, "\xdf\x00\x01\x00\x00"},
	} {
		got := appendMsgpackMap(nil, manyKeys(c.n))
		if !strings.HasPrefix(string(got), c.head) {
			t.Errorf("map of %d pairs: header % x, want % x", c.n, got[:len(c.head)], c.head)
		}
	}
}

// TestWireMsgpackVmihailenco checks our MessagePack against the encoder and
// decoder watermill-redisstream uses (github.com/vmihailenco/msgpack v4):
// the same bytes for the same pairs, and each side decodes the other's.
func TestWireMsgpackVmihailenco(t *testing.T) {
	type named struct {
		name string
		md   map[string]string
	}
	var mds []named
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536, 70000} {
		mds = append(mds,
			named{fmt.Sprintf("value of %d bytes", n), map[string]string{"k": strings.Repeat("v", n)}},
			named{fmt.Sprintf("key of %d bytes", n), map[string]string{strings.Repeat("k", n): "v"}})
	}
	for _, n := range []int{1, 15, 16, 300, 65535, 65536, 70000} {
		mds = append(mds, named{fmt.Sprintf("%d keys", n), manyKeys(n)})
	}
	for _, c := range wireCases(false) {
		if len(c.md) > 0 {
			mds = append(mds, named{c.name, c.md})
		}
	}
	for _, nmd := range mds {
		md := nmd.md
		t.Run(nmd.name, func(t *testing.T) {
			ours := appendMsgpackMap(nil, md)

			// Their bytes for our pairs in our order (map iteration order
			// differs from run to run).
			var order []string
			if err := decodeMsgpackMap(ours, func(k, _ string) { order = append(order, k) }); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			enc := msgpack.NewEncoder(&buf)
			if err := enc.EncodeMapLen(len(md)); err != nil {
				t.Fatal(err)
			}
			for _, k := range order {
				if err := enc.EncodeString(k); err != nil {
					t.Fatal(err)
				}
				if err := enc.EncodeString(md[k]); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(ours, buf.Bytes()) {
				t.Fatalf("our bytes differ from vmihailenco/msgpack's for the same pairs:\nours   % x\ntheirs % x", headBytes(ours), headBytes(buf.Bytes()))
			}

			// What watermill-redisstream's marshaller writes, with its own
			// map order: the same length and header, and we read it.
			theirs, err := msgpack.Marshal(message.Metadata(md))
			if err != nil {
				t.Fatal(err)
			}
			if len(theirs) != len(ours) || !bytes.Equal(theirs[:mapHeaderLen(len(md))], ours[:mapHeaderLen(len(md))]) {
				t.Fatalf("length %d, header % x; vmihailenco/msgpack: %d, % x", len(ours), headBytes(ours), len(theirs), headBytes(theirs))
			}
			got := map[string]string{}
			if err := decodeMsgpackMap(theirs, func(k, v string) { got[k] = v }); err != nil {
				t.Fatalf("decoding vmihailenco/msgpack's bytes: %v", err)
			}
			if diff := metadataDiff(md, got); diff != "" {
				t.Fatalf("decoding vmihailenco/msgpack's bytes: %s", diff)
			}

			// They read ours.
			var back message.Metadata
			if err := msgpack.Unmarshal(ours, &back); err != nil {
				t.Fatalf("vmihailenco/msgpack cannot decode ours: %v", err)
			}
			if diff := metadataDiff(md, back); diff != "" {
				t.Fatalf("vmihailenco/msgpack decoding ours: %s", diff)
			}
		})
	}
}

func mapHeaderLen(n int) int {
	switch {
	case n <= 15:
		return 1
	case n <= 0xffff:
		return 3
	}
	return 5
}

func headBytes(b []byte) []byte { return b[:min(len(b), 24)] }

// decodeMsgpackMap decodes b with appendMsgpackPairs and calls set for each
// pair, in order.
func decodeMsgpackMap(b []byte, set func(k, v string)) error {
	pairs, err := appendMsgpackPairs(nil, string(b))
	if err != nil {
		return err
	}
	for i := 0; i < len(pairs); i += 2 {
		set(pairs[i], pairs[i+1])
	}
	return nil
}

// TestWireVmihailencoOtherTypes decodes what vmihailenco/msgpack writes for
// metadata held in other Go types: bin values and nil.
func TestWireVmihailencoOtherTypes(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want map[string]string
	}{
		{"map of []byte", map[string][]byte{"k": {0, 0xff}, "e": {}}, map[string]string{"k": "\x00\xff", "e": ""}},
		{"map of any", map[string]any{"s": "v", "b": []byte("w"), "n": nil}, map[string]string{"s": "v", "b": "w", "n": ""}},
		{"nil map", map[string]string(nil), map[string]string{}},
		{"map16 of []byte", func() map[string][]byte {
			m := map[string][]byte{}
			for k, v := range manyKeys(20) {
				m[k] = []byte(strings.Repeat(v, 100))
			}
			return m
		}(), func() map[string]string {
			m := manyKeys(20)
			for k, v := range m {
				m[k] = strings.Repeat(v, 100)
			}
			return m
		}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := msgpack.Marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			if err := decodeMsgpackMap(b, func(k, v string) { got[k] = v }); err != nil {
				t.Fatalf("% x: %v", headBytes(b), err)
			}
			if diff := metadataDiff(c.want, got); diff != "" {
				t.Fatal(diff)
			}
		})
	}
}

// TestWireWatermillMarshaller runs our encoder and decoder against
// watermill-redisstream's DefaultMarshallerUnmarshaller, both ways, with no
// Redis in between (interop_test.go does it through Redis).
func TestWireWatermillMarshaller(t *testing.T) {
	wm := wmredis.DefaultMarshallerUnmarshaller{}
	for _, c := range wireCases(true) {
		t.Run(c.name, func(t *testing.T) {
			want := c.message()

			theirs, err := wm.Marshal("stream", want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decode(asRead(t, mapToVals(theirs)))
			if err != nil {
				t.Fatalf("decoding watermill-redisstream's entry: %v", err)
			}
			requireSame(t, want, got)

			ours := asRead(t, mustEncode(t, FormatWatermill, want))
			if !slices.Equal(slices.Sorted(maps.Keys(ours)), slices.Sorted(maps.Keys(theirs))) {
				t.Fatalf("fields %v, watermill-redisstream writes %v", slices.Sorted(maps.Keys(ours)), slices.Sorted(maps.Keys(theirs)))
			}
			got, err = wm.Unmarshal(ours)
			if err != nil {
				t.Fatalf("watermill-redisstream cannot read our entry: %v", err)
			}
			requireSame(t, want, got)
		})
	}
}

func mapToVals(m map[string]any) []any {
	vals := make([]any, 0, 2*len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		vals = append(vals, k, m[k])
	}
	return vals
}
