package memory

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/transports"
)

// OnFull says what Publish does when a queue has no room.
type OnFull string

const (
	// Block waits for room until the message context (or the context given to
	// PublishContext) ends: backpressure.
	Block OnFull = "block"
	// Reject fails at once with ErrQueueFull.
	Reject OnFull = "reject"
)

// KeyMetadata is the metadata key whose value picks a message's lane by
// default. It is the same key the bus writes as its event key.
const KeyMetadata = "event_key"

// Metadata keys written on dead-lettered messages.
const (
	DeadLetterReasonKey   = "dead_letter_reason"
	DeadLetterTopicKey    = "dead_letter_topic"
	DeadLetterAttemptsKey = "dead_letter_attempts"
)

// Defaults applied to zero-valued fields of Config.
const (
	DefaultLanes           = 64
	DefaultQueueSize       = 10000
	DefaultMaxRetries      = 5
	DefaultRetryBackoff    = 10 * time.Millisecond
	DefaultMaxRetryBackoff = time.Second
	DefaultDeadLetterTopic = "dead_letter"
)

// DeadLetterFunc takes a message that was nacked more than MaxRetries times.
// topic is the topic it was published to and attempts how many times it was
// delivered. Returning an error keeps the message and redelivers it later, so
// a failing dead-letter destination is backpressure, never a loss.
type DeadLetterFunc func(ctx context.Context, topic string, msg *message.Message, attempts int) error

// Config configures a Broker. The zero value is usable: every zero field takes
// its default. Fields tagged koanf come from a configuration file; the others
// can only be set in code.
type Config struct {
	// Lanes is the number of per-key ordered lanes of each topic and consumer
	// group. Messages that share a key share a lane and are delivered one at a
	// time, the next only after the previous was acked; different lanes are
	// delivered concurrently. Default 64.
	Lanes int `koanf:"lanes"`
	// QueueSize bounds the messages a topic holds for one consumer group,
	// counting those delivered and not yet acked. Default 10000.
	QueueSize int `koanf:"queue_size"`
	// OnFull is block (default) or reject.
	OnFull OnFull `koanf:"on_full"`
	// MaxRetries is how many times a nacked message is redelivered before it
	// is dead-lettered. Default 5; a negative value retries without limit.
	MaxRetries int `koanf:"max_retries"`
	// RetryBackoff is the wait before the first redelivery; it doubles with
	// each further nack up to MaxRetryBackoff. Defaults 10ms and 1s.
	RetryBackoff    time.Duration `koanf:"retry_backoff"`
	MaxRetryBackoff time.Duration `koanf:"max_retry_backoff"`
	// DeadLetterTopic is the topic of this broker that takes dead-lettered
	// messages when DeadLetter is nil. Default "dead_letter".
	DeadLetterTopic string `koanf:"dead_letter_topic"`
	// ConsumerGroup is the group that Subscribe joins. Subscribers of one group
	// share its messages; every group gets every message published after the
	// group was created (by SubscribeInitialize or a first Subscribe). A topic
	// starts with one group that keeps what is published before anyone
	// subscribes: the first group to appear takes it over, backlog included,
	// unless someone used it as "" before. A message needs room in every group
	// of its topic, so a group that is created and never read fills up and
	// then holds back publishing (block) or fails it (reject).
	ConsumerGroup string `koanf:"consumer_group"`
	// PreserveContext delivers each message with the context it was published
	// with. Otherwise a delivered message's context is derived from the
	// subscription's and canceled once the message is acked or nacked.
	PreserveContext bool `koanf:"preserve_context"`

	// KeyFunc returns the ordering key of a message. Default: the KeyMetadata
	// metadata value. Messages with an empty key share one lane, so messages
	// published without keys keep their publish order.
	KeyFunc func(*message.Message) string `koanf:"-"`
	// DeadLetter, when set, replaces DeadLetterTopic.
	DeadLetter DeadLetterFunc `koanf:"-"`
}

func (c *Config) setDefaults() {
	if c.Lanes == 0 {
		c.Lanes = DefaultLanes
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.OnFull == "" {
		c.OnFull = Block
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = DefaultDeadLetterTopic
	}
	if c.KeyFunc == nil {
		c.KeyFunc = metadataKey
	}
}

// Validate reports every invalid field, joined, each a
// *transports.FieldError whose key is the field's koanf key: the bus names
// it by its full key (transports.<name>.lanes).
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, transports.FieldErrorf(key, format, args...))
	}
	if c.Lanes < 0 || c.Lanes > 1<<16 {
		add("lanes", "must be between 1 and 65536, got %d", c.Lanes)
	}
	if c.QueueSize < 0 {
		add("queue_size", "must be positive, got %d", c.QueueSize)
	}
	if c.OnFull != "" && c.OnFull != Block && c.OnFull != Reject {
		add("on_full", "must be %q or %q, got %q", Block, Reject, c.OnFull)
	}
	if c.RetryBackoff < 0 {
		add("retry_backoff", "must not be negative, got %s", c.RetryBackoff)
	}
	if c.MaxRetryBackoff < 0 {
		add("max_retry_backoff", "must not be negative, got %s", c.MaxRetryBackoff)
	}
	if c.RetryBackoff > 0 && c.MaxRetryBackoff > 0 && c.RetryBackoff > c.MaxRetryBackoff {
		add("retry_backoff", "must not exceed max_retry_backoff (%s), got %s", c.MaxRetryBackoff, c.RetryBackoff)
	}
	return errors.Join(errs...)
}

func metadataKey(m *message.Message) string { return m.Metadata.Get(KeyMetadata) }
