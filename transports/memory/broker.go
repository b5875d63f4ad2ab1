package memory

import (
	"github.com/ThreeDotsLabs/watermill"

	"github.com/switchyard-go/switchyard/internal/queue"
)

// Sentinel errors, checked with errors.Is.
var (
	ErrClosed    = queue.ErrClosed
	ErrQueueFull = queue.ErrQueueFull
)

// Broker is an in-process Pub/Sub with bounded, per-key ordered queues.
//
// Each topic keeps one queue per consumer group. A queue is split into lanes
// chosen by a hash of the message key: a lane delivers its next message only
// after the previous one was acked, so messages that share a key arrive in
// publish order, while different lanes are delivered concurrently. A nacked
// message is redelivered, first in its lane, after a backoff that doubles up
// to MaxRetryBackoff; after MaxRetries redeliveries it is dead-lettered.
// Goroutines are bounded: each subscription runs one per lane, none are
// started per message.
//
// Publish, PublishContext, Subscribe and SubscribeInitialize make it a
// Watermill Pub/Sub; Drain and Settle wait for its queues; Stats and
// QueueDepths count; Subscriber and Publisher return handles on it, closed
// on their own; Close discards what is still queued.
type Broker = queue.Broker

// Stats are a Broker's counters since it started: Published (accepted,
// counted once per consumer group), Delivered (redeliveries included),
// Acked, Nacked, DeadLettered, Discarded (still held at Close), and Queued,
// a current value (accepted and not yet acked or dead-lettered).
type Stats = queue.Stats

// Subscriber is a handle on a Broker for one consumer group.
type Subscriber = queue.Subscriber

// Publisher is a handle on a Broker.
type Publisher = queue.Publisher

// NewBroker returns a broker. A nil logger logs nothing.
func NewBroker(cfg Config, logger watermill.LoggerAdapter) (*Broker, error) {
	return queue.NewBroker(queue.Config(cfg), logger)
}
