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

// publisherPaths are the two ways a publish reaches Redis: from the
// caller's goroutine, when nothing else is in flight on a client that ends
// calls at their deadline (as the transport's own clients do), and through
// a flusher, which shares pipelines.
func publisherPaths(t *testing.T, cfg redisstream.Config) map[string]*redisstream.Publisher {
	t.Helper()
	direct, err := redisstream.NewPublisher(cfg, nil, nil)
	require.NoError(t, err)
	flushed, err := redisstream.NewPublisher(cfg, nil, nil)
	require.NoError(t, err)
	redisstream.SendThroughFlushers(flushed)
	t.Cleanup(func() { _ = direct.Close(); _ = flushed.Close() })
	return map[string]*redisstream.Publisher{"direct": direct, "flusher": flushed}
}

// TestDeadlines: against a server that never answers, a publish ends at the
// message context's deadline, or at publish_timeout without one, and the
// publisher still closes promptly; on both paths.
func TestDeadlines(t *testing.T) {
	cfg := opsConfig("redis://"+blackhole(t)+"/0", "hub")
	cfg.PublishTimeout = 300 * time.Millisecond
	for path, pub := range publisherPaths(t, cfg) {
		t.Run(path, func(t *testing.T) {
			t.Run("message deadline", func(t *testing.T) {
				// Before the deadline is set: it is at least 250ms after.
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
				defer cancel()
				m := msg("x")
				m.SetContext(ctx)
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
		})
	}
}

// TestDeadlineOfOneMessageOnly: concurrent publishes keep their own
// deadlines, whether they share a pipeline (the flusher path, lingering so
// that they do) or one is sent from its caller's goroutine. A message with
// a short deadline fails alone; one published with it and a longer deadline
// succeeds once the server answers.
func TestDeadlineOfOneMessageOnly(t *testing.T) {
	srv := redistest.Start(t)
	cfg := opsConfig(srv.URL(), "hub")
	cfg.Flushers = 1
	cfg.Linger = 50 * time.Millisecond
	for path, pub := range publisherPaths(t, cfg) {
		t.Run(path, func(t *testing.T) {
			require.NoError(t, pub.Publish("events:warm", msg("x"))) // connect first

			// The server hangs for 600 ms from now.
			resume := stopServer(t, srv)
			timer := time.AfterFunc(600*time.Millisecond, resume)
			defer timer.Stop()

			stream := "events:shared-" + path
			errs := make(chan error, 2)
			for _, d := range []time.Duration{300 * time.Millisecond, 5 * time.Second} {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), d)
					defer cancel()
					m := msg(d.String())
					m.SetContext(ctx)
					err := pub.Publish(stream, m)
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
			require.Contains(t, srv.Do(t, "XRANGE", stream, "-", "+"), "5s")
		})
	}
}
