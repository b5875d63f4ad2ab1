package bus

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
	_ "github.com/switchyard-go/switchyard/transports/http"
	_ "github.com/switchyard-go/switchyard/transports/redisstream"
)

// legacyEnvNames are cleared by every test that reads the environment, so
// that the machine's own variables cannot change its outcome (empty counts
// as unset).
var legacyEnvNames = []string{
	"EVENT_TRANSPORT_USE_REDIS_STREAMS", "EVENT_TRANSPORT_REDIS_PERCENTAGE",
	"EVENT_TRANSPORT_FALLBACK_TO_HTTP", "EVENT_COALESCING_ENABLED", "EVENT_COALESCING_WINDOW_MS",
}

func clearEnv(t *testing.T) {
	t.Helper()
	for _, name := range legacyEnvNames {
		t.Setenv(name, "")
	}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix) {
			t.Setenv(name, "")
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// configErrors flattens err's tree into its ConfigErrors.
func configErrors(err error) []*ConfigError {
	var out []*ConfigError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case *ConfigError:
			out = append(out, e)
		}
	}
	walk(err)
	return out
}

func errorKeys(err error) []string {
	var keys []string
	for _, e := range configErrors(err) {
		keys = append(keys, e.Key)
	}
	return keys
}

const sampleYAML = `
bus:
  lanes: 32
  queue_size: 500
  on_full: reject
  max_retries: -1
  close_timeout: 3s
  dead_letter: {transport: redis, topic: dlq}
transports:
  redis:
    type: redisstream
    url: redis://127.0.0.1:6380/0
    maxlen: 100000
    addrs: [a:1, b:2]
  http:
    type: http
    url: http://127.0.0.1:5000/api/v1/events/{topic}
    timeout: 2s
routing:
  baseline: http
  candidate: redis
  enabled: true
  percentage: 12.5
  event_types: [chat_message, typing]
  salt: pepper
  fallback: {enabled: true, to: http, publish_timeout: 250ms, cooldown: 1m}
coalescing:
  enabled: false
  window: 250ms
  event_types: [typing, presence]
  max_keys: 50
consume:
  from: [redis, http]
`

const sampleJSON = `{
  "bus": {"lanes": 32, "queue_size": 500, "on_full": "reject", "max_retries": -1, "close_timeout": "3s",
          "dead_letter": {"transport": "redis", "topic": "dlq"}},
  "transports": {
    "redis": {"type": "redisstream", "url": "redis://127.0.0.1:6380/0", "maxlen": 100000, "addrs": ["a:1", "b:2"]},
    "http": {"type": "http", "url": "http://127.0.0.1:5000/api/v1/events/{topic}", "timeout": "2s"}
  },
  "routing": {"baseline": "http", "candidate": "redis", "enabled": true, "percentage": 12.5,
              "event_types": ["chat_message", "typing"], "salt": "pepper",
              "fallback": {"enabled": true, "to": "http", "publish_timeout": "250ms", "cooldown": "1m"}},
  "coalescing": {"enabled": false, "window": "250ms", "event_types": ["typing", "presence"], "max_keys": 50},
  "consume": {"from": ["redis", "http"]}
}`

const sampleTOML = `
[bus]
lanes = 32
queue_size = 500
on_full = "reject"
max_retries = -1
close_timeout = "3s"
dead_letter = { transport = "redis", topic = "dlq" }

[transports.redis]
type = "redisstream"
url = "redis://127.0.0.1:6380/0"
maxlen = 100000
addrs = ["a:1", "b:2"]

[transports.http]
type = "http"
url = "http://127.0.0.1:5000/api/v1/events/{topic}"
timeout = "2s"

[routing]
baseline = "http"
candidate = "redis"
enabled = true
percentage = 12.5
event_types = ["chat_message", "typing"]
salt = "pepper"
fallback = { enabled = true, to = "http", publish_timeout = "250ms", cooldown = "1m" }

[coalescing]
enabled = false
window = "250ms"
event_types = ["typing", "presence"]
max_keys = 50

[consume]
from = ["redis", "http"]
`

func sampleConfig() Config {
	return Config{
		Bus: BusConfig{
			Lanes: 32, QueueSize: 500, OnFull: "reject", MaxRetries: -1,
			RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: time.Second, CloseTimeout: 3 * time.Second,
			DeadLetter: DeadLetterConfig{Transport: "redis", Topic: "dlq"},
		},
		Transports: map[string]map[string]any{
			"memory": {"type": "memory"},
			"redis": {"type": "redisstream", "url": "redis://127.0.0.1:6380/0", "maxlen": 100000,
				"addrs": []any{"a:1", "b:2"}},
			"http": {"type": "http", "url": "http://127.0.0.1:5000/api/v1/events/{topic}", "timeout": "2s"},
		},
		Routing: RoutingConfig{
			Baseline: "http", Candidate: "redis", Enabled: true, Percentage: 12.5,
			EventTypes: []string{"chat_message", "typing"}, Salt: "pepper",
			Fallback: FallbackConfig{
				Enabled: true, To: "http", PublishTimeout: 250 * time.Millisecond, Cooldown: time.Minute,
				FailureThreshold: 5, ProbeInterval: 5 * time.Second, MaxKeys: 100000,
			},
		},
		Coalescing: CoalescingConfig{Window: 250 * time.Millisecond, EventTypes: []string{"typing", "presence"}, MaxKeys: 50},
		Consume:    ConsumeConfig{From: []string{"redis", "http"}},
		Metrics:    MetricsConfig{EventTypes: []string{"chat_message", "typing"}},
	}
}

func TestLoadConfigFileFormats(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, content string }{
		{"switchyard.yaml", sampleYAML},
		{"switchyard.yml", sampleYAML},
		{"switchyard.json", sampleJSON},
		{"switchyard.toml", sampleTOML},
		{"SWITCHYARD.YAML", sampleYAML},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := LoadConfig(FromFile(writeFile(t, tc.name, tc.content)))
			require.NoError(t, err)
			assert.Equal(t, sampleConfig(), cfg)
		})
	}
	for _, format := range []string{"yaml", "json", "toml"} {
		t.Run("FromBytes/"+format, func(t *testing.T) {
			t.Parallel()
			content := map[string]string{"yaml": sampleYAML, "json": sampleJSON, "toml": sampleTOML}[format]
			cfg, err := LoadConfig(FromBytes([]byte(content), format))
			require.NoError(t, err)
			assert.Equal(t, sampleConfig(), cfg)
		})
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig()
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), cfg)

	// consume.from stays unset unless a source sets it: New fans in the
	// routed transports that can subscribe.
	cfg, err = LoadConfig(FromMap(map[string]any{
		"transports.http.type": "http",
		"routing.baseline":     "http",
	}))
	require.NoError(t, err)
	assert.Nil(t, cfg.Consume.From)

	// An empty list is a choice, and a section whose keys are all
	// commented out (null in YAML) keeps its defaults.
	cfg, err = LoadConfig(FromBytes([]byte("consume: {from: []}\ncoalescing:\nrouting:\n  salt:\n"), "yaml"))
	require.NoError(t, err)
	assert.Equal(t, []string{}, cfg.Consume.From)
	assert.Equal(t, DefaultConfig().Coalescing, cfg.Coalescing)
}

func TestLoadConfigPrecedence(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, "switchyard.yaml", `
bus: {lanes: 32, queue_size: 500}
transports:
  redis: {type: redisstream, url: "redis://file:6379"}
  http: {type: http}
routing: {percentage: 10}
`)
	t.Setenv("SWITCHYARD_BUS__QUEUE_SIZE", "20")
	t.Setenv("SWITCHYARD_TRANSPORTS__REDIS__URL", "redis://env:6379")
	t.Setenv("SWITCHYARD_CONSUME__FROM", "redis, http")
	t.Setenv("SWITCHYARD_COALESCING__ENABLED", "off")
	t.Setenv("SWITCHYARD_ROUTING__FALLBACK__PUBLISH_TIMEOUT", "1s")
	t.Setenv("SWITCHYARD_ROUTING__SALT", "") // empty: unset

	cfg, err := LoadConfig(FromFile(path), FromEnv())
	require.NoError(t, err)
	assert.Equal(t, 32, cfg.Bus.Lanes, "file over default")
	assert.Equal(t, 20, cfg.Bus.QueueSize, "env over file")
	assert.Equal(t, "block", cfg.Bus.OnFull, "default")
	assert.Equal(t, "redis://env:6379", cfg.Transports["redis"]["url"])
	assert.Equal(t, "redisstream", cfg.Transports["redis"]["type"], "env merges into the file's section")
	assert.Equal(t, []string{"redis", "http"}, cfg.Consume.From)
	assert.False(t, cfg.Coalescing.Enabled)
	assert.Equal(t, time.Second, cfg.Routing.Fallback.PublishTimeout)
	assert.Equal(t, 10.0, cfg.Routing.Percentage)

	// Sources apply in the order given.
	cfg, err = LoadConfig(FromEnv(), FromFile(path))
	require.NoError(t, err)
	assert.Equal(t, 500, cfg.Bus.QueueSize)
	assert.Equal(t, "redis://file:6379", cfg.Transports["redis"]["url"])
}

func TestLoadConfigLegacyEnv(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		check       func(t *testing.T, c Config)
	}{
		{"EVENT_TRANSPORT_USE_REDIS_STREAMS", "true", func(t *testing.T, c Config) { assert.True(t, c.Routing.Enabled) }},
		{"EVENT_TRANSPORT_USE_REDIS_STREAMS", "YES", func(t *testing.T, c Config) { assert.True(t, c.Routing.Enabled) }},
		{"EVENT_TRANSPORT_USE_REDIS_STREAMS", "0", func(t *testing.T, c Config) { assert.False(t, c.Routing.Enabled) }},
		{"EVENT_TRANSPORT_REDIS_PERCENTAGE", "12.5", func(t *testing.T, c Config) { assert.Equal(t, 12.5, c.Routing.Percentage) }},
		{"EVENT_TRANSPORT_REDIS_PERCENTAGE", "100", func(t *testing.T, c Config) { assert.Equal(t, 100.0, c.Routing.Percentage) }},
		{"EVENT_TRANSPORT_FALLBACK_TO_HTTP", "On", func(t *testing.T, c Config) { assert.True(t, c.Routing.Fallback.Enabled) }},
		{"EVENT_COALESCING_ENABLED", "off", func(t *testing.T, c Config) { assert.False(t, c.Coalescing.Enabled) }},
		{"EVENT_COALESCING_ENABLED", "no", func(t *testing.T, c Config) { assert.False(t, c.Coalescing.Enabled) }},
		{"EVENT_COALESCING_WINDOW_MS", "250", func(t *testing.T, c Config) {
			assert.Equal(t, 250*time.Millisecond, c.Coalescing.Window)
		}},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(tc.name, tc.value)
			// The master switch needs a candidate.
			cfg, err := LoadConfig(FromMap(map[string]any{
				"transports.redis.type": "redisstream",
				"routing.candidate":     "redis",
			}), FromEnv())
			require.NoError(t, err)
			tc.check(t, cfg)
		})
	}

	t.Run("SWITCHYARD name wins", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("EVENT_COALESCING_WINDOW_MS", "250")
		t.Setenv("SWITCHYARD_COALESCING__WINDOW", "50ms")
		cfg, err := LoadConfig(FromEnv())
		require.NoError(t, err)
		assert.Equal(t, 50*time.Millisecond, cfg.Coalescing.Window)
	})
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	for _, tc := range []struct {
		name    string
		env     map[string]string
		sources func(t *testing.T) []Source
		keys    []string // the ConfigError keys, in order
		want    []string // substrings of the message
		is      error
	}{
		{
			name:    "percentage out of range",
			sources: fromMap(map[string]any{"routing": map[string]any{"percentage": 150}}),
			keys:    []string{"routing.percentage"},
			want:    []string{"bus: config: routing.percentage: must be between 0 and 100, got 150 (from FromMap)"},
		},
		{
			name: "window from file",
			sources: func(t *testing.T) []Source {
				return []Source{FromFile(writeFile(t, "c.yaml", "coalescing: {window: abc}\n"))}
			},
			keys: []string{"coalescing.window"},
			want: []string{`coalescing.window: must be a duration such as "100ms" or "2s", got "abc" (from file `},
		},
		{
			name:    "window from env",
			env:     map[string]string{"EVENT_COALESCING_WINDOW_MS": "abc"},
			sources: func(*testing.T) []Source { return []Source{FromEnv()} },
			keys:    []string{"EVENT_COALESCING_WINDOW_MS"},
			want:    []string{`bus: config: EVENT_COALESCING_WINDOW_MS: not an integer number of milliseconds: "abc"`},
		},
		{
			name: "every legacy variable at once",
			env: map[string]string{
				"EVENT_TRANSPORT_USE_REDIS_STREAMS": "maybe",
				"EVENT_TRANSPORT_REDIS_PERCENTAGE":  "150",
				"EVENT_TRANSPORT_FALLBACK_TO_HTTP":  "2",
				"EVENT_COALESCING_ENABLED":          "enabled",
				"EVENT_COALESCING_WINDOW_MS":        "1.5",
			},
			sources: func(*testing.T) []Source { return []Source{FromEnv()} },
			keys: []string{"EVENT_TRANSPORT_USE_REDIS_STREAMS", "EVENT_TRANSPORT_REDIS_PERCENTAGE",
				"EVENT_TRANSPORT_FALLBACK_TO_HTTP", "EVENT_COALESCING_ENABLED", "EVENT_COALESCING_WINDOW_MS"},
			want: []string{
				`EVENT_TRANSPORT_USE_REDIS_STREAMS: not a boolean (true/false, 1/0, yes/no, on/off): "maybe"`,
				`EVENT_TRANSPORT_REDIS_PERCENTAGE: must be between 0 and 100, got 150`,
			},
		},
		{
			name:    "percentage not a number",
			env:     map[string]string{"EVENT_TRANSPORT_REDIS_PERCENTAGE": "half"},
			sources: func(*testing.T) []Source { return []Source{FromEnv()} },
			keys:    []string{"EVENT_TRANSPORT_REDIS_PERCENTAGE"},
			want:    []string{`not a number: "half"`},
		},
		{
			name:    "SWITCHYARD value names its variable",
			env:     map[string]string{"SWITCHYARD_BUS__LANES": "many"},
			sources: func(*testing.T) []Source { return []Source{FromEnv()} },
			keys:    []string{"bus.lanes"},
			want:    []string{`bus.lanes: must be an integer, got "many" (from SWITCHYARD_BUS__LANES)`},
		},
		{
			name:    "missing file",
			sources: func(*testing.T) []Source { return []Source{FromFile(missing)} },
			keys:    []string{missing},
			want:    []string{missing + ": cannot be read: no such file or directory"},
			is:      fs.ErrNotExist,
		},
		{
			name: "directory",
			sources: func(t *testing.T) []Source {
				path := filepath.Join(t.TempDir(), "conf.d.yaml")
				require.NoError(t, os.Mkdir(path, 0o700))
				return []Source{FromFile(path)}
			},
			want: []string{"conf.d.yaml: cannot be read: is a directory"},
		},
		{
			name:    "unsupported extension",
			sources: func(*testing.T) []Source { return []Source{FromFile("/etc/switchyard.ini")} },
			keys:    []string{"/etc/switchyard.ini"},
			want:    []string{`unsupported file format ".ini"`},
		},
		{
			name: "unparsable file",
			sources: func(t *testing.T) []Source {
				return []Source{FromFile(writeFile(t, "bad.json", `{"bus": `))}
			},
			want: []string{"bad.json: cannot be parsed as JSON"},
		},
		{
			name:    "unknown format",
			sources: func(*testing.T) []Source { return []Source{FromBytes(nil, "ini")} },
			keys:    []string{"FromBytes(ini)"},
		},
		{
			name:    "zero Source",
			sources: func(*testing.T) []Source { return []Source{{}} },
			keys:    []string{"LoadConfig"},
		},
		{
			name:    "typo",
			sources: fromMap(map[string]any{"routing": map[string]any{"percentge": 5}}),
			keys:    []string{"routing.percentge"},
			want:    []string{"routing.percentge: unknown key (did you mean routing.percentage?)"},
		},
		{
			name:    "typo in env",
			env:     map[string]string{"SWITCHYARD_ROUTING__PERCENTGE": "5"},
			sources: func(*testing.T) []Source { return []Source{FromEnv()} },
			keys:    []string{"routing.percentge"},
			want:    []string{"(from SWITCHYARD_ROUTING__PERCENTGE)"},
		},
		{
			name:    "key in the wrong section",
			sources: fromMap(map[string]any{"bus.window": "1s"}),
			keys:    []string{"bus.window"},
			want:    []string{"did you mean coalescing.window?"},
		},
		{
			name:    "section given a value",
			sources: fromMap(map[string]any{"routing": 5}),
			keys:    []string{"routing"},
			want:    []string{"routing: must be a map of keys, got a number"},
		},
		{
			name:    "leaf given a map",
			sources: fromMap(map[string]any{"coalescing.window.ms": 5}),
			keys:    []string{"coalescing.window"},
			want:    []string{"got a map"},
		},
		{
			name:    "bare number for a duration",
			sources: fromMap(map[string]any{"bus.close_timeout": 100}),
			keys:    []string{"bus.close_timeout"},
			want:    []string{`must be a duration with a unit such as "100ms", got 100`},
		},
		{
			name:    "fraction for an integer",
			sources: fromMap(map[string]any{"bus.lanes": 12.5}),
			keys:    []string{"bus.lanes"},
			want:    []string{"must be an integer, got 12.5"},
		},
		{
			name:    "list element",
			sources: fromMap(map[string]any{"consume.from": []any{"memory", map[string]any{"a": 1}}}),
			keys:    []string{"consume.from"},
			want:    []string{"element 1 must be a string, got a map"},
		},
		{
			name:    "transport section not a map",
			sources: fromMap(map[string]any{"transports.redis": "hunter2"}),
			keys:    []string{"transports.redis"},
			want:    []string{"transports.redis: must be a map with at least a type key, got a string"},
		},
		{
			name: "every validation problem at once",
			sources: fromMap(map[string]any{
				"bus":        map[string]any{"lanes": 70000, "queue_size": -1, "on_full": "drop", "retry_backoff": "-1s", "max_retry_backoff": "-1s", "close_timeout": "-1s", "dead_letter": map[string]any{"transport": "nope"}},
				"transports": map[string]any{"x": map[string]any{"url": "u"}, "y": map[string]any{"type": 5}},
				"routing":    map[string]any{"baseline": "redis", "enabled": true, "percentage": -1, "fallback": map[string]any{"to": "nope", "publish_timeout": "-1s", "cooldown": "-1s"}},
				"coalescing": map[string]any{"window": "-1s", "max_keys": -1},
				"consume":    map[string]any{"from": []any{"memory", "memory", "kafka"}},
			}),
			keys: []string{
				"bus.lanes", "bus.queue_size", "bus.on_full", "bus.close_timeout", "bus.retry_backoff",
				"bus.max_retry_backoff", "bus.dead_letter.transport",
				"transports.x.type", "transports.y.type",
				"routing.baseline", "routing.candidate", "routing.percentage", "routing.fallback.to",
				"routing.fallback.publish_timeout", "routing.fallback.cooldown",
				"coalescing.window", "coalescing.max_keys",
				"consume.from", "consume.from",
			},
			want: []string{`routing.baseline: names no configured transport: "redis" (configured: memory, x, y)`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := LoadConfig(tc.sources(t)...)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			if tc.keys != nil {
				assert.Equal(t, tc.keys, errorKeys(err))
			}
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func fromMap(m map[string]any) func(*testing.T) []Source {
	return func(*testing.T) []Source { return []Source{FromMap(m)} }
}

func TestConfigErrorFormat(t *testing.T) {
	t.Parallel()
	err := error(&ConfigError{Key: "routing.percentage", Reason: "must be between 0 and 100, got 150"})
	assert.EqualError(t, err, "bus: config: routing.percentage: must be between 0 and 100, got 150")
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.NotErrorIs(t, err, ErrClosed)
}

func TestFromMapIsCopied(t *testing.T) {
	t.Parallel()
	m := map[string]any{"routing": map[string]any{"percentage": 5}}
	src := FromMap(m)
	m["routing"].(map[string]any)["percentage"] = 500
	cfg, err := LoadConfig(src)
	require.NoError(t, err)
	assert.Equal(t, 5.0, cfg.Routing.Percentage)
	// The same Source loads the same way twice.
	cfg2, err := LoadConfig(src)
	require.NoError(t, err)
	assert.Equal(t, cfg, cfg2)
}

func TestSetDefaults(t *testing.T) {
	t.Parallel()
	var c Config
	c.setDefaults()
	want := DefaultConfig()
	// Bools and lists are choices that setDefaults leaves alone.
	want.Coalescing.Enabled = false
	want.Coalescing.EventTypes = nil
	want.Routing.EventTypes = nil
	want.Metrics.EventTypes = nil
	assert.Equal(t, want, c)
	require.NoError(t, c.Validate())

	c = Config{
		Bus:        BusConfig{MaxRetries: -1},
		Transports: map[string]map[string]any{"http": {"type": "http"}},
		Routing:    RoutingConfig{Baseline: "http"},
		Consume:    ConsumeConfig{From: []string{}},
	}
	c.setDefaults()
	assert.Equal(t, -1, c.Bus.MaxRetries, "negative retries without limit")
	assert.Equal(t, map[string]map[string]any{"http": {"type": "http"}}, c.Transports)
	assert.Equal(t, []string{}, c.Consume.From)

	c = Config{Routing: RoutingConfig{Baseline: "http"}}
	c.setDefaults()
	assert.Nil(t, c.Consume.From, "left for New to resolve")
}

func TestValidateDefault(t *testing.T) {
	t.Parallel()
	assert.NoError(t, DefaultConfig().Validate())
}

// Event types and transport names become metric label values: one that is
// not UTF-8 is refused at New, not at every scrape after.
func TestValidateLabelValuesAreUTF8(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.Metrics.EventTypes = []string{"chat_message", "bad\xff"}
	c.Routing.EventTypes = []string{"\xfe"}
	c.Coalescing.EventTypes = []string{"typing\xc3"}
	c.Transports["hub\xff"] = map[string]any{"type": "memory"}
	err := c.Validate()
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Equal(t, []string{"metrics.event_types", "routing.event_types", "coalescing.event_types", "transports"}, errorKeys(err))
	assert.Contains(t, err.Error(), "not valid UTF-8")
}

func TestValidateTransportTypes(t *testing.T) {
	t.Parallel()
	reg := transports.NewRegistry()
	reg.Register("fake", func(transports.Settings) (transports.Transport, error) { return transports.Transport{}, nil })
	cfg := Config{Transports: map[string]map[string]any{
		"a": {"type": "fake"},
		"x": {"type": "kafka"},
		"z": {}, // Validate's to report
	}}
	err := cfg.validateTransportTypes(reg)
	require.Error(t, err)
	assert.Equal(t, []string{"transports.x.type"}, errorKeys(err))
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorIs(t, err, transports.ErrUnknown)
	assert.Contains(t, err.Error(), `bus: config: transports.x.type: `)
	assert.Contains(t, err.Error(), `"kafka"`)
	assert.Contains(t, err.Error(), "known: fake")

	cfg.Transports = map[string]map[string]any{"a": {"type": "fake"}}
	assert.NoError(t, cfg.validateTransportTypes(reg))
}

type fakeTransportConfig struct {
	URL      string            `koanf:"url"`
	Password string            `koanf:"password"`
	Timeout  time.Duration     `koanf:"timeout"`
	MaxLen   int               `koanf:"maxlen"`
	TLS      bool              `koanf:"tls"`
	Addrs    []string          `koanf:"addrs"`
	Headers  map[string]string `koanf:"headers"`
	Ratio    float64           `koanf:"ratio"`
	Group    struct {
		Name string `koanf:"name"`
	} `koanf:"group"`
	Untagged string
	KeyFunc  func() string `koanf:"-"`
}

func TestTransportDecoder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		section map[string]any
		want    fakeTransportConfig
		keys    []string
	}{
		{
			name: "typed",
			section: map[string]any{"type": "fake", "url": "redis://h", "timeout": "2s", "maxlen": 10, "tls": true,
				"addrs": []any{"a", "b"}, "headers": map[string]any{"X-A": "1"}, "ratio": 0.5,
				"group": map[string]any{"name": "hub"}},
			want: fakeTransportConfig{URL: "redis://h", Timeout: 2 * time.Second, MaxLen: 10, TLS: true,
				Addrs: []string{"a", "b"}, Headers: map[string]string{"X-A": "1"}, Ratio: 0.5,
				Group: struct {
					Name string `koanf:"name"`
				}{"hub"}},
		},
		{
			name:    "strings, as from the environment",
			section: map[string]any{"type": "fake", "timeout": "150ms", "maxlen": "10", "tls": "yes", "addrs": "a, b", "ratio": "1"},
			want:    fakeTransportConfig{Timeout: 150 * time.Millisecond, MaxLen: 10, TLS: true, Addrs: []string{"a", "b"}, Ratio: 1},
		},
		{
			name:    "unknown keys",
			section: map[string]any{"type": "fake", "urll": "x", "Untagged": "x", "KeyFunc": "x", "-": "x", "key_func": "x"},
			keys:    []string{"transports.t.-", "transports.t.KeyFunc", "transports.t.Untagged", "transports.t.key_func", "transports.t.urll"},
		},
		{
			name:    "bad values",
			section: map[string]any{"type": "fake", "timeout": "soon", "maxlen": "many", "tls": "maybe", "ratio": "x"},
			keys:    []string{"transports.t.maxlen", "transports.t.ratio", "transports.t.timeout", "transports.t.tls"},
		},
		{
			name: "bad values and unknown keys at once",
			section: map[string]any{"type": "fake", "maxlen": "many", "urll": "x",
				"group": map[string]any{"name": map[string]any{}, "size": 3}},
			keys: []string{"transports.t.maxlen", "transports.t.group.name", "transports.t.urll", "transports.t.group.size"},
		},
		{
			name:    "fraction for an integer",
			section: map[string]any{"type": "fake", "maxlen": 1.5},
			keys:    []string{"transports.t.maxlen"},
		},
		{
			name:    "nested",
			section: map[string]any{"type": "fake", "group": map[string]any{"name": []any{map[string]any{}}, "size": 3}},
			keys:    []string{"transports.t.group.name", "transports.t.group.size"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Transports: map[string]map[string]any{"t": tc.section}}
			var got fakeTransportConfig
			err := cfg.transportDecoder("t")(&got)
			if tc.keys == nil {
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			keys := errorKeys(err)
			assert.ElementsMatch(t, tc.keys, keys, "%v", err)
		})
	}

	t.Run("not configured", func(t *testing.T) {
		t.Parallel()
		err := Config{}.transportDecoder("nope")(&fakeTransportConfig{})
		assert.Equal(t, []string{"transports.nope"}, errorKeys(err))
	})

	t.Run("does not echo secrets", func(t *testing.T) {
		t.Parallel()
		cfg := Config{Transports: map[string]map[string]any{"t": {
			"type": "fake", "maxlen": "hunter2", "password": []any{"hunter2"}, "timeout": "hunter2",
		}}}
		err := cfg.transportDecoder("t")(&fakeTransportConfig{})
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "hunter2")
	})

	t.Run("after LoadConfig", func(t *testing.T) {
		t.Parallel()
		cfg, err := LoadConfig(FromMap(map[string]any{
			"transports.redis": map[string]any{"type": "fake", "timeout": "3s", "addrs": "x:1,y:2"},
		}))
		require.NoError(t, err)
		var got fakeTransportConfig
		require.NoError(t, cfg.transportDecoder("redis")(&got))
		assert.Equal(t, 3*time.Second, got.Timeout)
		assert.Equal(t, []string{"x:1", "y:2"}, got.Addrs)
	})
}

func TestLoadConfigErrorsAreRedacted(t *testing.T) {
	clearEnv(t)
	const secret = "hunter2"
	t.Setenv("SWITCHYARD_ROUTING__BASELINE", "redis://user:"+secret+"@redis:6379")
	t.Setenv("SWITCHYARD_BUS__LANES", "redis://:"+secret+"@redis:6379")
	t.Setenv("SWITCHYARD_ROUTING__FALLBACK__TO", "https://api.example/?token="+secret)
	_, err := LoadConfig(FromMap(map[string]any{
		"consume.from": []any{"amqp://guest:" + secret + "@rabbit/"},
	}), FromEnv())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret)
	for _, e := range configErrors(err) {
		assert.NotContains(t, e.Reason, secret)
	}
	assert.Contains(t, err.Error(), "redis://user:xxxxx@redis:6379")
	assert.Contains(t, err.Error(), "amqp://guest:xxxxx@rabbit/")
}

func ExampleLoadConfig() {
	cfg, err := LoadConfig(FromMap(map[string]any{
		"transports": map[string]any{
			"redis": map[string]any{"type": "redisstream", "url": "redis://:s3cret@127.0.0.1:6380/0"},
		},
		"routing.candidate":  "redis",
		"routing.enabled":    true,
		"routing.percentage": 25,
		"coalescing.window":  "250ms",
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Routing.Baseline, "→", cfg.Routing.Candidate, cfg.Routing.Percentage, "%")
	fmt.Println("coalescing window:", cfg.Coalescing.Window)
	fmt.Println("fallback probe interval:", cfg.Routing.Fallback.ProbeInterval)

	_, err = LoadConfig(FromMap(map[string]any{"routing.percentage": 150}))
	fmt.Println(err, errors.Is(err, ErrInvalidConfig))
	// Output:
	// memory → redis 25 %
	// coalescing window: 250ms
	// fallback probe interval: 5s
	// bus: config: routing.percentage: must be between 0 and 100, got 150 (from FromMap) true
}

// The variables an application reads for itself (the chat demo's
// SWITCHYARD_CONFIG, the soak's SWITCHYARD_SOAK_DURATION) are not
// configuration keys: only a variable whose first segment is a section of
// Config is.
func TestFromEnvLeavesApplicationVariables(t *testing.T) {
	clearEnv(t)
	t.Setenv("SWITCHYARD_CONFIG", "/etc/switchyard.yaml")
	t.Setenv("SWITCHYARD_SOAK_DURATION", "2m")
	t.Setenv("SWITCHYARD_ADDR", "127.0.0.1:8000")
	t.Setenv("SWITCHYARD_ROUTING__PERCENTAGE", "5")
	cfg, err := LoadConfig(FromEnv())
	require.NoError(t, err)
	want := DefaultConfig()
	want.Routing.Percentage = 5
	assert.Equal(t, want, cfg)
}

// A misspelt section is an error, not an application's variable: a "__"
// says the variable is a configuration path.
func TestFromEnvMisspeltSection(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"SWITCHYARD_ROUTNG__PERCENTAGE", "bus: config: SWITCHYARD_ROUTNG__PERCENTAGE: names no configuration section (did you mean SWITCHYARD_ROUTING__PERCENTAGE?)"},
		{"SWITCHYARD_TRANSPRTS__REDIS__PASSWORD", "(did you mean SWITCHYARD_TRANSPORTS__REDIS__PASSWORD?)"},
		{"SWITCHYARD_APP__NAME", "bus: config: SWITCHYARD_APP__NAME: names no configuration section (sections: bus, transports, routing, coalescing, consume, metrics)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(tc.name, "hunter2")
			_, err := LoadConfig(FromEnv())
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Equal(t, []string{tc.name}, errorKeys(err))
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "hunter2")
		})
	}
}

// fieldErrorRegistry holds a transport type "checked" whose factory
// returns what err returns.
func fieldErrorRegistry(err func(s transports.Settings) error) *transports.Registry {
	reg := transports.NewRegistry()
	reg.Register("checked", func(s transports.Settings) (transports.Transport, error) {
		return transports.Transport{}, err(s)
	})
	return reg
}

func checkedConfig(section map[string]any) Config {
	section["type"] = "checked"
	return Config{
		Bus:        BusConfig{DeadLetter: DeadLetterConfig{Transport: "c"}},
		Transports: map[string]map[string]any{"c": section},
		Routing:    RoutingConfig{Baseline: "c"},
	}
}

// A transport's own configuration checks name the full key and are
// configuration errors like the bus's.
func TestNewTransportFieldErrors(t *testing.T) {
	t.Parallel()
	errDial := errors.New("dial refused")
	for _, tc := range []struct {
		name    string
		section map[string]any
		err     func(transports.Settings) error
		keys    []string
		want    []string
		is      error
	}{
		{
			name: "field errors",
			err: func(transports.Settings) error {
				return fmt.Errorf("checked: config: %w", errors.Join(
					transports.FieldErrorf("maxlen", "must not be negative, got %d", -1),
					transports.FieldErrorf("tls.key_file", "required with tls.cert_file")))
			},
			keys: []string{"transports.c.maxlen", "transports.c.tls.key_file"},
			want: []string{
				"bus: config: transports.c.maxlen: must not be negative, got -1",
				"bus: config: transports.c.tls.key_file: required with tls.cert_file",
			},
		},
		{
			name: "the section itself",
			err:  func(transports.Settings) error { return &transports.FieldError{Reason: "set url or addrs"} },
			keys: []string{"transports.c"},
			want: []string{"bus: config: transports.c: set url or addrs"},
		},
		{
			// Each field error is a ConfigError; the rest keeps its text
			// after the transport's name, and errors.Is sees all of it.
			name: "field errors and others",
			err: func(transports.Settings) error {
				return errors.Join(transports.FieldErrorf("maxlen", "must not be negative"), fmt.Errorf("checked: %w", errDial))
			},
			keys: []string{"transports.c.maxlen"},
			want: []string{"bus: config: transports.c.maxlen: must not be negative", `bus: transport "c": checked: dial refused`},
			is:   errDial,
		},
		{
			name:    "the bus's decoding errors",
			section: map[string]any{"urll": "x", "maxlen": "many"},
			err: func(s transports.Settings) error {
				var cfg struct {
					MaxLen int `koanf:"maxlen"`
				}
				return fmt.Errorf("checked: %w", s.Decode(&cfg))
			},
			keys: []string{"transports.c.maxlen", "transports.c.urll"},
			want: []string{"bus: config: transports.c.urll: unknown key"},
		},
		{
			name:    "a reason that quotes a secret",
			section: map[string]any{"url": "redis://:Ab9x/yz@h"},
			err: func(transports.Settings) error {
				return transports.FieldErrorf("url", "bad port in %q", "redis://:Ab9x/yz@h")
			},
			keys: []string{"transports.c.url"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			section := tc.section
			if section == nil {
				section = map[string]any{}
			}
			_, err := New(checkedConfig(section), WithRegistry(fieldErrorRegistry(tc.err)))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Equal(t, tc.keys, errorKeys(err))
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			assert.NotContains(t, err.Error(), "Ab9x")
			assert.NotContains(t, err.Error(), "bus: config: bus: config:")
		})
	}

	t.Run("no field errors", func(t *testing.T) {
		t.Parallel()
		_, err := New(checkedConfig(map[string]any{}), WithRegistry(fieldErrorRegistry(func(transports.Settings) error { return errDial })))
		require.ErrorIs(t, err, errDial)
		assert.NotErrorIs(t, err, ErrInvalidConfig)
		assert.EqualError(t, err, `bus: transport "c": dial refused`)
	})
}

// The built-in transports' checks arrive the same way.
func TestNewBuiltInTransportFieldErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		section map[string]any
		key     string
	}{
		{"redis", map[string]any{"type": "redisstream", "url": "redis://127.0.0.1:1/0", "maxlen": -1}, "transports.redis.maxlen"},
		{"http", map[string]any{"type": "http", "url": "http://127.0.0.1:1/e/{topic}", "format": "yaml"}, "transports.http.format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultConfig()
			c.Transports[tc.name] = tc.section
			_, err := New(c)
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Equal(t, []string{tc.key}, errorKeys(err))
			assert.Contains(t, err.Error(), "bus: config: "+tc.key+": ")
		})
	}
}
