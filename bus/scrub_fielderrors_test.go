package bus

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
	_ "github.com/switchyard-go/switchyard/transports/gochannel"
	_ "github.com/switchyard-go/switchyard/transports/memory"
)

// The built-in in-process transports' checks are configuration errors named
// by their full key; the ingress's, which the bus configures, by the bus's.
func TestInProcessTransportFieldErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		keys   []string
	}{
		{"memory", func(c *Config) {
			c.Transports["mem"] = map[string]any{"type": "memory", "lanes": 1 << 20, "retry_backoff": "2s", "max_retry_backoff": "1s"}
		}, []string{"transports.mem.lanes", "transports.mem.retry_backoff"}},
		{"gochannel", func(c *Config) {
			c.Transports["gc"] = map[string]any{"type": "gochannel", "output_channel_buffer": -1}
		}, []string{"transports.gc.output_channel_buffer"}},
		{"ingress", func(c *Config) {
			c.Bus.RetryBackoff = 2 * time.Second
			c.Bus.MaxRetryBackoff = time.Second
		}, []string{"bus.retry_backoff"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultConfig()
			tc.mutate(&c)
			_, err := New(c, WithLogger(slog.New(slog.DiscardHandler)))
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Equal(t, tc.keys, errorKeys(err))
			for _, k := range tc.keys {
				assert.Contains(t, err.Error(), "bus: config: "+k+": ")
			}
			var fe *transports.FieldError
			assert.True(t, errors.As(err, &fe), "the transport's own error is still there")
		})
	}
}
