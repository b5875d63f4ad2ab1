package redisstream_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// blackhole is a TCP listener on loopback that accepts connections and
// never answers, as a server that hangs (or a dropped route) would.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// The margin a deadline may be overrun by on a loaded machine under -race.
const deadlineSlack = 400 * time.Millisecond

// TestDeadlines: against a server that never answers, a publish ends at the
// message context's deadline, or at publish_timeout without one, and the
// publisher still closes promptly.
func TestDeadlines(t *testing.T) {
	addr := blackhole(t)
	cfg := opsConfig("redis://"+addr+"/0", "hub")
	cfg.PublishTimeout = 300 * time.Millisecond
	pub, err := redisstream.NewPublisher(cfg, nil, nil)
	require.NoError(t, err)

	t.Run("message deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		defer cancel()
		m := msg("x")
		m.SetContext(ctx)
		start := time.Now()
		err := pub.Publish("events:deadline", m)
		took := time.Since(start)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.GreaterOrEqual(t, took, 250*time.Millisecond)
		require.Less(t, took, 250*time.Millisecond+deadlineSlack)
	})
	t.Run("publish_timeout", func(t *testing.T) {
		start := time.Now()
		err := pub.Publish("events:deadline", msg("x"))
		took := time.Since(start)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.GreaterOrEqual(t, took, cfg.PublishTimeout)
		require.Less(t, took, cfg.PublishTimeout+deadlineSlack)
	})
	t.Run("the shorter of both", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		m := msg("x")
		m.SetContext(ctx)
		start := time.Now()
		require.ErrorIs(t, pub.Publish("events:deadline", m), context.DeadlineExceeded)
		require.Less(t, time.Since(start), cfg.PublishTimeout+deadlineSlack)
	})

	start := time.Now()
	require.NoError(t, pub.Close())
	require.Less(t, time.Since(start), deadlineSlack, "Close waits for no hung publish")
}

// TestDeadlineOfOneMessageOnly: publishes that share a pipeline keep their
// own deadlines. A message with a short deadline fails alone; one published
// with it and a longer deadline succeeds once the server answers.
func TestDeadlineOfOneMessageOnly(t *testing.T) {
	srv := redistest.Start(t)
	cfg := opsConfig(srv.URL(), "hub")
	cfg.Flushers = 1
	cfg.Linger = 50 * time.Millisecond // both publishes go in one pipeline
	pub := opsPublisher(t, cfg)
	require.NoError(t, pub.Publish("events:warm", msg("x"))) // connect first

	// The server hangs for 600 ms from now.
	resume := stopServer(t, srv)
	timer := time.AfterFunc(600*time.Millisecond, resume)
	defer timer.Stop()

	errs := make(chan error, 2)
	for _, d := range []time.Duration{300 * time.Millisecond, 5 * time.Second} {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			m := msg(d.String())
			m.SetContext(ctx)
			err := pub.Publish("events:shared", m)
			if err != nil {
				err = errors.Join(errors.New(d.String()), err)
			}
			errs <- err
		}()
	}
	var failed, ok int
	for range 2 {
		if err := <-errs; err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Contains(t, err.Error(), "300ms")
			failed++
		} else {
			ok++
		}
	}
	require.Equal(t, 1, failed)
	require.Equal(t, 1, ok, "the 5 s publish is not failed by the 300 ms one")
	require.Contains(t, srv.Do(t, "XRANGE", "events:shared", "-", "+"), "5s")
}
