package httptransport

import (
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// redacted stands for a secret in what the configs print: the same for
// every secret, so that its length says nothing about the secret's.
const redacted = "xxxxx"

// String shows the keys set in c, each secret replaced by xxxxx: header
// values, hmac_secret, and the userinfo, query values and fragment of url
// and proxy. GoString (%#v) and LogValue (slog) show the same.
func (c Config) String() string       { return describe(c) }
func (c Config) GoString() string     { return c.String() }
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// String shows the keys set in c, bearer_token and hmac_secret replaced by
// xxxxx; so do GoString and LogValue.
func (c ReceiverConfig) String() string       { return describe(c) }
func (c ReceiverConfig) GoString() string     { return c.String() }
func (c ReceiverConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// String shows the keys set in c, as ReceiverConfig.String does.
func (c ServerConfig) String() string       { return describe(c) }
func (c ServerConfig) GoString() string     { return c.String() }
func (c ServerConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// String shows the keys set in c, as Config.String and ServerConfig.String
// do.
func (c TransportConfig) String() string       { return describe(c) }
func (c TransportConfig) GoString() string     { return c.String() }
func (c TransportConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// describe writes a config struct as its type and the keys set in it.
func describe(config any) string {
	var b strings.Builder
	v := reflect.ValueOf(config)
	b.WriteString(v.Type().String())
	writeValue(&b, v, "")
	return b.String()
}

// writeValue writes v redacted as its field's redact tag says: "secret"
// replaces it whole, "url" keeps a URL's scheme, host and path, "values"
// replaces the values of a map and keeps its keys.
func writeValue(b *strings.Builder, v reflect.Value, redact string) {
	switch kind := v.Kind(); {
	case redact == "secret":
		b.WriteString(redacted)
	case kind == reflect.String && redact == "url":
		b.WriteString(strconv.Quote(redactURL(v.String())))
	case kind == reflect.String:
		b.WriteString(strconv.Quote(v.String()))
	case kind == reflect.Pointer:
		writeValue(b, v.Elem(), redact)
	case kind == reflect.Struct:
		b.WriteByte('{')
		sep := ""
		// Squashed structs have no name: their fields follow them.
		for _, f := range reflect.VisibleFields(v.Type()) {
			name, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
			if fv := v.FieldByIndex(f.Index); name != "" && name != "-" && !fv.IsZero() {
				b.WriteString(sep + name + ": ")
				writeValue(b, fv, f.Tag.Get("redact"))
				sep = ", "
			}
		}
		b.WriteByte('}')
	case kind == reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(k.String()) + ": ")
			if redact == "values" {
				b.WriteString(redacted)
			} else {
				writeValue(b, v.MapIndex(k), "")
			}
		}
		b.WriteByte('}')
	case kind == reflect.Slice:
		b.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				b.WriteString(", ")
			}
			writeValue(b, v.Index(i), redact)
		}
		b.WriteByte(']')
	default: // durations, numbers, booleans
		fmt.Fprint(b, v.Interface())
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
	if !ok || !urlScheme.MatchString(scheme) {
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
	out := scheme + "://" + authority + path
	if hasQuery {
		params := strings.Split(query, "&")
		for i, param := range params {
			name, value, hasValue := strings.Cut(param, "=")
			switch {
			case !hasValue && param != "":
				params[i] = redacted // a bare token
			case value != "":
				params[i] = name + "=" + redacted
			}
		}
		out += "?" + strings.Join(params, "&")
	}
	if hasFragment {
		out += "#"
		if fragment != "" {
			out += redacted
		}
	}
	return out
}

// urlScheme is an RFC 3986 scheme.
var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

var (
	_ slog.LogValuer = Config{}
	_ slog.LogValuer = ReceiverConfig{}
	_ slog.LogValuer = ServerConfig{}
	_ slog.LogValuer = TransportConfig{}
)
