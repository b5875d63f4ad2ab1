package bus

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

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
	// Maps cannot fail to load, nor koanf's default merge.
	k := koanf.New(".")
	_ = k.Load(confmap.Provider(defaultValues(), ""), nil)
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
		_ = layer.Load(confmap.Provider(values, ""), nil)
		for _, key := range layer.Keys() {
			origins[key] = cmp.Or(where[key], s.name)
		}
		_ = k.Merge(layer)
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
		// The source that set a bad key: the file or variable to fix.
		for _, err := range errs {
			forConfigErrors(err, func(e *ConfigError) {
				if o := origins[e.Key]; o != "" {
					e.Reason += " (from " + o + ")"
				}
			})
		}
		// Every value loaded is scrubbed, unknown keys' included: a reason
		// may quote one.
		return Config{}, joinConfigErrors(errs, collectSecrets(k.Raw()))
	}
	return cfg, nil
}

// FromFile reads a file whose extension says its format: .yaml or .yml,
// .json, .toml.
func FromFile(path string) Source {
	return Source{name: fileSourceName(path), read: func() (map[string]any, map[string]string, error) {
		ext := filepath.Ext(path)
		if _, format := parserFor(ext); format == "" {
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
		values, err := parse(path, ext, data)
		return values, nil, err
	}}
}

func fileSourceName(path string) string { return "file " + path }

// FromBytes parses data in format: "yaml" (or "yml"), "json" or "toml".
func FromBytes(data []byte, format string) Source {
	data = bytes.Clone(data)
	name := "FromBytes(" + format + ")"
	return Source{name: name, read: func() (map[string]any, map[string]string, error) {
		if _, canonical := parserFor(format); canonical == "" {
			return nil, nil, newConfigError(name, "unsupported format: must be yaml, yml, json or toml")
		}
		values, err := parse(name, format, data)
		return values, nil, err
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

// FromEnv reads SWITCHYARD_* variables, each naming a key (see envPrefix),
// a comma-separated value making a list for a list key, and the five
// EVENT_* variables of the original service; the SWITCHYARD_* name of a key
// wins over its EVENT_* one. A SWITCHYARD_* variable whose first segment is
// no section of Config (SWITCHYARD_CONFIG, say) is the application's own
// and left alone, unless a "__" makes it a path: then it is an error. A
// variable set to the empty string counts as unset, as deployment
// templates often leave them.
func FromEnv() Source { return Source{name: "environment", read: readEnv} }

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
	prefixed, _ := env.Provider("", env.Opt{
		Prefix: envPrefix,
		TransformFunc: func(name, value string) (string, any) {
			key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, envPrefix), "__", "."))
			if key == "" || value == "" {
				return "", nil
			}
			// A "__" says the name is meant as a path: a misspelt section.
			if root, _, path := strings.Cut(key, "."); !slices.Contains(configRoots, root) {
				if path {
					misspelt = append(misspelt, name)
				}
				return "", nil
			}
			origins[key] = name
			return key, value
		},
	}).Read() // it cannot fail
	slices.Sort(misspelt)
	for _, name := range misspelt {
		errs = append(errs, newConfigError(name, "names no configuration section"+suggestEnvRoot(name)))
	}
	for key, value := range prefixed {
		flat[key] = value
	}
	return kmaps.Unflatten(flat, "."), origins, errors.Join(errs...)
}

// suggestEnvRoot names the variable that name, whose first segment is no
// section, most likely meant, or lists the sections.
func suggestEnvRoot(name string) string {
	root, rest, _ := strings.Cut(strings.TrimPrefix(name, envPrefix), "__")
	best := closest(strings.ToLower(root), configRoots)
	if best == "" {
		return " (sections: " + strings.Join(configRoots, ", ") + ")"
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

// parserFor returns the parser of format, a name or a file extension, and
// the format's name; "" for none.
func parserFor(format string) (koanf.Parser, string) {
	switch strings.ToLower(strings.TrimPrefix(format, ".")) {
	case "yaml", "yml":
		return yaml.Parser(), "YAML"
	case "json":
		return json.Parser(), "JSON"
	case "toml":
		return toml.Parser(), "TOML"
	}
	return nil, ""
}

// parse parses data, in a format parserFor knows, for the source key.
func parse(key, format string, data []byte) (map[string]any, error) {
	parser, name := parserFor(format)
	values, err := parser.Unmarshal(data)
	if err != nil {
		return nil, newConfigError(key, fmt.Sprintf("cannot be parsed as %s: %v", name, err))
	}
	return normalize(values).(map[string]any), nil
}
