package httptransport

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
)

const hexDigits = "0123456789ABCDEF"

// appendJSONString appends s as a JSON string. With ascii, every character
// outside printable ASCII is escaped, so the result can be an HTTP header
// value as it is: encoding/json has no such mode.
func appendJSONString(b []byte, s string, ascii bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < 0x7f {
			i++
			continue
		}
		if c >= 0x80 && !ascii {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch e := strings.IndexByte("\"\\\n\r\t", c); {
		case c < 0x80 && e >= 0:
			b = append(b, '\\', "\"\\nrt"[e])
			i++
		case c < 0x80: // other control characters and DEL
			b = appendU16(b, rune(c))
			i++
		default: // non-ASCII, ascii mode
			r, size := utf8.DecodeRuneInString(s[i:])
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				b = appendU16(appendU16(b, r1), r2)
			} else {
				b = appendU16(b, r)
			}
			i += size
		}
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendU16(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// metadataJSONString is md as a JSON object, keys sorted, made on the
// stack when it is short: the string is its only allocation.
func metadataJSONString(md message.Metadata, ascii bool) string {
	var keysBuf [8]string
	keys := keysBuf[:0]
	for k := range md {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var buf [512]byte
	b := append(buf[:0], '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(append(appendJSONString(b, k, ascii), ':'), md[k], ascii)
	}
	return string(append(b, '}'))
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
