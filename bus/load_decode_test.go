package bus

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every problem of a decode names its key and the source that set it, in a
// fixed order: values that do not decode, transport sections that are no
// map, unknown keys (sorted), then what Validate finds.
func TestLoadConfigDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		sources func(t *testing.T) []Source
		keys    []string
		want    []string
	}{
		{
			name: "unknown key in a file names the file",
			sources: func(t *testing.T) []Source {
				return []Source{FromFile(writeFile(t, "c.yaml", "routing: {percentge: 5}\n"))}
			},
			keys: []string{"routing.percentge"},
			want: []string{"routing.percentge: unknown key (did you mean routing.percentage?) (from file "},
		},
		{
			name:    "nested unknown key",
			sources: fromMap(map[string]any{"routing": map[string]any{"fallback": map[string]any{"cooldwn": "1s"}}}),
			keys:    []string{"routing.fallback.cooldwn"},
			want:    []string{"routing.fallback.cooldwn: unknown key (did you mean routing.fallback.cooldown?) (from FromMap)"},
		},
		{
			name:    "unknown key beside a value that does not decode",
			sources: fromMap(map[string]any{"bus": map[string]any{"lanes": "many", "lanez": 3}}),
			keys:    []string{"bus.lanes", "bus.lanez"},
			want:    []string{`bus.lanes: must be an integer, got "many"`, "bus.lanez: unknown key (did you mean bus.lanes?)"},
		},
		{
			name:    "misspelt section: every key under it, each with a suggestion",
			sources: fromMap(map[string]any{"routng": map[string]any{"percentage": 5, "salt": "x"}}),
			keys:    []string{"routng.percentage", "routng.salt"},
			want:    []string{"(did you mean routing.percentage?)", "(did you mean routing.salt?)"},
		},
		{
			name:    "unknown empty section",
			sources: fromMap(map[string]any{"bogus": map[string]any{}}),
			keys:    []string{"bogus"},
			want:    []string{"bus: config: bogus: unknown key (from FromMap)"},
		},
		{
			name:    "nested section given a value",
			sources: fromMap(map[string]any{"bus.dead_letter": "hunter2"}),
			keys:    []string{"bus.dead_letter"},
			want:    []string{"bus.dead_letter: must be a map of keys, got a string"},
		},
		{
			name:    "transports given a value",
			sources: fromMap(map[string]any{"transports": 5}),
			keys:    []string{"transports"},
			want:    []string{"transports: must be a map of transport names to settings, got a number"},
		},
		{
			name:    "wrong type from the environment names the variable",
			env:     map[string]string{"SWITCHYARD_ROUTING__FALLBACK__COOLDOWN": "soon"},
			sources: func(*testing.T) []Source { return []Source{FromEnv()} },
			keys:    []string{"routing.fallback.cooldown"},
			want:    []string{`routing.fallback.cooldown: must be a duration such as "100ms" or "2s", got "soon" (from SWITCHYARD_ROUTING__FALLBACK__COOLDOWN)`},
		},
		{
			name:    "unknown nested key from the environment names the variable",
			env:     map[string]string{"SWITCHYARD_BUS__DEAD_LETTER__TOPIK": "dlq"},
			sources: func(*testing.T) []Source { return []Source{FromEnv()} },
			keys:    []string{"bus.dead_letter.topik"},
			want:    []string{"bus.dead_letter.topik: unknown key (did you mean bus.dead_letter.topic?) (from SWITCHYARD_BUS__DEAD_LETTER__TOPIK)"},
		},
		{
			name: "the order of the problems",
			sources: fromMap(map[string]any{
				"zz": 1, "transports.a": 1, "routing.percentage": "x", "bus.queue_size": 1.5, "bus.on_full": "drop",
			}),
			keys: []string{"bus.queue_size", "routing.percentage", "transports.a", "zz", "bus.on_full"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := LoadConfig(tc.sources(t)...)
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Equal(t, tc.keys, errorKeys(err))
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "hunter2")
		})
	}
}

// A transport's section follows the rules of the rest of the
// configuration: weakly typed, never lossy, and an integer that does not
// fit its field is an error, not a value wrapped around.
func TestTransportDecoderRanges(t *testing.T) {
	t.Parallel()
	type small struct {
		Count  uint8         `koanf:"count"`
		Delta  int8          `koanf:"delta"`
		Ports  []int         `koanf:"ports"`
		Window time.Duration `koanf:"window"`
	}
	for _, tc := range []struct {
		name    string
		section map[string]any
		want    small
		keys    []string
	}{
		{"fits", map[string]any{"count": "255", "delta": -128, "ports": "1, 2", "window": "0"}, small{255, -128, []int{1, 2}, 0}, nil},
		{"too large", map[string]any{"count": 256, "delta": 128}, small{}, []string{"transports.t.count", "transports.t.delta"}},
		{"negative for unsigned", map[string]any{"count": -1}, small{}, []string{"transports.t.count"}},
		{"list element", map[string]any{"ports": "1, x"}, small{}, []string{"transports.t.ports[1]"}},
		{"bare number for a duration", map[string]any{"window": 5}, small{}, []string{"transports.t.window"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.section["type"] = "fake"
			cfg := Config{Transports: map[string]map[string]any{"t": tc.section}}
			var got small
			err := cfg.transportDecoder("t")(&got)
			if tc.keys == nil {
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Equal(t, tc.keys, errorKeys(err))
		})
	}
}
