package httptransport

import (
	"cmp"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Metadata keys added to the messages moved to the dead-letter topic, as
// the memory transport's.
const (
	DeadLetterReasonKey   = "dead_letter_reason"
	DeadLetterTopicKey    = "dead_letter_topic"
	DeadLetterAttemptsKey = "dead_letter_attempts"
)

// ReceiverConfig configures a Receiver; the zero value of each field takes
// its default. docs/http.md tells each field in full.
type ReceiverConfig struct {
	// Topic, when set, is the topic of every request; otherwise it is the
	// path value PathValue (default "topic") of the pattern the Receiver is
	// mounted on: mux.Handle("POST /events/{topic}", receiver).
	Topic     string `koanf:"topic"`
	PathValue string `koanf:"path_value"`
	// MaxBodyBytes bounds a request body (413). Default 1 MiB.
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// HandlerTimeout bounds how long a request waits for a subscription to
	// take its message and ack or nack it; then 503, and the message's
	// context is canceled. Default 1s.
	HandlerTimeout time.Duration `koanf:"handler_timeout"`
	// RetryAfter goes, in whole seconds rounded up, with every 503. Default
	// 1s; negative: none.
	RetryAfter time.Duration `koanf:"retry_after"`
	// BearerToken, when set, is required as "Authorization: Bearer <token>".
	BearerToken string `koanf:"bearer_token" redact:"secret"`
	// HMACSecret, when set, requires a Switchyard-Signature made within
	// SignatureTolerance (default 5m) for the topic the request is
	// delivered to.
	HMACSecret         string        `koanf:"hmac_secret" redact:"secret"`
	SignatureTolerance time.Duration `koanf:"signature_tolerance"`
	// RequireID answers 400 to a raw request without Switchyard-Id, whose
	// retries could not be deduplicated.
	RequireID bool `koanf:"require_id"`
	// QueueSize, when positive, makes the Receiver answer 202 as soon as a
	// message is in its topic's in-memory queue of this size (503 when
	// full) and deliver it afterwards, in order, until acked; what is
	// queued is lost if the process dies. Default 0: every request waits
	// for its message's ack or nack.
	QueueSize int `koanf:"queue_size"`
	// In queue mode a failed delivery is tried again after RetryBackoff,
	// doubling up to MaxRetryBackoff; after MaxRetries redeliveries the
	// message goes to DeadLetterTopic (or DeadLetter). Defaults 5, 100ms
	// and 10s; MaxRetries negative: none.
	MaxRetries      int           `koanf:"max_retries"`
	RetryBackoff    time.Duration `koanf:"retry_backoff"`
	MaxRetryBackoff time.Duration `koanf:"max_retry_backoff"`
	// DeadLetterTopic is the Receiver's own topic that takes, with the
	// DeadLetter*Key metadata, the messages that failed every delivery.
	// Default "dead_letter".
	DeadLetterTopic string `koanf:"dead_letter_topic"`
	// DeadLetter, when set, takes those messages instead, on the topic's
	// delivery goroutine; an error keeps the message at the head of its
	// topic, tried again every MaxRetryBackoff.
	DeadLetter func(topic string, msg *message.Message) error `koanf:"-"`
	// DrainTimeout bounds how long Close goes on delivering what is
	// queued. Default 5s.
	DrainTimeout time.Duration `koanf:"drain_timeout"`
}

func (c *ReceiverConfig) setDefaults() {
	c.PathValue = cmp.Or(c.PathValue, "topic")
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, 1<<20)
	c.HandlerTimeout = cmp.Or(c.HandlerTimeout, time.Second)
	c.RetryAfter = cmp.Or(c.RetryAfter, time.Second)
	c.SignatureTolerance = cmp.Or(c.SignatureTolerance, 5*time.Minute)
	c.MaxRetries = cmp.Or(c.MaxRetries, 5)
	c.RetryBackoff = cmp.Or(c.RetryBackoff, 100*time.Millisecond)
	c.MaxRetryBackoff = cmp.Or(c.MaxRetryBackoff, 10*time.Second)
	c.DeadLetterTopic = cmp.Or(c.DeadLetterTopic, "dead_letter")
	c.DrainTimeout = cmp.Or(c.DrainTimeout, 5*time.Second)
}

// Validate reports every invalid field, each error naming its key.
func (c *ReceiverConfig) Validate() error {
	var errs []error
	nonNegative(&errs, "max_body_bytes", c.MaxBodyBytes)
	nonNegative(&errs, "handler_timeout", c.HandlerTimeout)
	nonNegative(&errs, "signature_tolerance", c.SignatureTolerance)
	nonNegative(&errs, "queue_size", c.QueueSize)
	nonNegative(&errs, "retry_backoff", c.RetryBackoff)
	nonNegative(&errs, "max_retry_backoff", c.MaxRetryBackoff)
	nonNegative(&errs, "drain_timeout", c.DrainTimeout)
	return errors.Join(errs...)
}
