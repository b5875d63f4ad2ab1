package bus

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-viper/mapstructure/v2"
	kmaps "github.com/knadh/koanf/maps"
	"github.com/knadh/koanf/parsers/json"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// Source is one layer of configuration for LoadConfig: FromFile, FromEnv,
// FromMap or FromBytes. The zero Source is invalid.
type Source struct {
	name string
	// read returns the layer's values, nested, and where each flattened key
	// was set when that is more precise than name (an environment variable).
	read func() (values map[string]any, origins map[string]string, err error)
}

// LoadConfig builds a Config from DefaultConfig and then each source in
// order, a later source overriding an earlier one key by key (a list is
// replaced whole). It then applies the defaults to what was left zero and
// validates the result. Every problem found is reported at once: the error
// joins *ConfigErrors, each naming the key, variable or file to fix, and
// where a bad value came from.
//
// Unknown keys are an error, so that a typo does not silently leave the
// default in place, except under transports.<name>, which each transport
// checks when it decodes its own section.
func LoadConfig(sources ...Source) (Config, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(defaultValues(), ""), nil); err != nil {
		return Config{}, err // a map provider has nothing to fail on
	}
	origins := make(map[string]string)
	var errs []error
	for _, s := range sources {
		if s.read == nil {
			errs = append(errs, newConfigError("LoadConfig", "zero Source: use FromFile, FromEnv, FromMap or FromBytes"))
			continue
		}
		values, where, err := s.read()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		layer := koanf.New(".")
		if err := layer.Load(confmap.Provider(values, ""), nil); err != nil {
			return Config{}, err
		}
		for _, key := range layer.Keys() {
			origins[key] = cmp.Or(where[key], s.name)
		}
		if err := k.Merge(layer); err != nil {
			return Config{}, err
		}
	}
	// A source that could not be read would make every check after it lie.
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}

	cfg, errs := decodeConfig(k)
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		for _, err := range errs {
			annotate(err, origins)
		}
		// Every value loaded, unknown keys' included: a reason may quote
		// one.
		secrets := collectSecrets(k.Raw())
		scrubReasons(errs, secrets)
		return Config{}, joinConfigErrors(errs, secrets)
	}
	return cfg, nil
}

// FromFile reads a file whose extension says its format: .yaml or .yml,
// .json, .toml.
func FromFile(path string) Source {
	return Source{name: "file " + path, read: func() (map[string]any, map[string]string, error) {
		ext := filepath.Ext(path)
		parser, format, ok := parserFor(ext)
		if !ok {
			return nil, nil, newConfigError(path, fmt.Sprintf(
				"unsupported file format %q: the name must end in .yaml, .yml, .json or .toml", ext))
		}
		data, err := file.Provider(path).ReadBytes()
		if err != nil {
			cause := err
			if pe, ok := errors.AsType[*fs.PathError](err); ok {
				cause = pe.Err // the path is already the key
			}
			return nil, nil, &ConfigError{Key: path, Reason: "cannot be read: " + cause.Error(), err: err}
		}
		values, err := parse(parser, format, data)
		if err != nil {
			return nil, nil, newConfigError(path, err.Error())
		}
		return values, nil, nil
	}}
}

// FromBytes parses data in format: "yaml" (or "yml"), "json" or "toml".
func FromBytes(data []byte, format string) Source {
	data = bytes.Clone(data)
	name := "FromBytes(" + format + ")"
	return Source{name: name, read: func() (map[string]any, map[string]string, error) {
		parser, canonical, ok := parserFor(format)
		if !ok {
			return nil, nil, newConfigError(name, "unsupported format: must be yaml, yml, json or toml")
		}
		values, err := parse(parser, canonical, data)
		if err != nil {
			return nil, nil, newConfigError(name, err.Error())
		}
		return values, nil, nil
	}}
}

// FromMap takes values from m, whose keys may be nested maps, dotted paths
// ("routing.percentage"), or both. m is copied: changing it afterwards does
// not change the Source.
func FromMap(m map[string]any) Source {
	flat, _ := kmaps.Flatten(normalize(m).(map[string]any), nil, ".")
	values := kmaps.Unflatten(flat, ".")
	return Source{name: "FromMap", read: func() (map[string]any, map[string]string, error) {
		return kmaps.Copy(values), nil, nil
	}}
}

// envPrefix starts the environment name of every key: the key's path, upper
// case, with "__" for ".": SWITCHYARD_BUS__QUEUE_SIZE is bus.queue_size.
const envPrefix = "SWITCHYARD_"

// legacyEnv are the variables of the service switchyard replaces; they keep
// their exact meanings so deployments move over unchanged.
var legacyEnv = []struct {
	name, key string
	parse     func(string) (any, error)
}{
	{"EVENT_TRANSPORT_USE_REDIS_STREAMS", "routing.enabled", parseEnvBool},
	{"EVENT_TRANSPORT_REDIS_PERCENTAGE", "routing.percentage", parseEnvPercentage},
	{"EVENT_TRANSPORT_FALLBACK_TO_HTTP", "routing.fallback.enabled", parseEnvBool},
	{"EVENT_COALESCING_ENABLED", "coalescing.enabled", parseEnvBool},
	{"EVENT_COALESCING_WINDOW_MS", "coalescing.window", parseEnvMillis},
}

// FromEnv reads SWITCHYARD_* variables, each naming a key (see envPrefix), a
// comma-separated value making a list for a list key, and the five
// EVENT_* variables of the original service. A SWITCHYARD_* variable is a
// key only when its first segment is a section of Config (BUS, TRANSPORTS,
// ROUTING, COALESCING, CONSUME, METRICS): the others (SWITCHYARD_CONFIG,
// say) are the application's own and are left alone, except that one with
// "__" in it is a path to a section that does not exist, and an error. When an EVENT_* variable and
// the SWITCHYARD_* name of the same key are both set, the SWITCHYARD_* one
// wins. A variable set to the empty string counts as unset, as deployment
// templates often leave them.
func FromEnv() Source {
	return Source{name: "environment", read: readEnv}
}

func readEnv() (map[string]any, map[string]string, error) {
	flat := make(map[string]any)
	origins := make(map[string]string)
	var errs []error
	for _, v := range legacyEnv {
		raw := strings.TrimSpace(os.Getenv(v.name))
		if raw == "" {
			continue
		}
		value, err := v.parse(raw)
		if err != nil {
			errs = append(errs, newConfigError(v.name, err.Error()))
			continue
		}
		flat[v.key] = value
		origins[v.key] = v.name
	}
	var misspelt []string
	prefixed, err := env.Provider("", env.Opt{
		Prefix: envPrefix,
		TransformFunc: func(name, value string) (string, any) {
			key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, envPrefix), "__", "."))
			if key == "" || value == "" {
				return "", nil
			}
			// The application's own SWITCHYARD_CONFIG, SWITCHYARD_ADDR are
			// not keys; a "__" says the name is meant as a path, so that a
			// misspelt section is not ignored.
			if root, _, path := strings.Cut(key, "."); !slices.Contains(configRoots(), root) {
				if path {
					misspelt = append(misspelt, name)
				}
				return "", nil
			}
			origins[key] = name
			return key, value
		},
	}).Read()
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(misspelt)
	for _, name := range misspelt {
		errs = append(errs, newConfigError(name, "names no configuration section"+suggestEnvRoot(name)))
	}
	for key, value := range prefixed {
		flat[key] = value
	}
	return kmaps.Unflatten(flat, "."), origins, errors.Join(errs...)
}

// configRoots are the sections of Config, the first segment of every key.
var configRoots = sync.OnceValue(func() []string {
	var roots []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		if name := koanfName(t.Field(i)); name != "" {
			roots = append(roots, name)
		}
	}
	return roots
})

// suggestEnvRoot names the variable that name, whose first segment is no
// section, most likely meant, or lists the sections.
func suggestEnvRoot(name string) string {
	root, rest, _ := strings.Cut(strings.TrimPrefix(name, envPrefix), "__")
	best := closest(strings.ToLower(root), configRoots())
	if best == "" {
		return " (sections: " + strings.Join(configRoots(), ", ") + ")"
	}
	return " (did you mean " + envPrefix + strings.ToUpper(best) + "__" + rest + "?)"
}

func parseEnvBool(s string) (any, error) {
	if b, ok := parseBool(s); ok {
		return b, nil
	}
	return nil, fmt.Errorf("not a boolean (true/false, 1/0, yes/no, on/off): %q", s)
}

func parseEnvPercentage(s string) (any, error) {
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(p) || math.IsInf(p, 0) {
		return nil, fmt.Errorf("not a number: %q", s)
	}
	if p < 0 || p > 100 {
		return nil, fmt.Errorf("must be between 0 and 100, got %s", s)
	}
	return p, nil
}

func parseEnvMillis(s string) (any, error) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("not an integer number of milliseconds: %q", s)
	}
	if ms < 0 {
		return nil, fmt.Errorf("must not be negative, got %s", s)
	}
	if err != nil || ms > math.MaxInt64/int64(time.Millisecond) {
		return nil, fmt.Errorf("too large: %s", s)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// parseBool accepts what people write in environment files.
func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true, true
	case "false", "0", "no", "off":
		return false, true
	}
	return false, false
}

func parserFor(format string) (koanf.Parser, string, bool) {
	switch strings.ToLower(strings.TrimPrefix(format, ".")) {
	case "yaml", "yml":
		return yaml.Parser(), "YAML", true
	case "json":
		return json.Parser(), "JSON", true
	case "toml":
		return toml.Parser(), "TOML", true
	}
	return nil, "", false
}

func parse(p koanf.Parser, format string, data []byte) (map[string]any, error) {
	values, err := p.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("cannot be parsed as %s: %w", format, err)
	}
	return normalize(values).(map[string]any), nil
}

// normalize turns every map into a map[string]any, every list into a []any
// and every whole number into an int, copying, so that the rest of the
// package sees one shape whatever the parser or caller produced. A null in a map counts as unset: a YAML
// section whose keys are all commented out must not wipe the defaults.
func normalize(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if e = normalize(e); e != nil {
				out[k] = e
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case string, bool, int, time.Duration, []byte:
		return x
	case int64:
		return int(x)
	case float64:
		// JSON has only floats: 100000 must not differ from YAML's 100000.
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int(x)
		}
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
// out so that, unless a source sets it, the bus consumes from whatever
// routing.baseline ends up being (setDefaults fills it).
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

// configKeys are the keys of Config, in the order of its fields, but
// those under transports: each transport checks its own.
var configKeys = sync.OnceValue(func() []string {
	var keys []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			switch name := koanfName(f); {
			case name == "" || f.Type.Kind() == reflect.Map:
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, prefix+name+".")
			default:
				keys = append(keys, prefix+name)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return keys
})

// decodeConfig decodes the merged values into a Config. It returns what it
// could decode along with every problem: the values that do not decode,
// then the transport sections that are no map, then the unknown keys.
func decodeConfig(k *koanf.Koanf) (Config, []error) {
	values := k.Raw()
	sectionErrs := checkTransportSections(values)
	var cfg Config
	errs, unknown, err := decode(values, &cfg, "", true)
	if err != nil {
		return Config{}, []error{err} // not a configuration problem: cannot happen with a *Config
	}
	errs = append(errs, sectionErrs...)
	// Each key under an unknown section, so that a misspelt section gets
	// a suggestion per key, and a key set from the environment names its
	// variable.
	var leaves []string
	for _, key := range unknown {
		sub, isMap := k.Get(key).(map[string]any)
		if !isMap || len(sub) == 0 {
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

// checkTransportSections removes from values each transport section that
// is not a map, and reports it. The sections stay raw maps in Config: each
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

// suggest names the known key that a typo most likely meant: one at most two
// edits away, or else one with the same last segment in another section.
func suggest(key string) string {
	best := closest(key, configKeys())
	if best == "" {
		last := key[strings.LastIndexByte(key, '.')+1:]
		for _, known := range configKeys() {
			if known[strings.LastIndexByte(known, '.')+1:] == last {
				best = known
				break
			}
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
		if d := editDistance(word, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of neighbours that turn a into b (the optimal string alignment
// distance): a swap is the commonest typo, and counts one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// annotate adds to each ConfigError in err's tree the source that set its
// key, so that a bad value can be traced to the file or variable to fix.
func annotate(err error, origins map[string]string) {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			annotate(inner, origins)
		}
	case *ConfigError:
		if o := origins[e.Key]; o != "" {
			e.Reason += " (from " + o + ")"
		}
	}
}

// decode decodes in into out, a pointer to a struct whose fields have
// koanf tags: the one decoder of the configuration, for the root Config as
// for each transport's section. Keys match tags exactly; untagged fields
// and fields tagged "-" are never set. Input is weakly typed (decodeHook).
//
// It returns a *ConfigError for each value that does not decode, keyed by
// prefix and the value's path, and the paths of the keys no field takes.
// quote says whether a reason may show the bad value: only where the
// caller scrubs the configuration's secrets from it. err is a bug of the
// caller (out is not a pointer).
func decode(in map[string]any, out any, prefix string, quote bool) (errs []error, unknown []string, err error) {
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
		// Unlike Metadata.Unused, reported at every level, also where a
		// value beside the unknown key does not decode.
		ErrorUnused: true,
		Result:      out,
		TagName:     "koanf",
		MatchName:   func(key, field string) bool { return key == field },
	})
	if err != nil {
		return nil, nil, err
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
		if keys, ok := strings.CutPrefix(inner.Error(), unusedKeysPrefix); ok {
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
	return errs, unknown, nil
}

// unusedKeysPrefix starts the text of mapstructure's ErrorUnused error,
// which lists the keys sorted, joined by ", ", and has no type of its own.
const unusedKeysPrefix = "has invalid keys: "

func joinKey(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	}
	return prefix + "." + path
}

// valueError is a value that does not fit its field: what the field
// wants, and the value as describe shows it.
type valueError struct{ reason, value string }

func (e *valueError) Error() string { return e.reason + ", got " + e.value }

// decodeHook converts a value for the field it decodes into. Input is
// weakly typed, as environment variables are all strings, but never lossy:
// 12.5 is not an integer, and a bare 100 is not a duration. A value of a
// type it leaves alone goes to mapstructure's weak decoding.
func decodeHook(_, to reflect.Type, data any) (any, error) {
	switch to.Kind() {
	case reflect.Int64:
		if to == durationType {
			return toDuration(data)
		}
		return toInteger(to, data)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return toInteger(to, data)
	case reflect.String:
		return toString(data)
	case reflect.Bool:
		return toBool(data)
	case reflect.Float32, reflect.Float64:
		return toFloat(data)
	case reflect.Slice:
		if to.Elem().Kind() == reflect.String {
			return toStrings(data)
		}
		if s, ok := data.(string); ok && to.Elem().Kind() != reflect.Uint8 {
			return splitList(s), nil
		}
	case reflect.Struct:
		// kindOf, not describe: a value where a section was expected may
		// be a secret that lost its key to bad indentation.
		if _, ok := data.(map[string]any); !ok {
			return nil, errors.New("must be a map of keys, got " + kindOf(data))
		}
	}
	return data, nil
}

func toDuration(raw any) (time.Duration, error) {
	switch x := raw.(type) {
	case time.Duration:
		return x, nil
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(x))
		if err != nil {
			return 0, &valueError{`must be a duration such as "100ms" or "2s"`, describe(raw)}
		}
		return d, nil
	}
	if f, ok := asFloat(raw); ok {
		if f == 0 {
			return 0, nil
		}
		return 0, &valueError{`must be a duration with a unit such as "100ms"`, describe(raw)}
	}
	return 0, &valueError{`must be a duration such as "100ms"`, describe(raw)}
}

func toString(raw any) (string, error) {
	switch x := raw.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	if f, ok := asFloat(raw); ok {
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	}
	return "", &valueError{"must be a string", describe(raw)}
}

func toBool(raw any) (bool, error) {
	switch x := raw.(type) {
	case bool:
		return x, nil
	case string:
		if b, ok := parseBool(x); ok {
			return b, nil
		}
	default:
		if f, ok := asFloat(raw); ok && (f == 0 || f == 1) {
			return f == 1, nil
		}
	}
	return false, &valueError{"must be a boolean (true/false, yes/no, on/off, 1/0)", describe(raw)}
}

// toInteger converts raw for an integer field of type t.
func toInteger(t reflect.Type, raw any) (int64, error) {
	var n int64
	switch x := raw.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case string:
		var err error
		if n, err = strconv.ParseInt(strings.TrimSpace(x), 10, 64); err != nil {
			return 0, &valueError{"must be an integer", describe(raw)}
		}
	default:
		f, ok := asFloat(raw)
		if !ok || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, &valueError{"must be an integer", describe(raw)}
		}
		n = int64(f)
	}
	v := reflect.New(t).Elem()
	if v.CanUint() && (n < 0 || v.OverflowUint(uint64(n))) || v.CanInt() && v.OverflowInt(n) {
		return 0, &valueError{"is out of range", describe(raw)}
	}
	return n, nil
}

func toFloat(raw any) (float64, error) {
	if s, ok := raw.(string); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, nil
		}
	} else if f, ok := asFloat(raw); ok {
		return f, nil
	}
	return 0, &valueError{"must be a number", describe(raw)}
}

// toStrings takes a list, or a comma-separated string as an environment
// variable gives it.
func toStrings(raw any) ([]string, error) {
	switch x := raw.(type) {
	case string:
		return splitList(x), nil
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, err := toString(e)
			if err != nil {
				ve := err.(*valueError)
				return nil, &valueError{fmt.Sprintf("element %d %s", i, ve.reason), ve.value}
			}
			out = append(out, s)
		}
		return out, nil
	case []string:
		return slices.Clone(x), nil
	}
	return nil, &valueError{"must be a list of strings", describe(raw)}
}

func splitList(s string) []string {
	out := []string{}
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func asFloat(raw any) (float64, bool) {
	v := reflect.ValueOf(raw)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(v.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(v.Uint()), true
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		return f, !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return 0, false
}

// kindOf names what a value is without showing it: where a section was
// expected, a value may be a secret that lost its key to bad indentation.
func kindOf(raw any) string {
	switch raw.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any, []string:
		return "a list"
	}
	if _, ok := asFloat(raw); ok {
		return "a number"
	}
	return "a value"
}

// describe shows a bad value in an error; the error is redacted.
func describe(raw any) string {
	switch x := raw.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "a map"
	case []any, []string:
		return "a list"
	}
	return fmt.Sprint(raw)
}

// transportDecoder returns the Decode function of transports.Settings for
// the transport called name: it decodes the transport's section, all but
// its type, into a struct with koanf tags, as decode does. A key no field
// takes is an error. The errors never show a value, which may be a secret.
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
		errs, unknown, err := decode(settings, target, prefix, false)
		if err != nil {
			return fmt.Errorf("bus: decoding %s: %w", prefix, err)
		}
		slices.Sort(unknown)
		for _, key := range unknown {
			errs = append(errs, newConfigError(prefix+"."+key, "unknown key"))
		}
		return errors.Join(errs...)
	}
}
