package bus_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports/memory"
)

// Close right after Run (here: Run given a context that already ended, which
// closes the bus at once) drains what was accepted before, as any Close.
// Close used to find the router not yet subscribed to the ingress, took the
// ingress for settled (Settle waits only for queues with a subscriber) and
// stopped the handlers; the router then published the event to the memory
// transport, which discarded it at its Close, and Run and Close both
// returned nil.
//
// Whether Close comes before the router subscribes is up to the scheduler,
// so the case is tried many times.
func TestCloseRightAfterRunDrains(t *testing.T) {
	const tries = 1000
	for try := range tries {
		b := newBus(t, nil)
		var got atomic.Int64
		require.NoError(t, b.Handle("count", "events", func(*message.Message) error { got.Add(1); return nil }))
		require.NoError(t, b.Publish("events", bus.NewMessage("chat_message", "k", nil)))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		runErr := b.Run(ctx)
		closeErr := b.Close()
		mem, _ := b.Transport("memory")
		stats := mem.Publisher.(*memory.Broker).Stats()
		if got.Load() != 1 || runErr != nil || closeErr != nil {
			t.Fatalf("try %d: handled %d; Run: %v; Close: %v; memory transport: %+v", try, got.Load(), runErr, closeErr, stats)
		}
	}
}
