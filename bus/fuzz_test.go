package bus_test

import (
	"testing"

	"github.com/switchyard-go/switchyard/bus"
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
