package queue_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/internal/queue"
)

// A subscription runs one goroutine per lane and one to close it; nothing is
// started per message. Measured while messages are queued and in flight.
func TestGoroutinesBounded(t *testing.T) {
	const (
		lanes    = 16
		messages = 10_000
		// The subscription's closer, the publisher below, and slack for the
		// runtime and an AfterFunc timer (none fire here: nothing is nacked).
		slack = 4
	)
	// Earlier tests' goroutines must be gone, or their ending would blur
	// the measure.
	require.NoError(t, goleak.Find())
	b := newBroker(t, queue.Config{Lanes: lanes, QueueSize: 1000})
	baseline := runtime.NumGoroutine()

	msgs, err := b.Subscribe(t.Context(), "t")
	require.NoError(t, err)
	published := make(chan error, 1)
	go func() {
		for i := range messages {
			if err := b.Publish("t", keyed("m"+strconv.Itoa(i), "k"+strconv.Itoa(i%500), "")); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()

	maxGoroutines, maxQueued := 0, int64(0)
	for i := range messages {
		m := receive(t, msgs)
		m.Ack()
		if i%50 == 0 {
			maxGoroutines = max(maxGoroutines, runtime.NumGoroutine())
			maxQueued = max(maxQueued, b.Stats().Queued)
		}
	}
	require.NoError(t, <-published)

	require.Greater(t, maxQueued, int64(lanes), "the measure was taken with messages queued")
	require.GreaterOrEqual(t, maxGoroutines, baseline+lanes, "the lane goroutines were counted")
	require.LessOrEqual(t, maxGoroutines, baseline+lanes+slack,
		"baseline %d, %d lanes: goroutines must not grow with the messages", baseline, lanes)
	t.Logf("baseline %d, max %d with %d lanes, up to %d messages queued", baseline, maxGoroutines, lanes, maxQueued)
}

// Contexts derived from a delivered message's context (a handler's
// context.WithTimeout, as the HTTP publisher makes per publish) register
// with the delivery instead of each starting a goroutine to watch it, and
// the delivery's end still cancels them.
func TestDerivedContextsStartNoGoroutine(t *testing.T) {
	const derived = 1000
	require.NoError(t, goleak.Find())
	b := newBroker(t, queue.Config{Lanes: 1, QueueSize: 10})
	msgs, err := b.Subscribe(t.Context(), "t")
	require.NoError(t, err)
	require.NoError(t, b.Publish("t", keyed("m", "k", "")))
	m := receive(t, msgs)

	baseline := runtime.NumGoroutine()
	ctxs := make([]context.Context, 0, derived)
	for range derived {
		ctx, cancel := context.WithTimeout(m.Context(), time.Hour)
		t.Cleanup(cancel)
		ctxs = append(ctxs, ctx)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), baseline+2,
		"%d contexts derived from a delivery must not start a goroutine each", derived)

	m.Ack()
	for i, ctx := range ctxs {
		select {
		case <-ctx.Done():
		case <-time.After(waitFor):
			t.Fatalf("derived context %d not canceled when the delivery ended", i)
		}
		require.ErrorIs(t, ctx.Err(), context.Canceled)
	}
}
