package redisstream_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestReconnect is Watermill's TestReconnect with its bookkeeping
// synchronised (the suite's own version races; see TestPubSub): 5,000
// messages from 50 publishers while redis-server (AOF on) restarts twice;
// every message a publish succeeded for is received.
func TestReconnect(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAOF())
	client := newClient(t, srv.URL())
	cfg := testConfig("reconnect")
	pub, err := redisstream.NewPublisher(cfg, client, nil)
	require.NoError(t, err)
	sub, err := redisstream.NewSubscriber(cfg, client, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close(); _ = sub.Close() })
	require.NoError(t, sub.SubscribeInitialize("reconnect"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, "reconnect")
	require.NoError(t, err)

	const total, publishers = 5000, 50
	var (
		mu        sync.Mutex
		published = map[string]bool{}
		wg        sync.WaitGroup
		work      = make(chan int)
	)
	for range publishers {
		wg.Go(func() {
			for i := range work {
				m := message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i)))
				for pub.Publish("reconnect", m) != nil {
					time.Sleep(50 * time.Millisecond) // a retry loop, not synchronisation
				}
				mu.Lock()
				published[m.UUID] = true
				mu.Unlock()
			}
		})
	}
	go func() {
		for i := range total {
			if i == total/3 || i == total/2 {
				srv.Restart()
			}
			work <- i
		}
		close(work)
	}()

	received := map[string]bool{}
	deadline := time.After(60 * time.Second)
	for len(received) < total {
		select {
		case m := <-msgs:
			received[m.UUID] = true
			m.Ack()
		case <-deadline:
			t.Fatalf("received %d of %d", len(received), total)
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, published, total)
	for id := range published {
		require.True(t, received[id], "published %s never received", id)
	}
}
