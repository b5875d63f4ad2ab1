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
