package bus_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
)

// A PublishSync whose event Close gives up on (still being retried when
// bus.close_timeout ends, so the ingress discards it) returns an error when
// Close ends, instead of waiting on a context that may never end.
func TestPublishSyncReturnsWhenCloseDiscardsItsEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errDown := errors.New("hub is down")
		b := newBus(t, func(c *bus.Config) {
			c.Transports["failing"] = map[string]any{"type": "failing"}
			c.Routing.Baseline = "failing"
			c.Bus.MaxRetries = 1000
			c.Bus.CloseTimeout = time.Second
		}, bus.WithRegistry(failingRegistry(errDown)))
		closeBus := runBus(t, b)

		// The caller's context does not end by itself: only the test's
		// cleanup ends it, so that a PublishSync left waiting does not hang
		// the bubble.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		result := make(chan error, 1)
		go func() { result <- b.PublishSync(ctx, "events:chat", bus.NewMessage("chat_message", "k", []byte("hi"))) }()
		synctest.Wait() // accepted, and failing on the transport

		require.ErrorIs(t, closeBus(), bus.ErrCloseTimeout)
		synctest.Wait()
		select {
		case err := <-result:
			require.ErrorIs(t, err, bus.ErrClosed)
		default:
			t.Fatal("PublishSync still waits after Close discarded its event")
		}
	})
}
