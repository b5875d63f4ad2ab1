package bus

import (
	"crypto/rand"
	"encoding/hex"
	"time"

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
	// The UUID and the time are one string, one allocation.
	u := newUUID()
	var b [len(u) + len(time.RFC3339Nano)]byte
	s := string(time.Now().UTC().AppendFormat(append(b[:0], u[:]...), time.RFC3339Nano))
	m := message.NewMessage(s[:len(u)], payload)
	m.Metadata[MetaEventType] = eventType
	m.Metadata[MetaEventKey] = key
	m.Metadata[MetaPublishedAt] = s[len(u):]
	return m
}

// newUUID returns a random (version 4) UUID, as watermill.NewUUID does,
// without allocating where NewUUID allocates twice: crypto/rand.Read
// keeps its argument on the stack, a reader behind an interface does not.
func newUUID() (s [36]byte) {
	var u [16]byte
	_, _ = rand.Read(u[:])  // never fails (crypto/rand's documentation)
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return s
}
