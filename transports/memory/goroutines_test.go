package memory_test

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/transports/memory"
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
	b := newBroker(t, memory.Config{Lanes: lanes, QueueSize: 1000})
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
