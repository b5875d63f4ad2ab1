package bus_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
)

// dropSpam is a stage that drops events of type spam.
func dropSpam(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) ([]*message.Message, error) {
		if m.Metadata.Get(bus.MetaEventType) == "spam" {
			return nil, nil
		}
		return h(m)
	}
}

// A PublishSync of an event a stage drops returns ErrDropped at once, with
// no deadline needed; the events around it are published as usual, and a
// trailing event the coalesce stage keeps is not taken for a dropped one.
func TestPublishSyncOfDroppedEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, nil)
		d := &delivered{at: time.Now()}
		require.NoError(t, b.Handle("chat", "events:chat", d.handler("events:chat")))
		require.NoError(t, b.Use(dropSpam))
		closeBus := runBus(t, b)
		ctx := context.Background()

		require.ErrorIs(t, b.PublishSync(ctx, "events:chat", bus.NewMessage("spam", "r1", []byte("s0"))), bus.ErrDropped)
		assert.Zero(t, time.Since(d.at), "at once")
		require.NoError(t, b.PublishSync(ctx, "events:chat", bus.NewMessage("chat_message", "r1", []byte("m0"))))

		// typing is coalesced: t0 leads, t1 trails and settles at the
		// window's end with nil, not ErrDropped.
		require.NoError(t, b.PublishSync(ctx, "events:chat", bus.NewMessage("typing", "r1", []byte("t0"))))
		require.NoError(t, b.PublishSync(ctx, "events:chat", bus.NewMessage("typing", "r1", []byte("t1"))))
		assert.Equal(t, 100*time.Millisecond, time.Since(d.at), "t1 published at the window's end")
		// Handlers run concurrently: t1 is handled before m1 is published,
		// so that the list below has one order.
		synctest.Wait()

		// Several at once: the dropped one's error alone.
		err := b.PublishSync(ctx, "events:chat",
			bus.NewMessage("chat_message", "r2", []byte("m1")),
			bus.NewMessage("spam", "r2", []byte("s1")))
		require.ErrorIs(t, err, bus.ErrDropped)
		synctest.Wait()
		assert.Equal(t, []string{
			"events:chat chat_message r1 m0@0",
			"events:chat typing r1 t0@0",
			"events:chat typing r1 t1@100",
			"events:chat chat_message r2 m1@100",
		}, d.list())
		require.NoError(t, closeBus())
	})
}
