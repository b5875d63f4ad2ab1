package bus_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports"
)

type failingSubscriber struct{ err error }

func (s failingSubscriber) Subscribe(context.Context, string) (<-chan *message.Message, error) {
	return nil, s.err
}
func (failingSubscriber) Close() error { return nil }

// A Subscribe that fails on one of several inbound transports leaves no
// subscription behind on the others. One left behind was a subscriber
// nobody read: in the memory transport its workers took messages of the
// topic's consumer group and held them, so that the next subscriber never
// got them.
func TestSubscribeThatFailsLeavesNoSubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errRefused := errors.New("refused")
		b := newBus(t, func(c *bus.Config) {
			c.Transports["refusing"] = map[string]any{"type": "refusing"}
			c.Consume.From = []string{"memory", "refusing"}
		}, bus.WithRegistry(registryWith("refusing", transports.Transport{Subscriber: failingSubscriber{err: errRefused}})))
		t.Cleanup(func() { _ = b.Close() })

		_, err := b.Subscribe(context.Background(), "events")
		require.ErrorIs(t, err, errRefused)

		mem, _ := b.Transport("memory")
		require.NoError(t, mem.Publisher.Publish("events", bus.NewMessage("chat_message", "k", nil)))
		next, err := mem.Subscriber.Subscribe(t.Context(), "events")
		require.NoError(t, err)
		select {
		case m := <-next:
			m.Ack()
		case <-time.After(time.Minute):
			t.Fatal("the next subscriber did not get the message")
		}
	})
}
