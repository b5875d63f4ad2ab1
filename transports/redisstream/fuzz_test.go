package redisstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/vmihailenco/msgpack"
)

// Shape bits of a fuzzed entry.
const (
	fuzzFlat      = 1 << iota // the id field is "id", not "_watermill_message_uuid"
	fuzzNoID                  // no id field (extra fields may still bring one)
	fuzzNoMeta                // no "metadata" field
	fuzzNoPayload             // no "payload" field
)

// fuzzEntry builds the field map a reader would get from Redis: an id field,
// "metadata" and "payload" as shape says, then extra fields from a list of
// pairs, each string preceded by its length (two bytes, big-endian); a
// truncated tail is ignored. Extra fields may replace the others.
func fuzzEntry(shape uint8, id string, metadata, payload, extra []byte) map[string]any {
	values := map[string]any{}
	switch {
	case shape&fuzzNoID != 0:
	case shape&fuzzFlat != 0:
		values[FieldID] = id
	default:
		values[FieldWatermillUUID] = id
	}
	if shape&fuzzNoMeta == 0 {
		values[FieldMetadata] = string(metadata)
	}
	if shape&fuzzNoPayload == 0 {
		values[FieldPayload] = string(payload)
	}
	next := func() (string, bool) {
		if len(extra) < 2 {
			return "", false
		}
		n := int(binary.BigEndian.Uint16(extra))
		if len(extra)-2 < n {
			return "", false
		}
		s := string(extra[2 : 2+n])
		extra = extra[2+n:]
		return s, true
	}
	for {
		k, ok := next()
		if !ok {
			break
		}
		v, ok := next()
		if !ok {
			break
		}
		values[k] = v
	}
	return values
}

// fuzzExtra is the inverse of fuzzEntry's extra-field parsing.
func fuzzExtra(pairs ...string) []byte {
	var b []byte
	for _, s := range pairs {
		s = s[:min(len(s), 0xffff)]
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return b
}

// fuzzArgs returns the arguments that make fuzzEntry build values (whose
// values must be strings).
func fuzzArgs(values map[string]any) (shape uint8, id string, metadata, payload, extra []byte, ok bool) {
	rest := maps.Clone(values)
	take := func(k string) (string, bool) {
		v, found := rest[k]
		if !found {
			return "", false
		}
		delete(rest, k)
		s, isStr := v.(string)
		if !isStr {
			ok = false
		}
		return s, true
	}
	ok = true
	if s, found := take(FieldWatermillUUID); found {
		id = s
	} else if s, found := take(FieldID); found {
		id, shape = s, fuzzFlat
	} else {
		shape = fuzzNoID
	}
	if s, found := take(FieldMetadata); found {
		metadata = []byte(s)
	} else {
		shape |= fuzzNoMeta
	}
	if s, found := take(FieldPayload); found {
		payload = []byte(s)
	} else {
		shape |= fuzzNoPayload
	}
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(rest)) {
		s, isStr := rest[k].(string)
		if !isStr {
			return 0, "", nil, nil, nil, false
		}
		pairs = append(pairs, k, s)
	}
	return shape, id, metadata, payload, fuzzExtra(pairs...), ok
}

// FuzzDecode checks, for any entry: decode does not panic; it fails only
// with ErrMalformed; what it decodes survives a round trip through either
// format; and from a watermill entry it decodes what watermill-redisstream's
// own unmarshaller decodes.
func FuzzDecode(f *testing.F) {
	add := func(values map[string]any) {
		if shape, id, md, payload, extra, ok := fuzzArgs(values); ok {
			f.Add(shape, id, md, payload, extra)
		}
	}
	for _, c := range wireCases(false) {
		for _, format := range []Format{FormatWatermill, FormatFlat} {
			vals, err := encode(format, c.message())
			if err != nil {
				f.Fatal(err)
			}
			if values := asRead(f, vals); entrySize(values) <= 1024 {
				add(values)
			}
		}
	}
	for _, c := range malformedCases() {
		add(c.values)
	}
	for _, v := range []any{
		map[string][]byte{"k": {0, 0xff}, "": nil},
		map[string]any{"s": "v", "n": nil, "b": []byte("w")},
		map[string]string(nil),
		map[string]string{strings.Repeat("k", 40): strings.Repeat("v", 300)},
		manyKeys(16),
	} {
		md, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), "u", md, []byte("p"), []byte(nil))
	}
	f.Add(uint8(0), "u", []byte("\xde\x00\x01\xd9\x01k\xda\x00\x01v"), []byte(nil), []byte(nil))
	f.Add(uint8(0), "u", []byte("\xdf\x00\x00\x00\x01\xdb\x00\x00\x00\x01k\xc6\x00\x00\x00\x00"), []byte(nil), []byte(nil))
	f.Add(uint8(fuzzFlat), "u", []byte(nil), []byte("p"), fuzzExtra("meta.meta.", "x", "meta.", "", FieldEventKey, "k", FieldWatermillUUID, ""))
	f.Add(uint8(fuzzNoID|fuzzNoMeta), "", []byte(nil), []byte("p"), fuzzExtra(FieldID, "u", "meta.a", "b"))

	unmarshaller := wmredis.DefaultMarshallerUnmarshaller{}
	f.Fuzz(func(t *testing.T, shape uint8, id string, metadata, payload, extra []byte) {
		values := fuzzEntry(shape, id, metadata, payload, extra)
		m, err := decode(values)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if m != nil {
				t.Fatalf("a message with the error: %v", m)
			}
			return
		}
		if m.UUID == "" {
			t.Fatal("decoded a message without a UUID")
		}

		for _, format := range []Format{FormatWatermill, FormatFlat} {
			vals, err := encode(format, m)
			if format == FormatWatermill && m.Metadata.Get(FieldWatermillUUID) != "" {
				// Read from a foreign writer; watermill-redisstream refuses
				// to write it too.
				if err == nil {
					t.Fatalf("encode accepted metadata %s=%q", FieldWatermillUUID, m.Metadata.Get(FieldWatermillUUID))
				}
				continue
			}
			if err != nil {
				t.Fatalf("encode %s: %v", format, err)
			}
			back, err := decode(asRead(t, vals))
			if err != nil {
				t.Fatalf("decode of encode %s: %v", format, err)
			}
			requireSame(t, m, back)
		}

		if _, ok := values[FieldWatermillUUID]; ok {
			theirs, err := unmarshaller.Unmarshal(values)
			if err != nil {
				t.Fatalf("we accept an entry watermill-redisstream refuses: %v", err)
			}
			requireSame(t, theirs, m)
		}
	})
}

func entrySize(values map[string]any) int {
	n := 0
	for k, v := range values {
		n += len(k) + len(v.(string))
	}
	return n
}

// fuzzMarker is in every 3-byte window of a fuzzed password and in nothing
// a Config shows or an error says otherwise, so that no part of the
// password of 3 bytes or more shows iff the marker does not.
const fuzzMarker = '~'

// fuzzPassword puts fuzzMarker before every two bytes of raw.
func fuzzPassword(raw string) string {
	var b strings.Builder
	for i := 0; i < len(raw); i += 2 {
		b.WriteByte(fuzzMarker)
		b.WriteString(raw[i:min(i+2, len(raw))])
	}
	b.WriteByte(fuzzMarker)
	return b.String()
}

// FuzzURLSecret checks, for any password written unescaped in a URL or
// given in the password key: no error of the config's check or of building
// the client's options, and no dump of the config, holds any part of it;
// and a URL that parses yields the password as written.
func FuzzURLSecret(f *testing.F) {
	for _, raw := range []string{"", "pw", "a/b", "a#b", "a?b", "a%b", "a%41", "a b", "a@b", "a:b", "äö€",
		"/#?% @:", "12/34", "x?db=1", "\x00\n\t", "://", "[::1]", "%zz%", "a@b@c"} {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		pw := fuzzPassword(raw)
		check := func(what, s string) {
			if strings.ContainsRune(s, fuzzMarker) {
				t.Fatalf("%s shows the password %q: %s", what, pw, s)
			}
		}
		url := "redis://svc:" + pw + "@127.0.0.1:6380/0"
		for _, c := range []Config{{URL: url}, {URL: "redis://127.0.0.1:6380/0", Password: pw}} {
			err := c.Validate()
			if err != nil {
				check("Validate", err.Error())
			}
			o, oerr := c.universalOptions()
			if oerr != nil {
				check("universalOptions", oerr.Error())
			}
			if (err == nil) != (oerr == nil) {
				t.Fatalf("Validate says %v, universalOptions %v", err, oerr)
			}
			if err == nil && o.Password != pw {
				t.Fatalf("password %q read as %q", pw, o.Password)
			}
			for _, s := range []string{c.String(), c.GoString(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c),
				fmt.Sprintf("%#v", c), fmt.Sprintf("%q", c), fmt.Sprintf("%v", &c)} {
				check("a dump", s)
			}
		}
	})
}
