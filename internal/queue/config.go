package queue

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/internal/metakey"
	"github.com/switchyard-go/switchyard/transports"
)

// OnFull, DeadLetterFunc, Config and the constants are documented where
// the memory transport exports them.
type OnFull string

const (
	Block  OnFull = "block"
	Reject OnFull = "reject"
)

const (
	DeadLetterReasonKey   = "dead_letter_reason"
	DeadLetterTopicKey    = "dead_letter_topic"
	DeadLetterAttemptsKey = "dead_letter_attempts"
)

const (
	DefaultLanes           = 64
	DefaultQueueSize       = 10000
	DefaultMaxRetries      = 5
	DefaultRetryBackoff    = 10 * time.Millisecond
	DefaultMaxRetryBackoff = time.Second
	DefaultDeadLetterTopic = "dead_letter"
)

type DeadLetterFunc func(ctx context.Context, topic string, msg *message.Message, attempts int) error

// Config has the fields of memory.Config, which converts to it.
type Config struct {
	Lanes           int
	QueueSize       int
	OnFull          OnFull
	MaxRetries      int // negative: retry without limit
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	DeadLetterTopic string
	ConsumerGroup   string
	PreserveContext bool
	KeyFunc         func(*message.Message) string
	DeadLetter      DeadLetterFunc // when set, replaces DeadLetterTopic
}

func (c *Config) setDefaults() {
	c.Lanes = cmp.Or(c.Lanes, DefaultLanes)
	c.QueueSize = cmp.Or(c.QueueSize, DefaultQueueSize)
	c.OnFull = cmp.Or(c.OnFull, Block)
	c.MaxRetries = cmp.Or(c.MaxRetries, DefaultMaxRetries)
	c.RetryBackoff = cmp.Or(c.RetryBackoff, DefaultRetryBackoff)
	c.MaxRetryBackoff = cmp.Or(c.MaxRetryBackoff, DefaultMaxRetryBackoff)
	c.DeadLetterTopic = cmp.Or(c.DeadLetterTopic, DefaultDeadLetterTopic)
	if c.KeyFunc == nil {
		c.KeyFunc = func(m *message.Message) string { return m.Metadata.Get(metakey.EventKey) }
	}
}

// Validate is memory.Config's.
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
