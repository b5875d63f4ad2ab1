package bus

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/v2"
)

// normalize turns every map into a map[string]any, every list into a []any
// and every whole number into an int, copying, so that the rest of the
// package sees one shape whatever the parser or caller produced. A null in
// a map counts as unset: a YAML section whose keys are all commented out
// must not wipe the defaults.
func normalize(v any) any {
	switch x := v.(type) {
	case int64:
		return int(x)
	case float64:
		// JSON has only floats: 100000 must not differ from YAML's 100000.
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int(x)
		}
		return x
	case []byte:
		return x
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			if e := normalize(it.Value().Interface()); e != nil {
				out[fmt.Sprint(it.Key().Interface())] = e
			}
		}
		return out
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = normalize(rv.Index(i).Interface())
		}
		return out
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return normalize(rv.Elem().Interface())
	}
	return v
}

// defaultValues is the bottom layer of LoadConfig. It leaves consume.from
// out: unset, New fans in every routed transport.
func defaultValues() map[string]any {
	m := configValues(reflect.ValueOf(DefaultConfig())).(map[string]any)
	delete(m["consume"].(map[string]any), "from")
	return m
}

// configValues is v as koanf values: durations as strings, which every
// source can also write.
func configValues(v reflect.Value) any {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	if v.Kind() != reflect.Struct {
		return normalize(v.Interface())
	}
	m := make(map[string]any)
	for i := range v.NumField() {
		if name := koanfName(v.Type().Field(i)); name != "" {
			m[name] = configValues(v.Field(i))
		}
	}
	return m
}

var durationType = reflect.TypeFor[time.Duration]()

func koanfName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// configRoots are the sections of Config, the first segment of every key;
// configKeys its keys, in field order, but those under transports: each
// transport checks its own.
var configRoots, configKeys = configPaths(reflect.TypeFor[Config](), "")

func configPaths(t reflect.Type, prefix string) (roots, keys []string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := koanfName(f)
		if name != "" {
			roots = append(roots, name)
		}
		switch {
		case name == "" || f.Type.Kind() == reflect.Map:
		case f.Type.Kind() == reflect.Struct:
			_, sub := configPaths(f.Type, prefix+name+".")
			keys = append(keys, sub...)
		default:
			keys = append(keys, prefix+name)
		}
	}
	return roots, keys
}

// decodeConfig decodes the merged values into a Config. It returns what it
// could decode along with every problem: the values that do not decode,
// then the transport sections that are no map, then the unknown keys.
func decodeConfig(k *koanf.Koanf) (Config, []error) {
	values := k.Raw()
	sectionErrs := checkTransportSections(values) // before decode, which would trip on them
	var cfg Config
	errs, unknown := decode(values, &cfg, "", true)
	errs = append(errs, sectionErrs...)
	// Each key under an unknown section, so that each gets a suggestion
	// and names its environment variable.
	var leaves []string
	for _, key := range unknown {
		if sub, isMap := k.Get(key).(map[string]any); !isMap || len(sub) == 0 {
			leaves = append(leaves, key)
			continue
		}
		for _, rest := range k.Cut(key).Keys() {
			leaves = append(leaves, key+"."+rest)
		}
	}
	slices.Sort(leaves)
	for _, key := range leaves {
		errs = append(errs, newConfigError(key, "unknown key"+suggest(key)))
	}
	return cfg, errs
}

// checkTransportSections removes from values, and reports, each transport
// section that is not a map. The sections stay raw maps in Config: each
// transport's factory decodes its own (transportDecoder).
func checkTransportSections(values map[string]any) []error {
	switch raw := values["transports"].(type) {
	case nil:
	case map[string]any:
		var errs []error
		for _, name := range slices.Sorted(maps.Keys(raw)) {
			if _, ok := raw[name].(map[string]any); !ok {
				errs = append(errs, newConfigError("transports."+name,
					"must be a map with at least a type key, got "+kindOf(raw[name])))
				delete(raw, name)
			}
		}
		return errs
	default:
		delete(values, "transports")
		return []error{newConfigError("transports", "must be a map of transport names to settings, got "+kindOf(raw))}
	}
	return nil
}

// suggest names the known key that a typo most likely meant: one at most
// two edits away, or else one with the same last segment in another
// section.
func suggest(key string) string {
	best := closest(key, configKeys)
	last := key[strings.LastIndexByte(key, '.')+1:]
	for _, known := range configKeys {
		if best == "" && known[strings.LastIndexByte(known, '.')+1:] == last {
			best = known
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// closest returns the first of the candidates fewest edits from word, if
// that is at most two, or "".
func closest(word string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(word, c, false); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// decode decodes in into out, a pointer to a struct whose fields have
// koanf tags: the one decoder of the configuration, for Config as for each
// transport's section. Keys match tags exactly; untagged fields and fields
// tagged "-" are never set. Input is weakly typed (decodeHook).
//
// It returns a *ConfigError for each value that does not decode, keyed by
// prefix and the value's path, and the paths of the keys no field takes.
// quote says whether a reason may show the bad value: only where the
// caller scrubs the configuration's secrets from it. An out that is no
// pointer is the caller's bug, reported as an error of its own.
func decode(in map[string]any, out any, prefix string, quote bool) (errs []error, unknown []string) {
	if _, ok := in["-"]; ok {
		// mapstructure would look the tag "-" up as a key.
		in = maps.Clone(in)
		delete(in, "-")
		unknown = append(unknown, "-")
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:           decodeHook,
		WeaklyTypedInput:     true,
		Squash:               true,
		IgnoreUntaggedFields: true,
		// Unlike Metadata.Unused, reported at every level, also beside a
		// value that does not decode.
		ErrorUnused: true,
		Result:      out,
		TagName:     "koanf",
		MatchName:   func(key, field string) bool { return key == field },
	})
	if err != nil {
		return []error{fmt.Errorf("bus: decoding %s: %w", prefix, err)}, nil // out is no pointer
	}
	var walk func(error)
	walk = func(err error) {
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range multi.Unwrap() {
				walk(e)
			}
			return
		}
		de, ok := err.(*mapstructure.DecodeError)
		if !ok {
			if inner := errors.Unwrap(err); inner != nil {
				walk(inner)
			} else {
				errs = append(errs, &ConfigError{Key: prefix, Reason: redactString(err.Error()), err: err})
			}
			return
		}
		inner := de.Unwrap()
		if _, ok := errors.AsType[*mapstructure.DecodeError](inner); ok {
			walk(inner)
			return
		}
		// mapstructure's ErrorUnused error has no type of its own.
		if keys, ok := strings.CutPrefix(inner.Error(), "has invalid keys: "); ok {
			for key := range strings.SplitSeq(keys, ", ") {
				unknown = append(unknown, joinKey(de.Name(), key))
			}
			return
		}
		reason := inner.Error()
		if ve, ok := inner.(*valueError); ok && !quote {
			reason = ve.reason
		}
		errs = append(errs, &ConfigError{Key: joinKey(prefix, de.Name()), Reason: redactString(reason), err: inner})
	}
	if err := dec.Decode(in); err != nil {
		walk(err)
	}
	return errs, unknown
}

func joinKey(prefix, path string) string {
	if prefix == "" || path == "" {
		return prefix + path
	}
	return prefix + "." + path
}

// transportDecoder returns the Decode function of transports.Settings for
// the transport called name: it decodes the section, all but its type, as
// decode does. A key no field takes is an error. The errors never show a
// value, which may be a secret.
func (c Config) transportDecoder(name string) func(target any) error {
	prefix := "transports." + name
	section, configured := c.Transports[name]
	settings := make(map[string]any, len(section))
	for k, v := range section {
		if k != "type" {
			settings[k] = normalize(v)
		}
	}
	return func(target any) error {
		if !configured {
			return newConfigError(prefix, "is not configured")
		}
		errs, unknown := decode(settings, target, prefix, false)
		slices.Sort(unknown)
		for _, key := range unknown {
			errs = append(errs, newConfigError(prefix+"."+key, "unknown key"))
		}
		return errors.Join(errs...)
	}
}
