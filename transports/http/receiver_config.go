package httptransport

import (
	"cmp"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Metadata keys written on the messages moved to the dead-letter topic: the
// same as the memory transport's.
const (
	DeadLetterReasonKey   = "dead_letter_reason"
	DeadLetterTopicKey    = "dead_letter_topic"
	DeadLetterAttemptsKey = "dead_letter_attempts"
)

// ReceiverConfig configures a Receiver; the zero value of each field takes
// its default.
type ReceiverConfig struct {
	// Topic, when set, is the topic of every request. Otherwise the topic
	// is the path value named PathValue of the pattern the Receiver is
	// mounted on: mux.Handle("POST /events/{topic}", receiver).
	Topic     string `koanf:"topic"`
	PathValue string `koanf:"path_value"`
	// MaxBodyBytes bounds a request body; a longer one is answered 413.
	// Default 1 MiB.
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// HandlerTimeout bounds how long a request waits for a subscription to
	// take its message and ack or nack it; then it is answered 503 and the
	// message's context is canceled. Keep it below the senders' timeout.
	// Default 1s.
	HandlerTimeout time.Duration `koanf:"handler_timeout"`
	// RetryAfter is sent, in whole seconds rounded up, with every 503.
	// Default 1s; negative: no Retry-After header.
	RetryAfter time.Duration `koanf:"retry_after"`
	// BearerToken, when set, is required as "Authorization: Bearer <token>";
	// 401 otherwise.
	BearerToken string `koanf:"bearer_token" redact:"secret"`
	// HMACSecret, when set, requires a valid Switchyard-Signature (see the
	// Publisher's hmac_secret) made within SignatureTolerance of now, for
	// the topic the request is delivered to (its Switchyard-Topic, signed,
	// must be that topic); 401 otherwise. A signed request can be replayed,
	// to the same topic, within SignatureTolerance: consumers dedupe by
	// UUID.
	HMACSecret         string        `koanf:"hmac_secret" redact:"secret"`
	SignatureTolerance time.Duration `koanf:"signature_tolerance"`
	// RequireID answers 400 to a raw request without Switchyard-Id. Such a
	// request gets a new UUID at each attempt, so a sender's retries of it
	// cannot be deduplicated; CloudEvents requests always carry their id.
	// Default false, for senders that cannot set the header.
	RequireID bool `koanf:"require_id"`
	// QueueSize, when positive, makes the Receiver answer 202 Accepted as
	// soon as a message is in its topic's in-memory queue of this size, and
	// deliver it afterwards, one at a time and in order, again after each
	// nack or handler timeout (see MaxRetries), until acked. A full queue is
	// answered 503. Close delivers what is queued within DrainTimeout; what
	// is left then, or if the process dies, is lost although its senders
	// were told 202: use it only when senders cannot wait for handlers. Only
	// topics subscribed to, or initialized with SubscribeInitialize, are
	// queued. Default 0: every request waits for its message's ack or nack.
	QueueSize int `koanf:"queue_size"`
	// In queue mode, a message that was nacked or whose handler timed out
	// is delivered again after RetryBackoff, then after twice as long at
	// each further failure, up to MaxRetryBackoff. Once MaxRetries
	// redeliveries failed too, it leaves its topic for the dead-letter
	// topic (or DeadLetter), so that it never holds back the messages
	// behind it. Defaults 5, 100ms and 10s; MaxRetries negative: no
	// redelivery before dead-lettering.
	MaxRetries      int           `koanf:"max_retries"`
	RetryBackoff    time.Duration `koanf:"retry_backoff"`
	MaxRetryBackoff time.Duration `koanf:"max_retry_backoff"`
	// DeadLetterTopic, in queue mode, is the topic of this Receiver that
	// takes the messages that failed every delivery, with the
	// DeadLetter*Key metadata added; subscribe to it to see them. Its queue
	// is bounded by QueueSize too: while it is full, a failed message stays
	// at the head of its own topic, tried again every MaxRetryBackoff. A
	// message of the dead-letter topic itself that fails every delivery
	// stays at its head likewise. Default "dead_letter".
	DeadLetterTopic string `koanf:"dead_letter_topic"`
	// DeadLetter, when set, replaces DeadLetterTopic: it takes the messages
	// that failed every delivery, and may publish them elsewhere, store
	// them, count them. It runs on the topic's delivery goroutine, so the
	// topic waits for it; msg's context ends when the Receiver closes. A nil
	// error takes the message out of the queue; an error keeps it at the
	// head of its topic, tried again every MaxRetryBackoff.
	DeadLetter func(topic string, msg *message.Message) error `koanf:"-"`
	// DrainTimeout bounds how long Close, in queue mode, goes on delivering
	// the queued messages to the subscriptions of their topics, once it
	// stopped taking requests. Those still queued then are counted in
	// switchyard_http_undelivered_total and in Close's error. Default 5s.
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

// Receiver is an http.Handler that turns each request into a message and a
// message.Subscriber that hands those messages out. Mount it in your own
// server; Subscribe to the topics it should take. Without a subscription to
// its topic a request is answered 503, so the sender keeps the event and
// retries.
