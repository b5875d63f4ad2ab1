package queue_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/queue"
)

// Close discards and counts what is still held, queued or in a subscriber's
// hands, ends the subscriptions and fails later calls with ErrClosed.
func TestBrokerClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := queue.NewBroker(queue.Config{}, nil)
		require.NoError(t, err)
		pub := b.Publisher()

		msgs, err := b.Subscribe(context.Background(), "busy")
		require.NoError(t, err)
		require.NoError(t, b.Publish("busy", keyed("held", "k", ""), keyed("behind", "k", "")))
		receive(t, msgs) // never acked
		require.NoError(t, b.Publish("idle", keyed("a", "", ""), keyed("b", "", ""), keyed("c", "", "")))

		require.NoError(t, b.Close())
		requireClosed(t, msgs)
		st := b.Stats()
		require.EqualValues(t, 5, st.Discarded)
		require.Zero(t, st.Queued)
		require.Zero(t, st.Acked)

		require.ErrorIs(t, b.Publish("idle", keyed("late", "", "")), queue.ErrClosed)
		require.ErrorIs(t, b.PublishContext(t.Context(), "new-topic", keyed("late", "", "")), queue.ErrClosed)
		require.ErrorIs(t, pub.Publish("idle", keyed("late", "", "")), queue.ErrClosed)
		_, err = b.Subscribe(t.Context(), "idle")
		require.ErrorIs(t, err, queue.ErrClosed)
		_, err = b.Subscriber("g").Subscribe(t.Context(), "idle")
		require.ErrorIs(t, err, queue.ErrClosed)
		require.ErrorIs(t, b.SubscribeInitialize("other"), queue.ErrClosed)

		require.NoError(t, b.Close(), "Close is idempotent")
		require.EqualValues(t, 5, b.Stats().Discarded, "and counts once")
	})
}

// A Publish waiting for room is released by Close with ErrClosed.
func TestBrokerCloseReleasesBlockedPublish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := queue.NewBroker(queue.Config{QueueSize: 1}, nil)
		require.NoError(t, err)
		require.NoError(t, b.Publish("t", keyed("a", "", "")))
		published := make(chan error, 1)
		go func() { published <- b.Publish("t", keyed("b", "", "")) }()
		synctest.Wait()

		require.NoError(t, b.Close())
		err = <-published
		require.ErrorIs(t, err, queue.ErrClosed)
		require.NotErrorIs(t, err, queue.ErrQueueFull)
		require.EqualValues(t, 1, b.Stats().Discarded)
	})
}

// Subscriber.Close closes its channels before it returns, whatever state
// they are in; the messages its subscriptions held go to the next
// subscriber of the group, and the broker stays open.
func TestSubscriberClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{})
		sub := b.Subscriber("g")

		inHand, err := sub.Subscribe(context.Background(), "a")
		require.NoError(t, err)
		waiting, err := sub.Subscribe(context.Background(), "b")
		require.NoError(t, err)
		idle, err := sub.Subscribe(context.Background(), "c")
		require.NoError(t, err)
		require.NoError(t, b.Publish("a", keyed("held", "", "")))
		require.NoError(t, b.Publish("b", keyed("unread", "", "")))
		receive(t, inHand) // delivered, never acked
		synctest.Wait()    // "unread" is waiting to be received

		require.NoError(t, sub.Close())
		requireClosed(t, inHand)
		requireClosed(t, waiting)
		requireClosed(t, idle)
		require.NoError(t, sub.Close(), "Close is idempotent")
		_, err = sub.Subscribe(t.Context(), "a")
		require.ErrorIs(t, err, queue.ErrClosed)

		// At least once: the next subscriber of the group gets both.
		next := b.Subscriber("g")
		defer next.Close()
		for topic, uuid := range map[string]string{"a": "held", "b": "unread"} {
			ch, err := next.Subscribe(t.Context(), topic)
			require.NoError(t, err)
			m := receive(t, ch)
			require.Equal(t, uuid, m.UUID)
			m.Ack()
		}
	})
}

// Ending a subscription's context closes its channel too.
func TestSubscriptionContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{})
		ctx, cancel := context.WithCancel(t.Context())
		msgs, err := b.Subscribe(ctx, "t")
		require.NoError(t, err)
		cancel()
		synctest.Wait()
		requireClosed(t, msgs)
	})
}

// Closing a Publisher handle fails only its own Publish.
func TestPublisherClose(t *testing.T) {
	b := newBroker(t, queue.Config{})
	p1, p2 := b.Publisher(), b.Publisher()
	require.NoError(t, p1.Close())
	require.NoError(t, p1.Close(), "Close is idempotent")
	require.ErrorIs(t, p1.Publish("t", message.NewMessage("1", nil)), queue.ErrClosed)
	require.NoError(t, p2.Publish("t", message.NewMessage("2", nil)))
	require.NoError(t, b.Publish("t", message.NewMessage("3", nil)))
}
