package bus_test

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
)

// countingHandler counts the records slog hands it at or above Info.
type countingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Level.String()+" "+r.Message)
	h.mu.Unlock()
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) count() int { return len(h.snapshot()) }

func (h *countingHandler) snapshot() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.msgs...)
}

// In steady state the bus logs nothing at Info: what it logs at start and
// stop does not grow with the events it carries.
func TestBusIsQuietAtInfo(t *testing.T) {
	logs := &countingHandler{}
	b, err := bus.New(bus.DefaultConfig(), bus.WithLogger(slog.New(logs)))
	require.NoError(t, err)
	var handled sync.WaitGroup
	require.NoError(t, b.Handle("hub", "events:chat", func(*message.Message) error { handled.Done(); return nil }))
	start(t, b)

	// The Router logs each handler's start from the handler's goroutine,
	// which may come after Running: the pipeline's and the hub's.
	require.Eventually(t, func() bool {
		n := 0
		for _, m := range logs.snapshot() {
			if m == "INFO Starting handler" {
				n++
			}
		}
		return n == 2
	}, 5*time.Second, time.Millisecond)
	atStart := logs.count()
	const events = 2000
	handled.Add(events)
	for i := range events {
		m := bus.NewMessage("chat_message", "conv-"+strconv.Itoa(i%50), []byte("{}"))
		require.NoError(t, b.Publish("events:chat", m))
	}
	handled.Wait()
	assert.Equal(t, atStart, logs.count(), "records at Info or above while carrying %d events: %v", events, logs.snapshot()[atStart:])
}
