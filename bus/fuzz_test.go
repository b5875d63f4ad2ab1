package bus_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchyard-go/switchyard/bus"
	_ "github.com/switchyard-go/switchyard/transports/all"
)

// FuzzLoadConfig: whatever a file holds, LoadConfig returns a valid Config
// or an error; it never panics, and a Config it returns validates.
func FuzzLoadConfig(f *testing.F) {
	seeds := []string{
		"bus: {lanes: 8, queue_size: 10, on_full: reject}",
		"routing: {percentage: 150}",
		"coalescing: {window: abc}",
		"transports: {redis: {type: redisstream, url: 'redis://:secret@127.0.0.1:6380/0'}}\nrouting: {candidate: redis, enabled: true, percentage: 10}",
		"consume: {from: [memory, memory]}",
		"bus:\n  close_timeout: -1s\n",
		"[1, 2",
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s), "yaml")
	}
	f.Add([]byte(`{"bus":{"lanes":"x"}}`), "json")
	f.Add([]byte("[bus]\nlanes = 4\n"), "toml")
	f.Fuzz(func(t *testing.T, data []byte, format string) {
		cfg, err := bus.LoadConfig(bus.FromBytes(data, format))
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("LoadConfig returned a config that does not validate: %v", err)
		}
		_ = cfg.String()
	})
}

// FuzzSecretsNeverLeak: whatever characters a password holds, unescaped in
// a URL, under a secret key, a misspelt one or a header, no piece of it
// 4 bytes or longer appears in what LoadConfig, Validate and New (with the
// real transports) return, nor in a Config's String, %v, %+v, %#v or slog
// output.
func FuzzSecretsNeverLeak(f *testing.F) {
	for _, password := range []string{
		"Ab9x/yz#q?r%s t", "pa/ss", "p@ss:w/rd@", "%zz%41 pct", "a://b@c d", `q"uo\te'`,
		"ünï/cödé", "    ", "hunter22", "redis://", "bus: config", "6380/0",
	} {
		f.Add(password)
	}
	f.Fuzz(func(t *testing.T, password string) {
		// The redaction mark is "xxxxx": a password made of x's would be
		// found in it.
		password = strings.ReplaceAll(password, "x", "X")
		if len(password) < 4 || len(password) > 256 || !utf8.ValidString(password) {
			t.Skip()
		}
		check := func(what, out string) {
			t.Helper()
			for i := 0; i+4 <= len(password); i++ {
				if piece := password[i : i+4]; strings.Contains(out, piece) {
					t.Fatalf("%s holds %q of the password %q:\n%s", what, piece, password, out)
				}
			}
		}

		for _, values := range []map[string]any{
			{"transports": map[string]any{
				"redis":  map[string]any{"type": "redisstream", "url": "redis://:" + password + "@127.0.0.1:1/0"},
				"redis2": map[string]any{"type": "redisstream", "url": "redis://127.0.0.1:1/0", "password": password},
				"http": map[string]any{
					"type": "http", "url": "http://user:" + password + "@127.0.0.1:1/e/{topic}",
					"headers": map[string]any{"Authorization": "Bearer " + password}, "hmac_secret": password,
				},
			}},
			{"transports": map[string]any{
				"redis": map[string]any{
					"type": "redisstream", "url": "redis://user:" + password + "@127.0.0.1:1/0", "pasword": password,
				},
				"http": map[string]any{"type": "http", "url": "http://127.0.0.1:1/e/{topic}?a=1&token=" + password},
			}},
			{
				"transports": map[string]any{"redis": map[string]any{"type": "redisstream", "url": "redis://:" + password + "@h/0"}},
				"routing":    map[string]any{"baseline": "redis://:" + password + "@h/0"},
			},
		} {
			data, err := json.Marshal(values)
			if err != nil {
				t.Fatal(err)
			}
			for _, src := range []bus.Source{bus.FromMap(values), bus.FromBytes(data, "json")} {
				cfg, err := bus.LoadConfig(src)
				if err != nil {
					check("LoadConfig's error", err.Error())
					continue
				}
				checkConfig(t, cfg, check)
			}

			// The same, built in Go: Validate and New see it unchecked.
			cfg := bus.DefaultConfig()
			for name, section := range values["transports"].(map[string]any) {
				cfg.Transports[name] = section.(map[string]any)
			}
			if r, ok := values["routing"].(map[string]any); ok {
				cfg.Routing.Baseline = r["baseline"].(string)
			}
			checkConfig(t, cfg, check)
		}
	})
}

func checkConfig(t *testing.T, cfg bus.Config, check func(what, out string)) {
	t.Helper()
	check("String", cfg.String())
	for _, format := range []string{"%v", "%+v", "%#v"} {
		check(format, fmt.Sprintf(format, cfg))
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", cfg)
	var record map[string]any
	if err := json.Unmarshal(buf.Bytes(), &record); err != nil {
		t.Fatal(err)
	}
	check("slog", fmt.Sprint(record["cfg"]))

	if err := cfg.Validate(); err != nil {
		check("Validate's error", err.Error())
	}
	b, err := bus.New(cfg, quiet)
	if err != nil {
		check("New's error", err.Error())
		return
	}
	if err := b.Close(); err != nil {
		check("Close's error", err.Error())
	}
}
