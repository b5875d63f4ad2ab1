package redisstream_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// The tests of kill -9 with each kind of persistence: what comes back, and
// what the subscriber tells of what did not. (Without persistence:
// emptyrestart_test.go.)

// loggedSubscriber is opsSubscriber with a logger that keeps what it logs.
func loggedSubscriber(t *testing.T, cfg redisstream.Config) (*redisstream.Subscriber, *prometheus.Registry, *watermill.CaptureLoggerAdapter) {
	t.Helper()
	logs := watermill.NewCaptureLogger()
	reg := prometheus.NewRegistry()
	sub, err := redisstream.NewSubscriber(cfg, nil, logs, redisstream.NewMetrics(reg))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	return sub, reg, logs
}

// errorsLogged returns the error messages of logs that contain text.
func errorsLogged(logs *watermill.CaptureLoggerAdapter, text string) []watermill.CapturedMessage {
	var found []watermill.CapturedMessage
	for _, m := range logs.Captured()[watermill.ErrorLogLevel] {
		if strings.Contains(m.Msg, text) {
			found = append(found, m)
		}
	}
	return found
}

// TestRestartWithAOFLosesNothing: with appendonly yes, kill -9 of Redis
// under a lagging consumer loses nothing, with appendfsync always and with
// everysec (Redis hands each write to the operating system before it
// replies; only a crash of the machine loses the last second): the stream,
// the group, its position and its pending entries come back, every entry
// is delivered, and no reset is counted.
func TestRestartWithAOFLosesNothing(t *testing.T) {
	for name, opts := range map[string][]redistest.Option{
		"always":   {redistest.WithAOF()},
		"everysec": {redistest.WithAOF(), redistest.WithArgs("--appendfsync", "everysec")},
	} {
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t, opts...)
			const stream, total = "events:aof", 500
			cfg := opsConfig(srv.URL(), "hub")
			cfg.ReadCount = 10
			pub := opsPublisher(t, cfg)
			sub, reg, logs := loggedSubscriber(t, cfg)
			ch := subscribe(t, sub, stream)
			publishN(t, pub, stream, "m", total)
			first := receive(t, ch, 5*time.Second) // the handler is stuck on it: the group lags
			require.Eventually(t, func() bool { return pendingCount(t, srv, stream, "hub") >= 2*int(cfg.ReadCount) },
				5*time.Second, 5*time.Millisecond)

			srv.Kill()
			srv.Restart()
			require.Equal(t, total, xlen(t, srv, stream), "the stream came back whole")
			first.Ack()
			rest := slices.DeleteFunc(payloads("m", total), func(p string) bool { return p == string(first.Payload) })
			receivePrefixed(t, ch, rest, 30*time.Second)
			require.Zero(t, metricValue(t, reg, "switchyard_redis_stream_resets_total", "stream", stream))
			require.Zero(t, metricValue(t, reg, "switchyard_redis_group_recreated_total", "stream", stream))
			require.Empty(t, errorsLogged(logs, "Stream reset"))
		})
	}
}

// TestRestartFromSnapshot: Redis with RDB snapshots only comes back from
// its last snapshot, with the group as it was then: what was written after
// it is gone, though the group is there. The subscription notices that the
// group's last delivered entry is older than entries it had read, logs what
// that means and counts a stream reset, once.
func TestRestartFromSnapshot(t *testing.T) {
	srv := redistest.Start(t)
	const stream = "events:rdb"
	cfg := opsConfig(srv.URL(), "hub")
	pub := opsPublisher(t, cfg)
	sub, reg, logs := loggedSubscriber(t, cfg)
	ch := subscribe(t, sub, stream)
	publishN(t, pub, stream, "m", 10)
	require.Equal(t, payloads("m", 10), receiveAck(t, ch, 10, 5*time.Second))
	require.Eventually(t, func() bool { return pendingCount(t, srv, stream, "hub") == 0 },
		5*time.Second, 5*time.Millisecond)
	srv.Do(t, "SAVE")
	publishN(t, pub, stream, "n", 10)
	require.Equal(t, payloads("n", 10), receiveAck(t, ch, 10, 5*time.Second))

	srv.Kill()
	srv.Restart()
	require.Equal(t, 10, xlen(t, srv, stream), "back to the snapshot")
	require.Eventually(t, func() bool {
		return metricValue(t, reg, "switchyard_redis_stream_resets_total", "stream", stream) == 1
	}, 5*time.Second, 10*time.Millisecond, "the reset is counted")
	warned := errorsLogged(logs, "appendfsync always")
	require.Len(t, warned, 1)
	require.Equal(t, stream, warned[0].Fields["stream"])
	require.Zero(t, metricValue(t, reg, "switchyard_redis_group_recreated_total", "stream", stream),
		"the group came back with the snapshot")

	require.NoError(t, pub.Publish(stream, msg("after")))
	receivePrefixed(t, ch, []string{"after"}, 5*time.Second)
	require.Equal(t, 1.0, metricValue(t, reg, "switchyard_redis_stream_resets_total", "stream", stream))
}
