package bus

import (
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/internal/metakey"
)

// Metadata keys the bus reads and writes.
const (
	// MetaEventType is the event's type, e.g. "chat_message" or "typing".
	MetaEventType = metakey.EventType
	// MetaEventKey is the ordering key: events that share it keep their order
	// and take the same route. A conversation or request ID, typically.
	MetaEventKey = metakey.EventKey
	// MetaPublishedAt is when NewMessage made the event, RFC 3339 with
	// nanoseconds, UTC; the consumer side measures delivery latency from it.
	MetaPublishedAt = "published_at"
	// MetaTransport is the configured transport name the route stage chose.
	MetaTransport = metakey.Transport
)

// Metadata keys the bus writes on a dead-lettered message.
const (
	MetaDeadLetterReason   = "dead_letter_reason"
	MetaDeadLetterTopic    = "dead_letter_topic"
	MetaDeadLetterAttempts = "dead_letter_attempts"
)

// NewMessage returns a message with a new UUID, the event type and key, and
// the time of publication in its metadata.
func NewMessage(eventType, key string, payload []byte) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), payload)
	m.Metadata[MetaEventType] = eventType
	m.Metadata[MetaEventKey] = key
	m.Metadata[MetaPublishedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	return m
}
