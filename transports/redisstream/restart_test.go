package redisstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestEmptyRestart kills redis-server (no AOF) under a running subscription
// and starts it again empty on the same port: the stream and the consumer
// group are gone. watermill-redisstream's subscriber then fails on NOGROUP
// for ever; ours creates the group again at "0", counts it, and delivers
// what is published after the restart; the publisher reconnects on its own.
// (TestEmptyRestartDetected, in emptyrestart_test.go, checks what it tells
// of the entries lost.)
func TestEmptyRestart(t *testing.T) {
	srv := redistest.Start(t) // no AOF: a restart loses everything
	const stream = "events:restart"
	cfg := opsConfig(srv.URL(), "hub")
	pub := opsPublisher(t, cfg)
	sub, reg := opsSubscriber(t, cfg)
	ch := subscribe(t, sub, stream)

	require.NoError(t, pub.Publish(stream, msg("before")))
	require.Equal(t, []string{"before"}, receiveAck(t, ch, 1, 5*time.Second))

	srv.Do(t, "SET", "marker", "1")
	srv.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	down := msg("lost")
	down.SetContext(ctx)
	require.Error(t, pub.Publish(stream, down), "a publish to a dead server fails")
	srv.Restart()
	restarted := time.Now()
	// Not the stream: the subscriber may have made it again already.
	require.Equal(t, "0", srv.Do(t, "EXISTS", "marker"), "the server came back empty")

	// The publisher's pooled connections died with the server; the first
	// publish after the restart goes through on a new one.
	require.NoError(t, pub.Publish(stream, msg("after")))
	got := receiveAck(t, ch, 1, 5*time.Second-time.Since(restarted))
	require.Equal(t, []string{"after"}, got)
	t.Logf("delivered %v after the restart", time.Since(restarted))

	require.GreaterOrEqual(t, metricValue(t, reg, "switchyard_redis_group_recreated_total", "stream", stream), 1.0)
	require.Contains(t, srv.Do(t, "XINFO", "GROUPS", stream), "hub")
	require.Eventually(t, func() bool { return pendingCount(t, srv, stream, "hub") == 0 },
		2*time.Second, 10*time.Millisecond, "the message is acked in the new group")
}

// TestEmptyRestartGroupFromZero: the group is created again at "0", not at
// start_id "$", so what was published between the restart and the group's
// return is not skipped; and it comes back while the handler still holds a
// message (the subscription reads no more meanwhile).
func TestEmptyRestartGroupFromZero(t *testing.T) {
	srv := redistest.Start(t)
	const stream = "events:restart-zero"
	cfg := opsConfig(srv.URL(), "hub")
	cfg.StartID = "$" // a new group skips what came before; a re-created one must not
	cfg.ReadCount = 1 // it holds 2 entries, then waits
	pub := opsPublisher(t, cfg)
	sub, reg := opsSubscriber(t, cfg)
	ch := subscribe(t, sub, stream)
	require.NoError(t, pub.Publish(stream, msg("before-1"), msg("before-2")))
	first := receive(t, ch, 5*time.Second)
	require.Equal(t, "before-1", string(first.Payload))
	require.Eventually(t, func() bool { return pendingCount(t, srv, stream, "hub") == 2 },
		5*time.Second, 5*time.Millisecond, "the subscription holds both and reads no more")

	srv.Kill()
	srv.Restart()
	require.NoError(t, pub.Publish(stream, msg("after-1"), msg("after-2")))
	require.Eventually(t, func() bool { return hasGroup(t, srv, stream, "hub") }, 5*time.Second, 5*time.Millisecond,
		"the group is back while the handler holds before-1")
	require.Equal(t, 1.0, metricValue(t, reg, "switchyard_redis_group_recreated_total", "stream", stream))

	first.Ack()
	got := receiveAck(t, ch, 3, 5*time.Second)
	require.Equal(t, []string{"before-2", "after-1", "after-2"}, got)
	require.Equal(t, 1.0, metricValue(t, reg, "switchyard_redis_group_recreated_total", "stream", stream))
}
