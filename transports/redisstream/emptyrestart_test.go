package redisstream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// The tests of Redis restarting without its data (no persistence): what the
// transport keeps, and how it tells what Redis lost.

// hasGroup reports whether stream has the consumer group.
func hasGroup(t testing.TB, srv *redistest.Server, stream, group string) bool {
	out, err := srv.Exec("XINFO", "GROUPS", stream)
	if err != nil {
		return false // no such key
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == group {
			return true
		}
	}
	return false
}

// receivePrefixed acks what ch delivers until it has had every payload of
// want, failing t after d; other payloads are acked and skipped.
func receivePrefixed(t *testing.T, ch <-chan *message.Message, want []string, d time.Duration) {
	t.Helper()
	missing := map[string]bool{}
	for _, p := range want {
		missing[p] = true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for len(missing) > 0 {
		select {
		case m, ok := <-ch:
			require.True(t, ok, "subscription closed")
			delete(missing, string(m.Payload))
			m.Ack()
		case <-timer.C:
			t.Fatalf("%d of %d messages missing after %v", len(missing), len(want), d)
		}
	}
}

// TestEmptyRestartBusyConsumer: Redis restarts empty while every handler is
// busy, and producers write 5,000 entries to a stream with maxlen 100
// before the handlers are free again. The group comes back while the
// handlers are still busy, nothing is trimmed meanwhile (a stream whose
// groups vanished is kept whole until they are back), and all 5,000 are
// delivered once the handlers are free.
func TestEmptyRestartBusyConsumer(t *testing.T) {
	srv := redistest.Start(t) // no persistence
	const stream, maxLen, total = "events:busy", 100, 5000
	cfg := opsConfig(srv.URL(), "hub")
	cfg.MaxLen = maxLen
	cfg.ReadCount = 10 // the subscription holds 20 entries, then stops reading
	pub := opsPublisher(t, cfg)
	sub, _ := opsSubscriber(t, cfg)
	ch := subscribe(t, sub, stream)

	// Nothing is taken from ch: every handler is busy.
	publishN(t, pub, stream, "before", 50)
	require.Eventually(t, func() bool { return pendingCount(t, srv, stream, "hub") >= 2*int(cfg.ReadCount) },
		5*time.Second, 5*time.Millisecond, "the subscription holds its limit")
	trimRound(t, srv, pub, maxLen) // the trimmer has seen the group

	srv.Kill()
	srv.Restart()
	publishN(t, pub, stream, "after", total)
	require.Eventually(t, func() bool { return hasGroup(t, srv, stream, "hub") }, 5*time.Second, 10*time.Millisecond,
		"the group is created again while every handler is busy")
	trimRound(t, srv, pub, maxLen)
	require.Equal(t, total, xlen(t, srv, stream), "nothing unread was trimmed")

	receivePrefixed(t, ch, payloads("after", total), 60*time.Second)
}

// TestEmptyRestartTrimWaitsForGroup: without any subscriber running, a
// publisher that has seen a group on a stream does not trim the stream once
// the group has vanished with an empty restart: the group's subscribers
// create it again at 0 when they come back, and read it all.
func TestEmptyRestartTrimWaitsForGroup(t *testing.T) {
	srv := redistest.Start(t)
	const stream, maxLen, total = "events:trim-restart", 100, 1000
	cfg := opsConfig(srv.URL(), "hub")
	cfg.MaxLen = maxLen
	pub := opsPublisher(t, cfg)
	srv.Do(t, "XGROUP", "CREATE", stream, "audit", "0", "MKSTREAM")
	publishN(t, pub, stream, "before", 10)
	trimRound(t, srv, pub, maxLen)

	srv.Kill()
	srv.Restart()
	publishN(t, pub, stream, "after", total)
	trimRound(t, srv, pub, maxLen)
	require.Equal(t, total, xlen(t, srv, stream), "a stream whose groups vanished is not trimmed")

	// Once a group is back and has read it all, trimming resumes.
	srv.Do(t, "XGROUP", "CREATE", stream, "audit", "$")
	require.Eventually(t, func() bool { return xlen(t, srv, stream) < total }, 5*time.Second, 5*time.Millisecond)
}

// TestEmptyRestartNewConsumer: the consumer and Redis restart together.
// With the default start_id, a group created on the fresh Redis starts at
// the stream's first entry, so what producers wrote before the consumer
// came back is delivered.
func TestEmptyRestartNewConsumer(t *testing.T) {
	srv := redistest.Start(t)
	const stream = "events:fresh"
	cfg := opsConfig(srv.URL(), "hub")
	cfg.StartID = "" // the default
	pub := opsPublisher(t, cfg)

	old, err := redisstream.NewSubscriber(cfg, nil, nil, nil)
	require.NoError(t, err)
	ch := subscribe(t, old, stream)
	require.NoError(t, pub.Publish(stream, msg("before")))
	receiveAckOne(t, ch)
	require.NoError(t, old.Close())

	srv.Kill()
	srv.Restart()
	publishN(t, pub, stream, "after", 100)

	sub, _ := opsSubscriber(t, cfg)
	got := receiveAck(t, subscribe(t, sub, stream), 100, 10*time.Second)
	require.Equal(t, payloads("after", 100), got)
}

// TestEmptyRestartDetected: kill -9 of a Redis without persistence, under a
// lagging consumer, then a restart without its data. The subscriber tells
// it from a stream that was deleted or a group destroyed by hand (below):
// the group vanished and so did the entries it had read. It logs what that
// means and counts it in switchyard_redis_stream_resets_total, once.
func TestEmptyRestartDetected(t *testing.T) {
	srv := redistest.Start(t)
	const stream, total = "events:lagging", 500
	cfg := opsConfig(srv.URL(), "hub")
	cfg.ReadCount = 10
	pub := opsPublisher(t, cfg)
	logs := watermill.NewCaptureLogger()
	reg := prometheus.NewRegistry()
	sub, err := redisstream.NewSubscriber(cfg, nil, logs, redisstream.NewMetrics(reg))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	ch := subscribe(t, sub, stream)

	publishN(t, pub, stream, "m", total)
	first := receive(t, ch, 5*time.Second) // the handler is stuck on it: the group lags
	require.Eventually(t, func() bool { return metricValue(t, reg, "event_queue_depth", "stream", stream) == total },
		5*time.Second, 5*time.Millisecond)

	srv.Kill()
	srv.Restart()
	require.Eventually(t, func() bool {
		return metricValue(t, reg, "switchyard_redis_stream_resets_total", "stream", stream) == 1
	}, 5*time.Second, 10*time.Millisecond, "the reset is counted")
	var warned []watermill.CapturedMessage
	for _, m := range logs.Captured()[watermill.ErrorLogLevel] {
		if strings.Contains(m.Msg, "appendonly yes") {
			warned = append(warned, m)
		}
	}
	require.Len(t, warned, 1, "one warning that says what was lost and how to keep it")
	require.Equal(t, stream, warned[0].Fields["stream"])
	require.Contains(t, warned[0].Msg, "not delivered")

	// The consumer goes on with what is published after the restart; the
	// reset is not counted again.
	first.Ack()
	require.NoError(t, pub.Publish(stream, msg("after")))
	receivePrefixed(t, ch, []string{"after"}, 10*time.Second)
	require.Equal(t, 1.0, metricValue(t, reg, "switchyard_redis_stream_resets_total", "stream", stream))
	require.Equal(t, 1.0, metricValue(t, reg, "switchyard_redis_group_recreated_total", "stream", stream))
}

// TestGroupDestroyedIsNotAReset: a group destroyed by hand while its
// stream keeps its entries is created again at 0 and counted in
// switchyard_redis_group_recreated_total, but no entry was lost: it is not
// a reset.
func TestGroupDestroyedIsNotAReset(t *testing.T) {
	srv := redistest.Start(t)
	const stream = "events:destroyed"
	cfg := opsConfig(srv.URL(), "hub")
	cfg.StartID = "$" // the group is created again at 0 all the same
	pub := opsPublisher(t, cfg)
	sub, reg := opsSubscriber(t, cfg)
	ch := subscribe(t, sub, stream)
	publishN(t, pub, stream, "m", 10)
	require.Equal(t, payloads("m", 10), receiveAck(t, ch, 10, 5*time.Second))

	srv.Do(t, "XGROUP", "DESTROY", stream, "hub")
	require.Eventually(t, func() bool {
		return metricValue(t, reg, "switchyard_redis_group_recreated_total", "stream", stream) == 1
	}, 5*time.Second, 10*time.Millisecond)
	// Re-created at 0: the stream's entries come again (at least once).
	require.Equal(t, payloads("m", 10), receiveAck(t, ch, 10, 5*time.Second))
	require.Zero(t, metricValue(t, reg, "switchyard_redis_stream_resets_total", "stream", stream))
}
