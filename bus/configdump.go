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

// scrubValue returns v, a normalized value, with scrub applied to every
// string in it, map keys included. It copies what it changes and never
// modifies v.
func (s *secretSet) scrubValue(v any) any {
	switch x := v.(type) {
	case string:
		return s.scrub(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[s.scrub(k)] = s.scrubValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = s.scrubValue(e)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = s.scrub(e)
		}
		return out
	}
	return v
}

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
		return redactText(x, true)
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
			out[i] = redactText(e, true)
		}
		return out
	}
	return v
}

// String returns the effective configuration (defaults applied) as YAML,
// with secrets redacted, so that it can be logged. Beyond the values of
// secret-named keys and the userinfo of URLs, any piece of one of those
// secrets found elsewhere (a password pasted into another key) is
// redacted too.
func (c Config) String() string {
	c.setDefaults()
	node := configNode(reflect.ValueOf(c), "")
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(node); err != nil {
		return fmt.Sprintf("bus.Config(%v)", scrubError(err, configSecrets(c)))
	}
	_ = enc.Close()
	return configSecrets(c).scrub(buf.String())
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
