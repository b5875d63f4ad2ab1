package redisstream_test

import (
	"context"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// connectedClients is INFO clients' connected_clients, less the redis-cli
// that asks.
func connectedClients(t *testing.T, srv *redistest.Server) int {
	return atoi(t, infoField(t, srv, "clients", "connected_clients")) - 1
}

// TestCloseGivenClient: a publisher and a subscriber given a client never
// close it; it works after both have closed (twice).
func TestCloseGivenClient(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, srv.URL())
	cfg := opsConfig("", "hub")
	pub, err := redisstream.NewPublisher(cfg, client, nil)
	require.NoError(t, err)
	sub, err := redisstream.NewSubscriber(cfg, client, nil, nil)
	require.NoError(t, err)
	ch := subscribe(t, sub, "events:close")
	require.NoError(t, pub.Publish("events:close", msg("x")))
	receiveAck(t, ch, 1, 5*time.Second)

	for range 2 {
		require.NoError(t, pub.Close())
		require.NoError(t, sub.Close())
	}
	require.NoError(t, client.Ping(context.Background()).Err(), "the given client still works")
	require.ErrorIs(t, pub.Publish("events:close", msg("y")), redisstream.ErrClosed)
	_, err = sub.Subscribe(context.Background(), "events:close")
	require.ErrorIs(t, err, redisstream.ErrClosed)
}

// TestCloseOwnClient: a publisher and a subscriber that made their client
// from the configuration close it: the server sees their connections go.
func TestCloseOwnClient(t *testing.T) {
	srv := redistest.Start(t)
	cfg := opsConfig(srv.URL(), "hub")
	pub, err := redisstream.NewPublisher(cfg, nil, nil)
	require.NoError(t, err)
	sub, err := redisstream.NewSubscriber(cfg, nil, nil, nil)
	require.NoError(t, err)
	ch := subscribe(t, sub, "events:close")
	require.NoError(t, pub.Publish("events:close", msg("x")))
	receiveAck(t, ch, 1, 5*time.Second)
	require.Positive(t, connectedClients(t, srv))

	require.NoError(t, pub.Close())
	require.NoError(t, sub.Close())
	require.NoError(t, pub.Close(), "idempotent")
	require.NoError(t, sub.Close(), "idempotent")
	require.Eventually(t, func() bool { return connectedClients(t, srv) == 0 },
		5*time.Second, 10*time.Millisecond, "every connection closed")
}

// stopServer sends SIGSTOP to srv, as a server that hangs; it gets SIGCONT
// when the returned function is called, or at the end of the test.
func stopServer(t *testing.T, srv *redistest.Server) (resume func()) {
	t.Helper()
	pid, err := strconv.Atoi(infoField(t, srv, "server", "process_id"))
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	resume = sync.OnceFunc(func() { require.NoError(t, syscall.Kill(pid, syscall.SIGCONT)) })
	t.Cleanup(resume)
	return resume
}

// TestCloseHungServer: Close is bounded when the server stops answering
// mid-subscription: about 2 s for a subscriber (a read, an ack), the
// publish timeout for a publisher (its trimmer's round).
func TestCloseHungServer(t *testing.T) {
	srv := redistest.Start(t)
	cfg := opsConfig(srv.URL(), "hub")
	cfg.PublishTimeout = 500 * time.Millisecond
	pub, err := redisstream.NewPublisher(cfg, nil, nil)
	require.NoError(t, err)
	sub, err := redisstream.NewSubscriber(cfg, nil, nil, nil)
	require.NoError(t, err)
	ch := subscribe(t, sub, "events:hung")
	require.NoError(t, pub.Publish("events:hung", msg("x")))
	m := receive(t, ch, 5*time.Second)

	stopServer(t, srv)
	m.Ack() // its XACK hangs too
	var wg sync.WaitGroup
	var pubTook, subTook time.Duration
	// A publish hangs too, sent from its own goroutine (nothing else is in
	// flight): Close waits for it, up to its publish_timeout.
	published := make(chan error, 1)
	go func() { published <- pub.Publish("events:hung", msg("y")) }()
	time.Sleep(50 * time.Millisecond)
	wg.Go(func() {
		start := time.Now()
		assert.NoError(t, pub.Close())
		pubTook = time.Since(start)
	})
	wg.Go(func() {
		start := time.Now()
		assert.NoError(t, sub.Close())
		subTook = time.Since(start)
	})
	wg.Wait()
	require.Error(t, <-published)
	t.Logf("Close took %v (publisher), %v (subscriber)", pubTook, subTook)
	require.Less(t, pubTook, cfg.PublishTimeout+deadlineSlack)
	require.Less(t, subTook, 3*time.Second)
}
