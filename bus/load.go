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
	best, bestDist := "", 3
	for _, r := range configRoots() {
		if d := editDistance(strings.ToLower(root), r); d < bestDist {
			best, bestDist = r, d
		}
	}
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

// configSchema lists the keys of Config: the leaves, decoded one by one so
// that an error names its key, and the sections above them.
type configSchema struct {
	leaves   []configLeaf
	isLeaf   map[string]bool
	sections map[string]bool
}

type configLeaf struct {
	key   string
	index []int
}

var schema = sync.OnceValue(func() configSchema {
	s := configSchema{isLeaf: make(map[string]bool), sections: make(map[string]bool)}
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := koanfName(f)
			if name == "" {
				continue
			}
			key := prefix + name
			idx := append(slices.Clone(index), i)
			switch {
			case f.Type.Kind() == reflect.Map:
				// transports: free-form, each transport decodes its own.
			case f.Type.Kind() == reflect.Struct && f.Type != durationType:
				s.sections[key] = true
				walk(f.Type, key+".", idx)
			default:
				s.leaves = append(s.leaves, configLeaf{key: key, index: idx})
				s.isLeaf[key] = true
			}
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return s
})

// decodeConfig decodes the merged values into a Config. It returns what it
// could decode along with every problem.
func decodeConfig(k *koanf.Koanf) (Config, []error) {
	var cfg Config
	var errs []error
	root := reflect.ValueOf(&cfg).Elem()
	for _, leaf := range schema().leaves {
		raw := k.Get(leaf.key)
		if raw == nil {
			continue
		}
		if err := decodeLeaf(root.FieldByIndex(leaf.index), raw); err != nil {
			errs = append(errs, newConfigError(leaf.key, err.Error()))
		}
	}

	switch raw := k.Get("transports").(type) {
	case nil:
	case map[string]any:
		cfg.Transports = make(map[string]map[string]any, len(raw))
		for _, name := range slices.Sorted(maps.Keys(raw)) {
			section, ok := raw[name].(map[string]any)
			if !ok {
				errs = append(errs, newConfigError("transports."+name,
					"must be a map with at least a type key, got "+kindOf(raw[name])))
				continue
			}
			cfg.Transports[name] = section
		}
	default:
		errs = append(errs, newConfigError("transports", "must be a map of transport names to settings, got "+kindOf(raw)))
	}

	return cfg, append(errs, unknownKeys(k)...)
}

func unknownKeys(k *koanf.Koanf) []error {
	s := schema()
	var errs []error
	for _, key := range k.Keys() {
		switch {
		case key == "transports" || strings.HasPrefix(key, "transports."), s.isLeaf[key]:
		case s.sections[key]:
			if _, ok := k.Get(key).(map[string]any); !ok {
				errs = append(errs, newConfigError(key, "must be a map of keys, got "+kindOf(k.Get(key))))
			}
		case underLeaf(key, s):
			// decodeConfig reported the leaf.
		default:
			errs = append(errs, newConfigError(key, "unknown key"+suggest(key, s)))
		}
	}
	return errs
}

func underLeaf(key string, s configSchema) bool {
	for i := strings.IndexByte(key, '.'); i >= 0; i = nextDot(key, i) {
		if s.isLeaf[key[:i]] {
			return true
		}
	}
	return false
}

func nextDot(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// suggest names the known key that a typo most likely meant: one at most two
// edits away, or else one with the same last segment in another section.
func suggest(key string, s configSchema) string {
	best, bestDist := "", 3
	for _, leaf := range s.leaves {
		if d := editDistance(key, leaf.key); d < bestDist {
			best, bestDist = leaf.key, d
		}
	}
	if best == "" {
		last := key[strings.LastIndexByte(key, '.')+1:]
		for _, leaf := range s.leaves {
			if leaf.key[strings.LastIndexByte(leaf.key, '.')+1:] == last {
				best = leaf.key
				break
			}
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
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

// decodeLeaf sets a scalar or list field of Config from a raw value. Input
// is weakly typed, as environment variables are all strings, but never
// lossy: 12.5 is not an integer, and a bare 100 is not a duration.
func decodeLeaf(v reflect.Value, raw any) error {
	if v.Type() == durationType {
		d, err := toDuration(raw)
		v.SetInt(int64(d))
		return err
	}
	switch v.Kind() {
	case reflect.String:
		s, err := toString(raw)
		v.SetString(s)
		return err
	case reflect.Bool:
		b, err := toBool(raw)
		v.SetBool(b)
		return err
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := toInt(raw)
		if err == nil && v.OverflowInt(n) {
			return fmt.Errorf("is out of range: %d", n)
		}
		v.SetInt(n)
		return err
	case reflect.Float64:
		f, err := toFloat(raw)
		v.SetFloat(f)
		return err
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			ss, err := toStrings(raw)
			v.Set(reflect.ValueOf(ss))
			return err
		}
	}
	panic("bus: Config field of unsupported type " + v.Type().String())
}

func toDuration(raw any) (time.Duration, error) {
	switch x := raw.(type) {
	case time.Duration:
		return x, nil
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf(`must be a duration such as "100ms" or "2s", got %q`, x)
		}
		return d, nil
	}
	if f, ok := asFloat(raw); ok {
		if f == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf(`must be a duration with a unit such as "100ms", got %v`, raw)
	}
	return 0, fmt.Errorf(`must be a duration such as "100ms", got %s`, describe(raw))
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
	return "", fmt.Errorf("must be a string, got %s", describe(raw))
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
	return false, fmt.Errorf("must be a boolean (true/false, yes/no, on/off, 1/0), got %s", describe(raw))
}

func toInt(raw any) (int64, error) {
	switch x := raw.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("must be an integer, got %q", x)
		}
		return n, nil
	}
	if f, ok := asFloat(raw); ok && f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f), nil
	}
	return 0, fmt.Errorf("must be an integer, got %s", describe(raw))
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
	return 0, fmt.Errorf("must be a number, got %s", describe(raw))
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
				return nil, fmt.Errorf("element %d %w", i, err)
			}
			out = append(out, s)
		}
		return out, nil
	case []string:
		return slices.Clone(x), nil
	}
	return nil, fmt.Errorf("must be a list of strings, got %s", describe(raw))
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
// its type, into a struct with koanf tags. Input is weakly typed like the
// rest of the configuration; keys match field tags exactly; a key no field
// takes is an error; fields tagged `koanf:"-"` or untagged are never set.
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
		var unknown []string
		if _, ok := settings["-"]; ok {
			unknown = append(unknown, "-") // would reach a field tagged "-"
		}
		in := settings
		if len(unknown) > 0 {
			in = make(map[string]any, len(settings))
			for k, v := range settings {
				if k != "-" {
					in[k] = v
				}
			}
		}
		unused, err := decodeSection(in, target)
		if err != nil {
			if _, ok := errors.AsType[*mapstructure.DecodeError](err); !ok {
				return fmt.Errorf("bus: decoding %s: %w", prefix, err) // target is not a pointer: a bug
			}
			unused = unusedKeys(in, reflect.TypeOf(target).Elem())
		}
		errs := decodeErrors(prefix, err)
		unknown = append(unknown, unused...)
		slices.Sort(unknown)
		for _, key := range slices.Compact(unknown) {
			errs = append(errs, newConfigError(prefix+"."+key, "unknown key"))
		}
		return errors.Join(errs...)
	}
}

// decodeSection decodes a transport's settings into target and returns the
// keys that no field took.
func decodeSection(settings map[string]any, target any) (unused []string, err error) {
	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:           transportHook,
		WeaklyTypedInput:     true,
		Squash:               true,
		IgnoreUntaggedFields: true,
		Metadata:             &md,
		Result:               target,
		TagName:              "koanf",
		MatchName:            func(key, field string) bool { return key == field && key != "-" },
	})
	if err != nil {
		return nil, err
	}
	err = dec.Decode(settings)
	return md.Unused, err
}

// unusedKeys finds the keys of settings that no field of a t takes, even
// where values do not decode: mapstructure records unused keys only at the
// levels that decoded without error. It decodes a skeleton of settings, every
// value null but the maps, nulling each map that fails until none does.
func unusedKeys(settings map[string]any, t reflect.Type) []string {
	skel := skeleton(settings).(map[string]any)
	for range 100 { // each round nulls at least one map; far more than any section has
		unused, err := decodeSection(skel, reflect.New(t).Interface())
		if err == nil {
			return unused
		}
		progress := false
		for _, e := range decodeErrors("", err) {
			progress = nullKey(skel, strings.TrimPrefix(e.(*ConfigError).Key, ".")) || progress
		}
		if !progress {
			return unused
		}
	}
	return nil
}

// nullKey sets the value at a mapstructure field path ("a.b", "a[k].b") to
// null, or the map holding it when the path goes through a map field.
func nullKey(m map[string]any, path string) bool {
	for {
		seg, rest, more := strings.Cut(path, ".")
		if i := strings.IndexByte(seg, '['); i >= 0 {
			seg, more = seg[:i], false
		}
		v, ok := m[seg]
		if !ok || v == nil {
			return false
		}
		next, isMap := v.(map[string]any)
		if !more || !isMap {
			m[seg] = nil
			return true
		}
		m, path = next, rest
	}
}

// skeleton is v with every value that is not a map replaced by null.
func skeleton(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		out[k] = skeleton(e)
	}
	return out
}

// transportHook makes a transport's section as weakly typed as the rest of
// the configuration. Its errors never repeat the value, which may be a
// secret.
func transportHook(from, to reflect.Type, data any) (any, error) {
	if to == durationType {
		if from == durationType {
			return data, nil
		}
		d, err := toDuration(data)
		if err != nil {
			return nil, errors.New(`must be a duration such as "100ms"`)
		}
		return d, nil
	}
	s, isString := data.(string)
	switch to.Kind() {
	case reflect.Bool:
		if isString {
			if b, ok := parseBool(s); ok {
				return b, nil
			}
			return nil, errors.New("must be a boolean (true/false, yes/no, on/off, 1/0)")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if f, ok := data.(float64); ok && f != math.Trunc(f) {
			return nil, errors.New("must be an integer")
		}
	case reflect.Slice:
		if isString && to.Elem().Kind() != reflect.Uint8 {
			return splitList(s), nil
		}
	}
	return data, nil
}

// decodeErrors turns mapstructure's error tree into ConfigErrors keyed by
// the full path of the field.
func decodeErrors(prefix string, err error) []error {
	if err == nil {
		return nil
	}
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range multi.Unwrap() {
			out = append(out, decodeErrors(prefix, e)...)
		}
		return out
	}
	if de, ok := err.(*mapstructure.DecodeError); ok {
		inner := de.Unwrap()
		if _, nested := errors.AsType[*mapstructure.DecodeError](inner); nested {
			return decodeErrors(prefix, inner)
		}
		key := prefix
		if de.Name() != "" {
			key += "." + de.Name()
		}
		return []error{&ConfigError{Key: key, Reason: redactString(inner.Error()), err: inner}}
	}
	if inner := errors.Unwrap(err); inner != nil {
		return decodeErrors(prefix, inner)
	}
	return []error{&ConfigError{Key: prefix, Reason: redactString(err.Error()), err: err}}
}
