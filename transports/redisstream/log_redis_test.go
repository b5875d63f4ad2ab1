//go:build linux

package redisstream_test

import (
	"context"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
)

// captureStderr sends what the process writes to file descriptor 2 to a
// file until the returned function, which returns it, is called.
func captureStderr(t *testing.T) func() string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	saved, err := syscall.Dup(2)
	require.NoError(t, err)
	require.NoError(t, syscall.Dup3(int(f.Fd()), 2, 0))
	return func() string {
		require.NoError(t, syscall.Dup3(saved, 2, 0))
		require.NoError(t, syscall.Close(saved))
		out, err := os.ReadFile(f.Name())
		require.NoError(t, err)
		require.NoError(t, f.Close())
		return string(out)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestGoRedisLogsGoToTheTransportLogger: go-redis's own lines (a failed
// dial) go to the transport's logger, not to stderr.
func TestGoRedisLogsGoToTheTransportLogger(t *testing.T) {
	logger := &captureLogger{}
	tr, err := buildTransportLogged(t, map[string]any{"url": "redis://" + closedPort(t) + "/0", "publish_timeout": "1s"}, logger)
	require.NoError(t, err)
	defer func() { require.NoError(t, tr.Publisher.Close()) }()

	stderr := captureStderr(t)
	// One publish: its retries dial fewer times than the pool's size,
	// past which go-redis starts a prober that outlives Close by a second.
	require.Error(t, tr.Publisher.Publish("events:log", msg("x")))
	out := stderr()
	require.NotContains(t, out, "failed to dial", "go-redis printed to stderr")
	require.Contains(t, logger.text(), "failed to dial", "the transport's logger has go-redis's lines")
}

// TestGoRedisLogsOfASubscribersOwnClient: a subscriber that makes its own
// client sends go-redis's lines to its logger too.
func TestGoRedisLogsOfASubscribersOwnClient(t *testing.T) {
	logger := &captureLogger{}
	cfg := redisstream.Config{
		URL: "redis://" + closedPort(t) + "/0", ConsumerGroup: "hub",
		// Few dials before Close: past the pool's size go-redis starts a
		// prober that outlives Close by a second.
		RetryBackoff: 200 * time.Millisecond, MaxRetryBackoff: time.Second,
	}
	sub, err := redisstream.NewSubscriber(cfg, nil, logger, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stderr := captureStderr(t)
	_, err = sub.Subscribe(ctx, "events:log")
	if err == nil {
		require.Eventually(t, func() bool { return strings.Contains(logger.text(), "failed to dial") },
			5*time.Second, 10*time.Millisecond, "the subscriber's logger has go-redis's lines")
	}
	cancel()
	require.NoError(t, sub.Close())
	require.NotContains(t, stderr(), "failed to dial", "go-redis printed to stderr")
	require.Contains(t, logger.text(), "failed to dial")
}
