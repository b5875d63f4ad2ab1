package queue_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/queue"
)

// The retry tests run in a bubble: its fake clock makes the backoff timers
// fire at once and lets the tests check the backoff itself.

// A nacked message comes back, the same one, after a backoff that doubles;
// after MaxRetries redeliveries it goes to the dead-letter topic with why.
func TestNackRedeliveredThenDeadLettered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{
			MaxRetries:      3,
			RetryBackoff:    10 * time.Millisecond,
			MaxRetryBackoff: 30 * time.Millisecond,
			DeadLetterTopic: "dlq",
		})
		msgs, err := b.Subscribe(t.Context(), "orders")
		require.NoError(t, err)
		dead, err := b.Subscribe(t.Context(), "dlq")
		require.NoError(t, err)

		sent := keyed("m1", "k", "payload")
		sent.Metadata.Set("event_type", "order_placed")
		require.NoError(t, b.Publish("orders", sent))

		// 1 delivery + 3 redeliveries, each nacked; backoff 10, 20, 30 (capped).
		wantGaps := []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}
		last := time.Now()
		for i, wantGap := range wantGaps {
			m := receive(t, msgs)
			require.Equal(t, "m1", m.UUID, "delivery %d", i+1)
			require.Equal(t, "payload", string(m.Payload))
			require.Equal(t, wantGap, time.Since(last), "wait before delivery %d", i+1)
			last = time.Now()
			m.Nack()
		}

		dl := receive(t, dead)
		require.Equal(t, "m1", dl.UUID)
		require.Equal(t, "payload", string(dl.Payload))
		require.Equal(t, "order_placed", dl.Metadata.Get("event_type"), "the original metadata is kept")
		require.Equal(t, "nacked 4 times", dl.Metadata.Get(queue.DeadLetterReasonKey))
		require.Equal(t, "orders", dl.Metadata.Get(queue.DeadLetterTopicKey))
		require.Equal(t, "4", dl.Metadata.Get(queue.DeadLetterAttemptsKey))
		dl.Ack()

		// Never redelivered on its topic again, however long one waits.
		time.Sleep(time.Minute) // advances the fake clock
		synctest.Wait()
		requireNothing(t, msgs)

		st := b.Stats()
		require.EqualValues(t, 1, st.DeadLettered)
		require.EqualValues(t, 4, st.Nacked)
		require.EqualValues(t, 2, st.Published, "the message and its dead letter")
		require.EqualValues(t, 5, st.Delivered)
		require.EqualValues(t, 1, st.Acked)
		require.Zero(t, st.Queued)
	})
}

// A failing DeadLetter func keeps the message: it is redelivered, and handed
// to the func again after each further nack, until the func takes it.
func TestDeadLetterFuncFailureKeepsMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type call struct {
			topic    string
			uuid     string
			attempts int
		}
		var calls []call // only the worker of the one lane calls the func
		fail := 2
		b := newBroker(t, queue.Config{
			MaxRetries: 1,
			DeadLetter: func(ctx context.Context, topic string, msg *message.Message, attempts int) error {
				calls = append(calls, call{topic, msg.UUID, attempts})
				if len(calls) <= fail {
					return errors.New("dead-letter store down")
				}
				return nil
			},
		})
		msgs, err := b.Subscribe(t.Context(), "orders")
		require.NoError(t, err)
		require.NoError(t, b.Publish("orders", keyed("m1", "k", "p")))

		// Delivery 2 uses up the one retry, but the dead letter fails; so do
		// 3's; after 4 it succeeds.
		var delivered []time.Time
		for i := range 4 {
			m := receive(t, msgs)
			require.Equal(t, "m1", m.UUID, "delivery %d", i+1)
			delivered = append(delivered, time.Now())
			m.Nack()
		}
		// After a failed dead letter the message waits the longest backoff.
		require.Equal(t, queue.DefaultMaxRetryBackoff, delivered[2].Sub(delivered[1]))
		require.Equal(t, queue.DefaultMaxRetryBackoff, delivered[3].Sub(delivered[2]))
		synctest.Wait()
		require.Equal(t, []call{{"orders", "m1", 2}, {"orders", "m1", 3}, {"orders", "m1", 4}}, calls)

		time.Sleep(time.Minute) // advances the fake clock
		synctest.Wait()
		requireNothing(t, msgs)
		st := b.Stats()
		require.EqualValues(t, 1, st.DeadLettered)
		require.EqualValues(t, 4, st.Nacked)
		require.Zero(t, st.Queued)
	})
}

// With the default dead-letter topic, messages that keep failing there are
// kept, not lost: a dead-lettered message that is nacked on the dead-letter
// topic cannot be dead-lettered again.
func TestDeadLetterTopicMessagesAreKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{MaxRetries: 1})
		dead, err := b.Subscribe(t.Context(), queue.DefaultDeadLetterTopic)
		require.NoError(t, err)
		require.NoError(t, b.Publish(queue.DefaultDeadLetterTopic, keyed("m1", "", "p")))
		for range 5 {
			m := receive(t, dead)
			require.Equal(t, "m1", m.UUID)
			m.Nack()
		}
		m := receive(t, dead)
		m.Ack()
		synctest.Wait()
		st := b.Stats()
		require.Zero(t, st.DeadLettered)
		require.Zero(t, st.Queued)
	})
}

// A negative MaxRetries redelivers without limit and never dead-letters.
func TestNegativeMaxRetriesNeverDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{MaxRetries: -1})
		msgs, err := b.Subscribe(t.Context(), "orders")
		require.NoError(t, err)
		require.NoError(t, b.Publish("orders", keyed("m1", "k", "p")))

		const nacks = 20
		start := time.Now()
		for i := range nacks {
			m := receive(t, msgs)
			require.Equal(t, "m1", m.UUID, "delivery %d", i+1)
			m.Nack()
		}
		m := receive(t, msgs)
		require.Equal(t, "m1", m.UUID)
		m.Ack()
		synctest.Wait()
		// The backoff doubles from 10ms and stays at the 1s cap:
		// 10+20+…+640ms, then 13 × 1s.
		require.Equal(t, 1270*time.Millisecond+13*time.Second, time.Since(start))

		st := b.Stats()
		require.Zero(t, st.DeadLettered)
		require.EqualValues(t, nacks, st.Nacked)
		require.EqualValues(t, 1, st.Published, "nothing was published to the dead-letter topic")
		require.Zero(t, st.Queued)
	})
}
