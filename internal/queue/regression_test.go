package queue_test

import (
	"context"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/queue"
)

// Regression tests: each failed on an earlier broker.go. The comment above
// each says what went wrong.

// The group a topic starts with used to get every message even when every
// subscriber used a named group; no one consumed it, so after QueueSize
// messages Publish rejected (or blocked forever) although the real group had
// acked everything.
func TestUnusedDefaultGroupDoesNotFillUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{QueueSize: 10, OnFull: queue.Reject})
		msgs, err := b.Subscriber("workers").Subscribe(t.Context(), "t")
		require.NoError(t, err)
		for i := range 30 {
			require.NoError(t, b.Publish("t", keyed("m"+strconv.Itoa(i), "", "")), "publish %d", i+1)
			receive(t, msgs).Ack()
			synctest.Wait()
		}
		require.Zero(t, b.Stats().Queued, "the only consumer acked everything")
	})
}

// Drain used to count a message as handed over as soon as a lane's goroutine
// took it, before the subscriber received it: with a consumer that read
// nothing, Drain returned nil and Close then discarded what Drain had called
// delivered.
func TestDrainDoesNotCountUnsentMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{})
		_, err := b.Subscribe(t.Context(), "t") // never read
		require.NoError(t, err)
		require.NoError(t, b.Publish("t", keyed("m1", "", "")))
		synctest.Wait()

		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		require.Zero(t, b.Stats().Delivered)
		require.ErrorContains(t, b.Drain(ctx), "1 messages not delivered")
	})
}

// The same early count inflated a message's attempts: a message that a
// closing subscription took but never handed out counted as a delivery, so
// it was dead-lettered after fewer deliveries than MaxRetries promises.
func TestUnsentMessageIsNotAnAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{MaxRetries: 1})
		ctx, cancel := context.WithCancel(t.Context())
		_, err := b.Subscribe(ctx, "t") // takes the message, never hands it out
		require.NoError(t, err)
		require.NoError(t, b.Publish("t", keyed("m1", "", "")))
		synctest.Wait()
		cancel()
		synctest.Wait()

		msgs, err := b.Subscribe(t.Context(), "t")
		require.NoError(t, err)
		receive(t, msgs).Nack() // delivery 1
		m := receive(t, msgs)   // MaxRetries 1: one redelivery is due
		require.Equal(t, "m1", m.UUID)
		m.Ack()
		synctest.Wait()
		require.Zero(t, b.Stats().DeadLettered)
	})
}

// Drain does not wait for queues without subscribers, but a queue that lost
// its subscriber while Drain waited on it used to be waited for until ctx
// ended: the waiters were woken only when a message was taken or settled.
func TestDrainStopsWaitingForQueueWithoutSubscribers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{})
		ctx, cancel := context.WithCancel(t.Context())
		msgs, err := b.Subscribe(ctx, "t")
		require.NoError(t, err)
		require.NoError(t, b.Publish("t", keyed("m1", "k", ""), keyed("m2", "k", "")))
		receive(t, msgs) // held: m2 waits behind it

		drained := make(chan error, 1)
		go func() {
			dctx, dcancel := context.WithTimeout(t.Context(), time.Minute)
			defer dcancel()
			drained <- b.Drain(dctx)
		}()
		synctest.Wait()
		cancel() // the queue has no subscriber now
		synctest.Wait()
		select {
		case err := <-drained:
			require.NoError(t, err)
		default:
			t.Fatal("Drain still waits on a queue without subscribers")
		}
	})
}

// A Publish that had passed the closed check when Close ran used to put its
// message in a queue that Close had already discarded: Publish returned nil,
// the message was neither delivered nor counted as discarded, and
// Stats.Queued stayed 1.
func TestPublishRacingCloseLosesNothing(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	b, err := queue.NewBroker(queue.Config{
		// KeyFunc runs inside Publish, after the closed check: it holds the
		// Publish there while Close runs.
		KeyFunc: func(m *message.Message) string {
			if m.UUID == "racer" {
				close(entered)
				<-release
			}
			return ""
		},
	}, nil)
	require.NoError(t, err)
	published := make(chan error, 1)
	go func() { published <- b.Publish("t", keyed("racer", "", "")) }()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	// Close may return at once, or wait for the Publish in progress: let the
	// Publish go on after a while either way.
	select {
	case err := <-closed:
		closed <- err
	case <-time.After(time.Second):
	}
	close(release)
	err = <-published
	require.NoError(t, <-closed)

	st := b.Stats()
	if err == nil {
		require.EqualValues(t, 1, st.Discarded, "accepted, so Close must count it")
	} else {
		require.ErrorIs(t, err, queue.ErrClosed)
	}
	require.Zero(t, st.Queued)
}

// A redelivery used to be a copy of the message the handler got, with
// whatever the handler changed, not of the message as published: the stored
// message was the one handed out first.
func TestRedeliveryIsTheMessageAsPublished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{})
		msgs, err := b.Subscribe(t.Context(), "t")
		require.NoError(t, err)
		require.NoError(t, b.Publish("t", keyed("m1", "", "original")))

		m := receive(t, msgs)
		m.Metadata.Set("handled_by", "first attempt")
		m.Payload = []byte("changed by the handler")
		m.Nack()

		m = receive(t, msgs)
		m.Ack()
		require.Empty(t, m.Metadata.Get("handled_by"))
		require.Equal(t, "original", string(m.Payload))
	})
}
