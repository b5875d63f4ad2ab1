package redisstream_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
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

func newClient(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	opt, err := redis.ParseURL(url)
	require.NoError(t, err)
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testConfig(group string) redisstream.Config {
	return redisstream.Config{
		ConsumerGroup: group,
		Consumer:      watermill.NewShortUUID(),
		StartID:       "0",
		// Each instance is a new consumer: what an instance closed with
		// unacked is claimed by the next after ClaimMinIdle.
		ClaimInterval:   250 * time.Millisecond,
		ClaimMinIdle:    time.Second,
		MaxRetries:      -1,
		RetryBackoff:    time.Millisecond,
		MaxRetryBackoff: time.Millisecond,
	}
}

func TestPubSub(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAOF())
	client := newClient(t, srv.URL())

	features := tests.Features{
		// XREADGROUP: each group gets every entry; its consumers share them.
		ConsumerGroups: true,
		// An entry is acked after the handler's ack; one whose ack was lost
		// is delivered again.
		ExactlyOnceDelivery: false,
		// Entries without a key are handed out one at a time in stream order.
		GuaranteedOrder: true,
		// Several consumers of one group each read their own entries.
		GuaranteedOrderWithSingleSubscriber: true,
		// Streams live in Redis: what one instance leaves, the next reads.
		Persistent: true,
		// Restarting our own redis-server (AOF on) mid-test.
		RestartServiceCommand: srv.RestartCommand(),
		// Each delivery gets its own context.
		ContextPreserved: false,
	}
	if raceEnabled {
		// Watermill's TestReconnect appends to a slice in one goroutine and
		// reads it in another without synchronisation (test_pubsub.go:1086
		// and :1120), so the race detector fails the suite itself. `make
		// test` runs it once more without -race; see TestReconnect below.
		features.RestartServiceCommand = nil
	}
	newPubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		cfg := testConfig(group)
		pub, err := redisstream.NewPublisher(cfg, client, nil)
		require.NoError(t, err)
		sub, err := redisstream.NewSubscriber(cfg, client, nil, nil)
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
