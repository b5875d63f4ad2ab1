package queue_test

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/queue"
)

// Regression: a Publish waiting for room used to hold the broker's read lock, and Subscribe
// takes the write lock: a consumer that subscribes after the queue filled up
// (publishing before subscribing, as an ingress does before its router runs)
// waits for the publisher, which waits for the consumer. While Subscribe
// waits, every other Publish, to any topic, waits too.
func TestSubscribeWhilePublishBlocked(t *testing.T) {
	b := newBroker(t, queue.Config{QueueSize: 1})
	require.NoError(t, b.Publish("t", keyed("first", "", "")))
	published := make(chan error, 1)
	go func() { published <- b.Publish("t", keyed("second", "", "")) }()
	waitUntilBlockedIn(t, "queue.(*group).reserve")

	type result struct {
		msgs <-chan *message.Message
		err  error
	}
	subscribed := make(chan result, 1)
	go func() {
		msgs, err := b.Subscribe(context.Background(), "t")
		subscribed <- result{msgs, err}
	}()
	var msgs <-chan *message.Message
	select {
	case r := <-subscribed:
		require.NoError(t, r.err)
		msgs = r.msgs
	case <-time.After(2 * time.Second):
		t.Fatal("Subscribe waits for a Publish that waits for a subscriber")
	}
	for _, want := range []string{"first", "second"} {
		m := receive(t, msgs)
		require.Equal(t, want, m.UUID)
		m.Ack()
	}
	require.NoError(t, <-published)
}

// waitUntilBlockedIn waits until some goroutine's stack shows fn.
func waitUntilBlockedIn(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	require.Eventually(t, func() bool {
		n := runtime.Stack(buf, true)
		return bytes.Contains(buf[:n], []byte(fn))
	}, waitFor, time.Millisecond, "no goroutine in %s", fn)
}
