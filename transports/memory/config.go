package memory

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/internal/metakey"
	"github.com/switchyard-go/switchyard/internal/queue"
)

// OnFull says what Publish does when a queue has no room: Block or Reject.
type OnFull = queue.OnFull

const (
	// Block waits for room until the message context (or the context given to
	// PublishContext) ends: backpressure.
	Block = queue.Block
	// Reject fails at once with ErrQueueFull.
	Reject = queue.Reject
)

// KeyMetadata is the metadata key whose value picks a message's lane by
// default. It is the same key the bus writes as its event key.
const KeyMetadata = metakey.EventKey

// Metadata keys written on dead-lettered messages.
const (
	DeadLetterReasonKey   = queue.DeadLetterReasonKey
	DeadLetterTopicKey    = queue.DeadLetterTopicKey
	DeadLetterAttemptsKey = queue.DeadLetterAttemptsKey
)

// Defaults applied to zero-valued fields of Config.
const (
	DefaultLanes           = queue.DefaultLanes
	DefaultQueueSize       = queue.DefaultQueueSize
	DefaultMaxRetries      = queue.DefaultMaxRetries
	DefaultRetryBackoff    = queue.DefaultRetryBackoff
	DefaultMaxRetryBackoff = queue.DefaultMaxRetryBackoff
	DefaultDeadLetterTopic = queue.DefaultDeadLetterTopic
)

// DeadLetterFunc takes a message that was nacked more than MaxRetries times.
// topic is the topic it was published to and attempts how many times it was
// delivered. Returning an error keeps the message and redelivers it later, so
// a failing dead-letter destination is backpressure, never a loss.
type DeadLetterFunc = queue.DeadLetterFunc

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

// Validate reports every invalid field, joined, each a
// *transports.FieldError whose key is the field's koanf key: the bus names
// it by its full key (transports.<name>.lanes).
func (c *Config) Validate() error {
	qc := queue.Config(*c)
	return qc.Validate()
}
