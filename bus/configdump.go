package bus

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// rebuild returns a copy of v, a normalized value found under key, made by
// visit: it returns a value's replacement or, with descend, has a map or a
// list rebuilt entry by entry (a map's entries under their own keys, which
// rekey renames). v itself is never modified.
func rebuild(key string, v any, visit func(key string, v any) (out any, descend bool), rekey func(string) string) any {
	out, descend := visit(key, v)
	if !descend {
		return out
	}
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[rekey(k)] = rebuild(k, e, visit, rekey)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = rebuild(key, e, visit, rekey)
		}
		return l
	}
	return v
}

func sameKey(k string) string { return k }

// scrubValue returns v, a normalized value, with scrub applied to every
// string in it, map keys included.
func (s *secretSet) scrubValue(v any) any {
	return rebuild("", v, func(_ string, v any) (any, bool) {
		if x, ok := v.(string); ok {
			return s.scrub(x), false
		}
		return v, true
	}, s.scrub)
}

// redactAll returns v with every value in it replaced, but empty strings
// (nothing to hide) and the structure of maps and lists.
func redactAll(v any) any {
	return rebuild("", v, func(_ string, v any) (any, bool) {
		switch x := v.(type) {
		case nil:
			return nil, false
		case string:
			if x == "" {
				return x, false
			}
		case map[string]any, []any:
			return nil, true
		}
		return redacted, false
	}, sameKey)
}

// redactValue returns v, a normalized value found under key, with its
// secrets replaced.
func redactValue(key string, v any) any {
	return rebuild(key, v, func(key string, v any) (any, bool) {
		s, isString := v.(string)
		switch secret := isSecretKey(key); {
		case v == nil:
			return nil, false
		case secret && isString && s == "":
			return s, false // an empty secret hides nothing and is worth seeing
		case secret:
			return redacted, false
		case isHeadersKey(key):
			return redactAll(v), false
		case isString:
			return redactText(s, true), false
		}
		return v, true
	}, sameKey)
}

// String returns the effective configuration (defaults applied) as YAML,
// with secrets redacted, so that it can be logged: the values of
// secret-named keys, the userinfo of URLs, and any piece of those secrets
// found elsewhere (a password pasted into another key).
func (c Config) String() string {
	c.setDefaults()
	secrets := configSecrets(c)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(configNode(reflect.ValueOf(c), "")); err != nil {
		return fmt.Sprintf("bus.Config(%v)", scrubError(err, secrets))
	}
	_ = enc.Close()
	return secrets.scrub(buf.String())
}

// GoString keeps %#v from showing secrets.
func (c Config) GoString() string { return c.String() }

// LogValue keeps slog handlers (the JSON one marshals structs field by
// field) from showing secrets.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// configNode builds the YAML of v in struct field order, the order of the
// documentation, rather than the sorted order of a map.
func configNode(v reflect.Value, key string) *yaml.Node {
	var n yaml.Node
	switch {
	case v.Type() == durationType:
		return scalarNode(time.Duration(v.Int()).String())
	case v.Kind() == reflect.Struct:
		n.Kind = yaml.MappingNode
		for i := range v.NumField() {
			if name := koanfName(v.Type().Field(i)); name != "" {
				n.Content = append(n.Content, scalarNode(name), configNode(v.Field(i), name))
			}
		}
	case v.Kind() == reflect.Map:
		// transports: each section with its type first, as people write it.
		sections := redactValue(key, normalize(v.Interface())).(map[string]any)
		n.Kind = yaml.MappingNode
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
	case v.Kind() == reflect.Slice && v.IsNil():
		// Unset, which is not an empty list: consume.from.
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "~"}
	case v.Kind() == reflect.Slice:
		n = yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := range v.Len() {
			n.Content = append(n.Content, configNode(v.Index(i), key))
		}
	default:
		_ = n.Encode(redactValue(key, v.Interface()))
	}
	return &n
}

func typeFirst(a, b string) int {
	if (a == "type") != (b == "type") {
		if a == "type" {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

func scalarNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}
