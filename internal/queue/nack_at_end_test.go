package queue_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/queue"
)

// A nack that races the subscription's end is a nack all the same, as an
// ack that races it is an ack: counted in Stats.Nacked, and the message
// waits its backoff before the next subscriber of the group gets it.
//
// Whether the worker sees the nack or the end first is up to the
// scheduler (Go's select picks at random among the cases that are ready),
// so the case is tried many times.
func TestNackRacingSubscriptionEnd(t *testing.T) {
	const tries, backoff = 100, time.Second
	for try := range tries {
		synctest.Test(t, func(t *testing.T) {
			b := newBroker(t, queue.Config{Lanes: 1, RetryBackoff: backoff, MaxRetryBackoff: backoff})
			ctx, cancel := context.WithCancel(t.Context())
			msgs, err := b.Subscribe(ctx, "t")
			require.NoError(t, err)
			require.NoError(t, b.Publish("t", keyed("m", "k", "")))
			m := receive(t, msgs)

			m.Nack()
			cancel()
			for range msgs { // closed once its workers are done
			}
			require.EqualValues(t, 1, b.Stats().Nacked, "try %d: the nack is counted", try)

			next, err := b.Subscribe(t.Context(), "t")
			require.NoError(t, err)
			start := time.Now()
			require.Equal(t, "m", receive(t, next).UUID)
			require.Equal(t, backoff, time.Since(start), "try %d: redelivered after the backoff", try)
		})
	}
}
