package queue_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/lane"
	"github.com/switchyard-go/switchyard/internal/queue"
)

// A subscription whose context ended delivers nothing more: a message in a
// handler's hands when it ends (not acked yet) goes back to its lane for
// the next subscriber of the group, not again to one of the ending
// subscription's own workers. Bus.Close stops its handlers that way while a
// handler may still run, and such a redelivery handed the handler the same
// event twice.
//
// The workers that just had another message acked come back for a lane
// while the context ends; whether one of them finds the lane put back, and
// whether Go's select then picks it, is up to the scheduler, so the case is
// tried many times.
func TestEndedSubscriptionDoesNotRedeliver(t *testing.T) {
	const tries, lanes = 200, 8
	// One key per lane: "held" takes one, the others the rest.
	keys := map[int]string{lane.Of("held", lanes): "held"}
	for i := 0; len(keys) < lanes; i++ {
		if k := "k" + strconv.Itoa(i); keys[lane.Of(k, lanes)] == "" {
			keys[lane.Of(k, lanes)] = k
		}
	}
	for try := range tries {
		b := newBroker(t, queue.Config{Lanes: lanes})
		ctx, cancel := context.WithCancel(t.Context())
		msgs, err := b.Subscribe(ctx, "t")
		require.NoError(t, err)
		for _, k := range keys {
			require.NoError(t, b.Publish("t", keyed(k, k, "")))
		}
		var held *message.Message
		var acked []*message.Message
		for range lanes {
			m := receive(t, msgs)
			if m.UUID == "held" {
				held = m
			} else {
				acked = append(acked, m)
			}
		}
		for _, m := range acked {
			m.Ack()
		}
		cancel()
		for m := range msgs {
			m.Ack()
			require.Failf(t, "delivered after its subscription ended", "try %d: message %s", try, m.UUID)
		}
		held.Ack() // too late: the subscription ended without it

		// At least once: the next subscriber gets it.
		next, err := b.Subscribe(t.Context(), "t")
		require.NoError(t, err)
		require.Equal(t, "held", receive(t, next).UUID)
		require.NoError(t, b.Close())
	}
}
