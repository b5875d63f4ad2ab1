package memory_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
	"github.com/switchyard-go/switchyard/transports/memory"
)

// The config check reports every bad key as a *transports.FieldError keyed
// within the section, which the bus names by its full key
// (transports.<name>.lanes, or bus.lanes for the bus's own ingress).
func TestValidateFieldErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  memory.Config
		keys []string
	}{
		{"valid zero value", memory.Config{}, nil},
		{"lanes", memory.Config{Lanes: 1<<16 + 1}, []string{"lanes"}},
		{"negative", memory.Config{Lanes: -1, QueueSize: -1, RetryBackoff: -1, MaxRetryBackoff: -1},
			[]string{"lanes", "queue_size", "retry_backoff", "max_retry_backoff"}},
		{"on_full", memory.Config{OnFull: "drop"}, []string{"on_full"}},
		{"backoffs out of order", memory.Config{RetryBackoff: 2 * time.Second, MaxRetryBackoff: time.Second}, []string{"retry_backoff"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.keys == nil {
				require.NoError(t, err)
				return
			}
			fields, only := transports.FieldErrors(err)
			require.True(t, only, "nothing but field errors: %v", err)
			var keys []string
			for _, f := range fields {
				keys = append(keys, f.Key)
				assert.NotEmpty(t, f.Reason)
			}
			assert.Equal(t, tc.keys, keys)
		})
	}
}

// NewBroker keeps the field errors, under its own prefix.
func TestNewBrokerFieldErrors(t *testing.T) {
	_, err := memory.NewBroker(memory.Config{OnFull: "drop"}, nil)
	require.ErrorContains(t, err, `memory: config: on_full: must be "block" or "reject", got "drop"`)
	fields, only := transports.FieldErrors(err)
	require.True(t, only)
	require.Len(t, fields, 1)
	assert.Equal(t, "on_full", fields[0].Key)
}
