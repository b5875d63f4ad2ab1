package bus_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports"
)

// logBuffer is a slog text log that tests read while the bus writes it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the records that contain every one of parts.
func (l *logBuffer) lines(parts ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		ok := line != ""
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// fakeRedisRegistry registers, under the Redis Streams type, a transport
// that publishes nowhere: the warning depends on the configuration alone.
func fakeRedisRegistry(t *testing.T) *transports.Registry {
	reg := transports.NewRegistry()
	memory, err := transports.Default().Lookup("memory")
	require.NoError(t, err)
	reg.Register("memory", memory)
	reg.Register("redisstream", func(transports.Settings) (transports.Transport, error) {
		return transports.Transport{Publisher: publisherFunc(func(string, ...*message.Message) error { return nil })}, nil
	})
	return reg
}

func TestStartLogNamesRoutesAndWarnsAboutUnreadStream(t *testing.T) {
	for _, group := range []string{"", "hub"} {
		t.Run("consumer_group="+group, func(t *testing.T) {
			var logs logBuffer
			b := newBus(t, func(c *bus.Config) {
				c.Transports = map[string]map[string]any{
					"memory": {"type": "memory"},
					"redis":  {"type": "redisstream", "consumer_group": group},
				}
				// Redis is the baseline and, by default, the fallback
				// target too: one warning for it, not one per role.
				c.Routing.Baseline = "redis"
				c.Routing.Candidate = "memory"
				c.Routing.Fallback.Enabled = true
				c.Routing.Enabled = true
				c.Routing.Percentage = 10
				c.Consume.From = []string{"memory"}
			}, bus.WithLogger(logs.logger()), bus.WithRegistry(fakeRedisRegistry(t)))
			closeBus := runBus(t, b)
			require.NoError(t, closeBus())

			routes := logs.lines(`msg="Bus routes"`)
			require.Len(t, routes, 1)
			for _, want := range []string{"baseline=redis", "candidate=memory", "fallback_to=redis", "routing_enabled=true", "percentage=10"} {
				assert.Contains(t, routes[0], want)
			}
			warned := logs.lines("level=WARN", "no consumer group", "transport=redis")
			if group == "" {
				assert.Len(t, warned, 1)
			} else {
				assert.Empty(t, warned)
			}
		})
	}
}

// WatchConfig warns, at its first read and at each reload, about a key of
// the file that an environment variable overrides.
func TestWatchConfigWarnsAboutOverriddenKeys(t *testing.T) {
	t.Setenv("EVENT_TRANSPORT_REDIS_PERCENTAGE", "50")
	dir := t.TempDir()
	path := filepath.Join(dir, "switchyard.yaml")
	write := func(pct string) {
		tmp := filepath.Join(dir, "next.yaml")
		require.NoError(t, os.WriteFile(tmp, []byte("routing:\n  percentage: "+pct+"\n  salt: s"+pct+"\n"), 0o600))
		require.NoError(t, os.Rename(tmp, path))
	}
	write("10")
	var logs logBuffer
	b := newBus(t, nil, bus.WithLogger(logs.logger()))
	closeBus := runBus(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() { watched <- b.WatchConfig(ctx, path) }()

	overridden := func() int {
		return len(logs.lines("level=WARN", "overridden", "key=routing.percentage", "overridden_by=EVENT_TRANSPORT_REDIS_PERCENTAGE"))
	}
	require.Eventually(t, func() bool { return overridden() == 1 }, 10*time.Second, 5*time.Millisecond, "at the first read")
	write("20")
	require.Eventually(t, func() bool { return overridden() == 2 }, 10*time.Second, 5*time.Millisecond, "at the reload")
	assert.Equal(t, 50.0, b.Config().Routing.Percentage, "the environment wins")
	assert.Empty(t, logs.lines("level=WARN", "key=routing.salt"), "a key only the file sets")

	cancel()
	require.NoError(t, <-watched)
	require.NoError(t, closeBus())
}
