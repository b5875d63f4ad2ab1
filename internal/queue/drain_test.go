package queue_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/queue"
)

// Drain returns nil once a consuming subscriber was handed everything.
func TestDrainWithConsumer(t *testing.T) {
	const n = 2000
	b := newBroker(t, queue.Config{Lanes: 8})
	msgs, err := b.Subscribe(t.Context(), "t")
	require.NoError(t, err)
	var received atomic.Int64
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for m := range msgs {
			m.Ack()
			if received.Add(1) == n {
				return
			}
		}
	}()
	for i := range n {
		require.NoError(t, b.Publish("t", keyed("m"+strconv.Itoa(i), "k"+strconv.Itoa(i%50), "")))
	}

	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	require.NoError(t, b.Drain(ctx))
	select {
	case <-consumed:
	case <-time.After(waitFor):
		t.Fatalf("Drain returned nil, then only %d of %d messages arrived", received.Load(), n)
	}
	require.Eventually(t, func() bool { return b.Stats().Acked == n }, waitFor, time.Millisecond)
}

// With no progress possible Drain gives up when its context ends and says
// how many messages are left.
func TestDrainStalled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{})
		msgs, err := b.Subscribe(t.Context(), "t")
		require.NoError(t, err)
		for i := range 5 {
			require.NoError(t, b.Publish("t", keyed("m"+strconv.Itoa(i), "one-key", "")))
		}
		held := receive(t, msgs) // and never acked: the lane is stuck

		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = b.Drain(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, "4 messages not delivered")
		require.Equal(t, 100*time.Millisecond, time.Since(start))
		held.Ack()
	})
}

// A message waiting for its redelivery is not handed over yet, so Drain
// waits for the backoff.
func TestDrainWaitsForRedelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{RetryBackoff: time.Second})
		msgs, err := b.Subscribe(t.Context(), "t")
		require.NoError(t, err)
		require.NoError(t, b.Publish("t", keyed("m1", "", "")))
		receive(t, msgs).Nack()
		synctest.Wait() // the broker has taken the nack

		drained := make(chan error, 1)
		go func() { drained <- b.Drain(t.Context()) }()
		synctest.Wait()
		select {
		case err := <-drained:
			t.Fatalf("Drain returned %v with a redelivery pending", err)
		default:
		}

		start := time.Now()
		m := receive(t, msgs)
		require.Equal(t, time.Second, time.Since(start))
		require.NoError(t, <-drained)
		m.Ack()
	})
}

// Queues that no one subscribes to are not waited for.
func TestDrainIgnoresQueuesWithoutSubscribers(t *testing.T) {
	b := newBroker(t, queue.Config{})
	require.NoError(t, b.Publish("nobody-listens", keyed("m1", "", "")))
	require.NoError(t, b.Drain(t.Context()))
	require.EqualValues(t, 1, b.Stats().Queued)
}
