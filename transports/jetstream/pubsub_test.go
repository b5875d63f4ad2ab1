package jetstream_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/transports/jetstream"
	"github.com/switchyard-go/switchyard/transports/jetstream/jstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Watermill's suite reads exactly as many messages as it published
		// from its multiplied subscribers and leaves their forwarders
		// blocked on any redelivered extra (at-least-once delivery).
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func2"),
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func3"),
		// TestReconnect's collector ranges over a channel it never closes.
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/pubsub/tests.TestReconnect.func2"),
	)
}

// connect is a connection of the test's own to url, closed with t.
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.ReconnectBufSize(-1))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

func testConfig(consumer string) jetstream.Config {
	return jetstream.Config{
		Consumer:        consumer,
		AckWait:         5 * time.Second,
		MaxDeliver:      -1,
		RetryBackoff:    time.Millisecond,
		MaxRetryBackoff: time.Millisecond,
		PublishTimeout:  5 * time.Second,
		Storage:         "file",
	}
}

func TestPubSub(t *testing.T) {
	srv := jstest.Start(t)
	nc := connect(t, srv.URL())

	features := tests.Features{
		// A durable consumer per group: each group gets every message,
		// its subscribers share them.
		ConsumerGroups: true,
		// Acked after the handler's ack; a lost ack means a redelivery.
		ExactlyOnceDelivery: false,
		// Messages without a key share lane 0: one at a time, in order.
		GuaranteedOrder:                     true,
		GuaranteedOrderWithSingleSubscriber: true,
		// Streams are stored by the server (file storage).
		Persistent: true,
		// Restarting our own embedded server, with its store, mid-test.
		RestartServiceCommand: srv.RestartCommand(t),
		// Each delivery gets its own context.
		ContextPreserved: false,
	}
	if raceEnabled {
		// Watermill's TestReconnect appends to a slice in one goroutine and
		// reads it in another without synchronisation, so the race
		// detector fails the suite itself; TestRestartLosesNothing covers
		// restarts under -race, and a run without -race runs it.
		features.RestartServiceCommand = nil
	}
	newPubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		cfg := testConfig(group)
		pub, err := jetstream.NewPublisher(cfg, nc, nil)
		require.NoError(t, err)
		sub, err := jetstream.NewSubscriber(cfg, nc, nil, nil)
		require.NoError(t, err)
		// Some tests of the suite leave a subscriber open.
		t.Cleanup(func() { _ = pub.Close(); _ = sub.Close() })
		return pub, sub
	}
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) { return newPubSub(t, "test") },
		newPubSub,
	)
}
