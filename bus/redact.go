package bus

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// redacted replaces a secret. It is the same for every secret so that its
// length says nothing about the secret's.
const redacted = "xxxxx"

// secretWords mark a key whose value is a secret when its lower-cased name,
// with '-' read as '_', contains one of them.
var secretWords = []string{
	"password", "passwd", "secret", "token", "authorization",
	"api_key", "apikey", "credential", "private_key",
}

func isSecretKey(name string) bool { return containsAny(name, secretWords) }

// isHeadersKey reports whether the value under name is a set of HTTP
// headers ("headers", "extra_headers"): every value in it is redacted,
// as tokens travel under any header name (X-Api-Key, X-Hub-Signature,
// vendor ones).
func isHeadersKey(name string) bool { return strings.HasSuffix(strings.ToLower(name), "headers") }

func containsAny(name string, words []string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "-", "_")
	return slices.ContainsFunc(words, func(w string) bool { return strings.Contains(n, w) })
}

var (
	// The userinfo password of a URL anywhere in a text: scheme://user:password@.
	// The password runs to the last '@' before the authority ends, so that an
	// unescaped '@' inside it does not leave its tail visible; quotes and
	// spaces end it so that two URLs in one message stay two.
	urlPassword = regexp.MustCompile(`(?i)([a-z][a-z0-9+.\-]*://[^\s"'<>/?#@:]*):[^\s"'<>/?#]+@`)
	// A secret-named query parameter, in text that is not a whole URL:
	// ?token=…, &password=….
	queryParamSecret = regexp.MustCompile(`(?i)([?&][^\s"'<>=&#]*(?:` +
		strings.Join(secretWords, "|") + `)[^\s"'<>=&#]*=)[^\s"'<>&#]+`)
	// A URL anywhere in a text, up to a space, a quote or an angle bracket.
	urlInText = regexp.MustCompile(`(?i)[a-z][a-z0-9+.\-]*://[^\s"'<>]*`)
)

// redactString hides the secrets that can hide in free text: passwords in
// URLs, the value of every query parameter of a URL (whatever its name:
// API keys hide under names like "code" or "sig"), and secret-named query
// parameters elsewhere.
func redactString(s string) string {
	if !strings.Contains(s, "://") && !strings.Contains(s, "=") {
		return s
	}
	s = urlPassword.ReplaceAllString(s, "${1}:"+redacted+"@")
	s = urlInText.ReplaceAllStringFunc(s, redactQuery)
	return queryParamSecret.ReplaceAllString(s, "${1}"+redacted)
}

// redactQuery replaces the value of each query parameter of rawURL, keeping
// the names; a parameter without "=" may be a bare token and is replaced
// whole. Empty values stay empty.
func redactQuery(rawURL string) string {
	q := strings.IndexByte(rawURL, '?')
	if q < 0 {
		return rawURL
	}
	end := len(rawURL)
	if h := strings.IndexByte(rawURL[q:], '#'); h >= 0 {
		end = q + h
	}
	params := strings.Split(rawURL[q+1:end], "&")
	for i, p := range params {
		name, value, ok := strings.Cut(p, "=")
		switch {
		case !ok && p != "":
			params[i] = redacted
		case value != "":
			params[i] = name + "=" + redacted
		}
	}
	return rawURL[:q+1] + strings.Join(params, "&") + rawURL[end:]
}

// redactError returns err with a redacted message; errors.Is and errors.As
// still see everything err wraps. Use it on errors that may carry what a
// transport was configured with (URLs with credentials) before they leave
// the package.
func redactError(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{err: err}
}

type redactedError struct{ err error }

func (e *redactedError) Error() string { return redactString(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }

// redactAll returns v with every value in it replaced, but empty strings
// (nothing to hide) and the structure of maps and lists.
func redactAll(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		if x == "" {
			return x
		}
		return redacted
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = redactAll(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactAll(e)
		}
		return out
	}
	return redacted
}

// redactValue returns v, a normalized value found under key, with its
// secrets replaced. It copies what it changes and never modifies v.
func redactValue(key string, v any) any {
	if v == nil {
		return nil
	}
	if isSecretKey(key) {
		if s, ok := v.(string); ok && s == "" {
			return s // nothing to hide; an empty secret is worth seeing
		}
		return redacted
	}
	if isHeadersKey(key) {
		return redactAll(v)
	}
	switch x := v.(type) {
	case string:
		return redactString(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = redactValue(k, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactValue(key, e)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = redactString(e)
		}
		return out
	}
	return v
}

// String returns the effective configuration (defaults applied) as YAML,
// with secrets redacted, so that it can be logged.
func (c Config) String() string {
	c.setDefaults()
	node := configNode(reflect.ValueOf(c), "")
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(node); err != nil {
		return fmt.Sprintf("bus.Config(%v)", redactError(err))
	}
	_ = enc.Close()
	return buf.String()
}

// GoString keeps %#v, which would otherwise print the transports' settings
// as they are, from showing secrets.
func (c Config) GoString() string { return c.String() }

// LogValue keeps slog handlers (the JSON one marshals structs field by
// field) from showing secrets.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// configNode builds the YAML of v in struct field order, the order of the
// documentation, rather than the sorted order of a map.
func configNode(v reflect.Value, key string) *yaml.Node {
	if v.Type() == durationType {
		return scalarNode(time.Duration(v.Int()).String())
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		t := v.Type()
		for i := range t.NumField() {
			name := koanfName(t.Field(i))
			if name == "" {
				continue
			}
			n.Content = append(n.Content, scalarNode(name), configNode(v.Field(i), name))
		}
		return n
	case reflect.Map:
		// transports: each section with its type first, as people write it.
		sections := redactValue(key, normalize(v.Interface())).(map[string]any)
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, name := range slices.Sorted(maps.Keys(sections)) {
			section, _ := sections[name].(map[string]any)
			sn := &yaml.Node{Kind: yaml.MappingNode}
			for _, k := range slices.SortedFunc(maps.Keys(section), typeFirst) {
				var vn yaml.Node
				_ = vn.Encode(section[k])
				sn.Content = append(sn.Content, scalarNode(k), &vn)
			}
			n.Content = append(n.Content, scalarNode(name), sn)
		}
		return n
	case reflect.Slice:
		if v.IsNil() {
			// Unset, which is not an empty list: consume.from.
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "~"}
		}
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := range v.Len() {
			n.Content = append(n.Content, configNode(v.Index(i), key))
		}
		return n
	case reflect.String:
		var n yaml.Node
		_ = n.Encode(redactValue(key, v.String()))
		return &n
	default:
		var n yaml.Node
		_ = n.Encode(v.Interface())
		return &n
	}
}

func typeFirst(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "type":
		return -1
	case b == "type":
		return 1
	}
	return strings.Compare(a, b)
}

func scalarNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}
