package memory_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/transports/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPubSub(t *testing.T) {
	broker, err := memory.NewBroker(memory.Config{
		// The suite nacks one message hundreds of times and expects it back
		// each time, so it runs with unlimited, fast retries; bounded retries
		// and dead-lettering have their own tests.
		MaxRetries:      -1,
		RetryBackoff:    time.Millisecond,
		MaxRetryBackoff: time.Millisecond,
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, broker.Close()) })

	features := tests.Features{
		// Every group created on a topic gets every message published after it.
		ConsumerGroups: true,
		// At-least-once: a message in a subscriber's hands when it goes away
		// is delivered again.
		ExactlyOnceDelivery: false,
		// Messages without a key share one lane, delivered one at a time and
		// only after the previous ack, whatever the number of subscribers.
		GuaranteedOrder: true,
		// Publishers and subscribers made from one Broker share its queues, so
		// what one instance leaves is read by the next. Nothing outlives the
		// process: this is persistence across instances, not across restarts.
		Persistent: true,
		// A delivered message has its own context, canceled on ack.
		ContextPreserved: false,
		// Queues are consumed: a new subscriber of a group gets what is left,
		// not what was already acked.
		NewSubscriberReceivesOldMessages: false,
	}
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return broker.Publisher(), broker.Subscriber("")
		},
		func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			return broker.Publisher(), broker.Subscriber(group)
		},
	)
}
