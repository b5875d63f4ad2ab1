package jetstream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/jetstream"
	"github.com/switchyard-go/switchyard/transports/jetstream/jstest"
)

// TestCloseHandsOverAtOnce: a subscription that ends holding a message
// returns it so that the next subscriber gets it at once, long before
// ack_wait, as its second delivery (not lost to the ending subscription).
func TestCloseHandsOverAtOnce(t *testing.T) {
	srv := jstest.Start(t)
	nc := connect(t, srv.URL())
	cfg := testConfig("hub")
	cfg.AckWait = time.Minute
	cfg.MaxDeliver = 2 // a third delivery would be dead-lettered
	pub, err := jetstream.NewPublisher(cfg, nc, nil)
	require.NoError(t, err)
	defer pub.Close()
	for i := range 10 {
		topic := fmt.Sprintf("events_handover_%d", i)
		require.NoError(t, pub.Publish(topic, message.NewMessage("held", nil)))
		for round := 1; round <= 2; round++ {
			sub, err := jetstream.NewSubscriber(cfg, nc, nil, nil)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			ch, err := sub.Subscribe(ctx, topic)
			require.NoError(t, err)
			select {
			case m := <-ch:
				require.Equal(t, "held", m.UUID)
				if round == 2 {
					m.Ack()
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%s round %d: not handed over", topic, round)
			}
			cancel()
			require.NoError(t, sub.Close())
		}
	}
}

// TestCloseHandsOverEverything: subscriptions that end while messages are
// on their way to them return them all: the next subscribers get every
// message at once, long before ack_wait. (The server redelivers returned
// messages in the order they were returned, after those an earlier
// subscriber returned and it has not redelivered yet: a key's order across
// such handovers is not promised, and the inversions are logged.)
func TestCloseHandsOverEverything(t *testing.T) {
	srv := jstest.Start(t)
	nc := connect(t, srv.URL())
	cfg := testConfig("hub")
	cfg.AckWait = time.Minute
	pub, err := jetstream.NewPublisher(cfg, nc, nil)
	require.NoError(t, err)
	defer pub.Close()
	const topic, n = "events_handover_all", 500
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = keyedMessage(i, 1)
	}
	require.NoError(t, pub.Publish(topic, msgs...))

	var got []*message.Message
	seen := map[string]bool{}
	start := time.Now()
	for len(seen) < n {
		sub, err := jetstream.NewSubscriber(cfg, nc, nil, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := sub.Subscribe(ctx, topic)
		require.NoError(t, err)
		// Each subscription acks a few, then ends holding the rest.
		for range 50 {
			m := receive(t, ch)
			m.Ack()
			if !seen[m.UUID] {
				seen[m.UUID] = true
				got = append(got, m)
			}
			if len(seen) == n {
				break
			}
		}
		cancel()
		require.NoError(t, sub.Close())
	}
	require.Less(t, time.Since(start), cfg.AckWait/2, "nothing waited for ack_wait")
	t.Logf("%d messages arrived after a later one of their key", inversions(got))
}
