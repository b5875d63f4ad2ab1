package coalesce

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults applied to zero fields of Config; DefaultMaxKeys is also the
// default of the bus's coalescing.max_keys.
const (
	DefaultMaxKeys = 100000
	defaultTick    = time.Millisecond
)

// MaxWindow is the longest window: windows are kept in microseconds, in 31
// bits. Add cuts a longer one to it.
const MaxWindow = time.Duration(maxMicros) * time.Microsecond

// maxKeysLimit keeps slot indexes in the table's 24 bits.
const maxKeysLimit = indexMask - 1

// Config configures a Coalescer. The zero value is usable: every zero field
// takes its default.
type Config struct {
	// MaxKeys bounds the keys tracked at once, and so the memory used. A key
	// is tracked from its leading edge until a window of it ends with nothing
	// pending. Past the bound Add returns Overflow and takes nothing.
	// Default 100,000; at most 16,777,214.
	MaxKeys int `koanf:"max_keys"`
	// Tick is the resolution of window ends: a window ends on the first tick
	// (counted from New) at or after its deadline, so that the goroutine
	// that ends them wakes at most once a tick however many keys there are.
	// Default 1ms.
	Tick time.Duration `koanf:"tick"`
}

func (c *Config) setDefaults() {
	c.MaxKeys = cmp.Or(c.MaxKeys, DefaultMaxKeys)
	c.Tick = cmp.Or(c.Tick, defaultTick)
}

// Validate reports every invalid field, each error naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.MaxKeys < 0 || c.MaxKeys > maxKeysLimit {
		errs = append(errs, fmt.Errorf("coalesce: max_keys: must be between 1 and %d, got %d", maxKeysLimit, c.MaxKeys))
	}
	if c.Tick < 0 {
		errs = append(errs, fmt.Errorf("coalesce: tick: must not be negative, got %s", c.Tick))
	}
	return errors.Join(errs...)
}

// Option sets what a configuration file cannot hold on a Coalescer of T
// values.
type Option[T any] func(*Coalescer[T])

// WithMerge makes a value added to a window that already holds a pending
// one replace it with merge(pending, next) instead of next alone (latest
// wins). merge runs with a lock held: keep it short, and never call the
// Coalescer from it.
func WithMerge[T any](merge func(pending, next T) T) Option[T] {
	return func(c *Coalescer[T]) { c.merge = merge }
}

// MiddlewareOption sets what a configuration file cannot hold on a
// Middleware.
type MiddlewareOption func(*Middleware)

// WithRegisterer registers the middleware's metrics with r. Without it they
// are registered nowhere, never with the global registry.
func WithRegisterer(r prometheus.Registerer) MiddlewareOption {
	return func(mw *Middleware) { mw.registerer = r }
}

// WithEventType makes the middleware read a message's event type with
// eventType. Default: its event_type metadata value.
func WithEventType(eventType func(*message.Message) string) MiddlewareOption {
	return func(mw *Middleware) { mw.eventType = eventType }
}

// WithKey makes the middleware read the key a message is coalesced under,
// among the messages of its event type, with key; "" lets it pass through.
// Default: the topic the handler subscribed to
// (message.SubscribeTopicFromCtx) and the event_key metadata value, or ""
// if that value is empty.
func WithKey(key func(*message.Message) string) MiddlewareOption {
	return func(mw *Middleware) { mw.key = key }
}

// WithSuperseded makes the middleware call superseded with each message
// replaced by a later one of its key before it was sent: it will never be
// published. It runs with a lock held and must not block.
func WithSuperseded(superseded func(*message.Message)) MiddlewareOption {
	return func(mw *Middleware) { mw.superseded = superseded }
}
