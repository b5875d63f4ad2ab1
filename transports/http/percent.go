package httptransport

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// percentEncode encodes an attribute value for an HTTP header as the
// CloudEvents HTTP binding requires: space, double quote, percent and every
// byte outside printable ASCII become %XX (upper-case hex) of their UTF-8.
func percentEncode(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '%' || r >= 0x7f })
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		if c := s[i]; c > ' ' && c != '"' && c != '%' && c < 0x7f {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

var errHeaderUTF8 = errors.New("percent-decoded header value is not valid UTF-8")

// headerValue decodes a ce-* header value: unquoted if double-quoted (older
// senders), then percent-decoded once, keeping a '%' that starts no escape
// (the CloudEvents Go SDK v2 does not encode); it must then be UTF-8.
func headerValue(v string) (string, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = unquote(v[1 : len(v)-1])
	}
	v, _ = percentDecode(v)
	if !utf8.ValidString(v) {
		return "", errHeaderUTF8
	}
	return v, nil
}

// unquote removes the backslash escapes of an RFC 9110 quoted-string body.
func unquote(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b = append(b, s[i])
	}
	return string(b)
}

// percentDecode decodes every valid %XX of s, leaving a '%' that starts
// none as it is, and reports whether it decoded any. Each round shortens
// s, so decoding until nothing changes ends.
func percentDecode(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, false
	}
	b := make([]byte, 0, len(s))
	changed := false
	for i := 0; i < len(s); i++ {
		if c, ok := unhex(s, i); ok {
			b = append(b, c)
			i += 2
			changed = true
			continue
		}
		b = append(b, s[i])
	}
	return string(b), changed
}

// unhex decodes the %XX escape at s[i], if there is one.
func unhex(s string, i int) (byte, bool) {
	if s[i] != '%' || i+2 >= len(s) {
		return 0, false
	}
	c, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
	return byte(c), err == nil
}
