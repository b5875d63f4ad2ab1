package httptransport

import (
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// redacted stands for a secret in what the configs print: the same for
// every secret, so that its length says nothing about the secret's.
const redacted = "xxxxx"

// String shows the keys set in c, each secret replaced by xxxxx: header
// values, hmac_secret, and the userinfo, query values and fragment of url
// and proxy. GoString (%#v) and LogValue (slog) show the same.
func (c Config) String() string       { return describe(reflect.ValueOf(c)) }
func (c Config) GoString() string     { return c.String() }
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// String shows the keys set in c, bearer_token and hmac_secret replaced by
// xxxxx; so do GoString and LogValue.
func (c ReceiverConfig) String() string       { return describe(reflect.ValueOf(c)) }
func (c ReceiverConfig) GoString() string     { return c.String() }
func (c ReceiverConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// String shows the keys set in c, as ReceiverConfig.String does.
func (c ServerConfig) String() string       { return describe(reflect.ValueOf(c)) }
func (c ServerConfig) GoString() string     { return c.String() }
func (c ServerConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// String shows the keys set in c, as Config.String and ServerConfig.String
// do.
func (c TransportConfig) String() string       { return describe(reflect.ValueOf(c)) }
func (c TransportConfig) GoString() string     { return c.String() }
func (c TransportConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// describe writes a config struct as its type and the keys set in it,
// each value redacted as the field's redact tag says: "secret" replaces it
// whole, "url" keeps a URL's scheme, host and path, "values" replaces the
// values of a map and keeps its keys.
func describe(v reflect.Value) string {
	var b strings.Builder
	b.WriteString(v.Type().String())
	writeStruct(&b, v)
	return b.String()
}

func writeStruct(b *strings.Builder, v reflect.Value) {
	b.WriteByte('{')
	first := true
	// Squashed structs have no name: their fields follow them.
	for _, f := range reflect.VisibleFields(v.Type()) {
		name, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		fv := v.FieldByIndex(f.Index)
		if name == "" || name == "-" || fv.IsZero() {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(name + ": ")
		writeValue(b, fv, f.Tag.Get("redact"))
	}
	b.WriteByte('}')
}

var durationType = reflect.TypeFor[time.Duration]()

func writeValue(b *strings.Builder, v reflect.Value, redact string) {
	switch {
	case redact == "secret":
		b.WriteString(redacted)
		return
	case v.Type() == durationType:
		b.WriteString(time.Duration(v.Int()).String())
		return
	}
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		if redact == "url" {
			s = redactURL(s)
		}
		b.WriteString(strconv.Quote(s))
	case reflect.Pointer:
		writeValue(b, v.Elem(), redact)
	case reflect.Struct:
		writeStruct(b, v)
	case reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(k))
			b.WriteString(": ")
			if redact == "values" {
				b.WriteString(redacted)
			} else {
				writeValue(b, v.MapIndex(reflect.ValueOf(k)), "")
			}
		}
		b.WriteByte('}')
	case reflect.Slice:
		b.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				b.WriteString(", ")
			}
			writeValue(b, v.Index(i), redact)
		}
		b.WriteByte(']')
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int64:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	default:
		b.WriteString(v.Kind().String()) // no such field today; never its value
	}
}

// redactURL returns rawURL with its userinfo, the values of its query and
// its fragment replaced by xxxxx. It reads rawURL as text, not with
// url.Parse, so that a URL that does not parse is redacted all the same.
// An '@' after the authority means the userinfo's end cannot be told (a
// '/', '?' or '#' left unescaped in a password puts it there): then all
// but the scheme is replaced. So is everything of a rawURL without a
// scheme.
func redactURL(rawURL string) string {
	switch strings.ToLower(strings.TrimSpace(rawURL)) {
	case "", "none", "environment":
		return rawURL
	}
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok || !validScheme(scheme) {
		return redacted
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if strings.IndexByte(tail, '@') >= 0 {
		return scheme + "://" + redacted
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		authority = redacted + "@" + authority[at+1:]
	}
	tail, fragment, hasFragment := strings.Cut(tail, "#")
	path, query, hasQuery := strings.Cut(tail, "?")
	var b strings.Builder
	b.WriteString(scheme + "://" + authority + path)
	if hasQuery {
		b.WriteByte('?')
		for i, param := range strings.Split(query, "&") {
			if i > 0 {
				b.WriteByte('&')
			}
			name, value, hasValue := strings.Cut(param, "=")
			switch {
			case !hasValue && param != "":
				b.WriteString(redacted) // a bare token
			case hasValue && value != "":
				b.WriteString(name + "=" + redacted)
			default:
				b.WriteString(param)
			}
		}
	}
	if hasFragment {
		b.WriteByte('#')
		if fragment != "" {
			b.WriteString(redacted)
		}
	}
	return b.String()
}

// validScheme reports whether s is an RFC 3986 scheme: a letter, then
// letters, digits, '+', '-' or '.'.
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

var (
	_ slog.LogValuer = Config{}
	_ slog.LogValuer = ReceiverConfig{}
	_ slog.LogValuer = ServerConfig{}
	_ slog.LogValuer = TransportConfig{}
)
