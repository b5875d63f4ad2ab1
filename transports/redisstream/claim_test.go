package redisstream_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestOwnPendingReadAgain: a consumer that stopped without acking gets its
// pending entries again as soon as it subscribes again under the same name
// (XREADGROUP from 0 first), not after claim_min_idle as with
// watermill-redisstream, which reads only new entries and leaves its own
// pending ones to be claimed.
func TestOwnPendingReadAgain(t *testing.T) {
	srv := redistest.Start(t)
	const stream = "events:own"
	cfg := opsConfig(srv.URL(), "hub")
	cfg.ClaimMinIdle = time.Hour
	pub := opsPublisher(t, cfg)
	require.NoError(t, pub.Publish(stream, msg("a", "event_key", "1"), msg("b", "event_key", "2"), msg("c", "event_key", "3")))

	first, err := redisstream.NewSubscriber(cfg, nil, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := first.Subscribe(ctx, stream)
	require.NoError(t, err)
	for range 3 {
		receive(t, ch, 5*time.Second) // and no ack: the process dies
	}
	require.NoError(t, first.Close())
	require.Equal(t, 3, pendingCount(t, srv, stream, "hub"))

	again, _ := opsSubscriber(t, cfg) // the same consumer name
	start := time.Now()
	got := receiveAck(t, subscribe(t, again, stream), 3, 2*time.Second)
	slices.Sort(got)
	require.Equal(t, []string{"a", "b", "c"}, got)
	t.Logf("read again after %v", time.Since(start))
	require.Eventually(t, func() bool { return pendingCount(t, srv, stream, "hub") == 0 },
		2*time.Second, 10*time.Millisecond)
}

// TestClaimFromDeadConsumer: entries pending to a consumer that is gone are
// claimed by a live one once they have been idle for claim_min_idle, and
// counted.
func TestClaimFromDeadConsumer(t *testing.T) {
	srv := redistest.Start(t)
	const stream = "events:claim"
	cfg := opsConfig(srv.URL(), "hub")
	cfg.ClaimMinIdle = 300 * time.Millisecond
	cfg.ClaimInterval = 50 * time.Millisecond
	pub := opsPublisher(t, cfg)
	srv.Do(t, "XGROUP", "CREATE", stream, "hub", "0", "MKSTREAM")
	require.NoError(t, pub.Publish(stream, msg("a", "event_key", "1"), msg("b", "event_key", "2")))
	// Consumer "dead" reads both and never acks.
	srv.Do(t, "XREADGROUP", "GROUP", "hub", "dead", "COUNT", "10", "STREAMS", stream, ">")
	read := time.Now()

	sub, reg := opsSubscriber(t, cfg) // a consumer of another name
	got := receiveAck(t, subscribe(t, sub, stream), 2, 5*time.Second)
	took := time.Since(read)
	slices.Sort(got)
	require.Equal(t, []string{"a", "b"}, got)
	require.GreaterOrEqual(t, took, cfg.ClaimMinIdle, "not before claim_min_idle")
	t.Logf("claimed %v after the dead consumer read them", took)
	require.Equal(t, 2.0, metricValue(t, reg, "switchyard_redis_claimed_total", "stream", stream))
	require.Eventually(t, func() bool { return pendingCount(t, srv, stream, "hub") == 0 },
		2*time.Second, 10*time.Millisecond)
}
