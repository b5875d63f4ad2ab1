package middleware

import (
	"cmp"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-go/switchyard/internal/metakey"
)

// Option sets what a configuration file cannot hold: how to read a message,
// a registerer, a logger. Each stage reads the options it has a use for and
// ignores the others.
type Option func(*options)

type options struct {
	key          func(*message.Message) string
	eventType    func(*message.Message) string
	transportKey string
	registerer   prometheus.Registerer
	logger       watermill.LoggerAdapter
	onFallback   func(m *message.Message, from, to, reason string, err error)
	now          func() time.Time
}

// buildOptions applies opts, then the defaults of what they leave unset:
// key reads a message's key unless WithKey.
func buildOptions(opts []Option, key func(*message.Message) string) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.key == nil {
		o.key = key
	}
	if o.eventType == nil {
		o.eventType = metadataReader(metakey.EventType)
	}
	if o.logger == nil {
		o.logger = watermill.NopLogger{}
	}
	if o.now == nil {
		o.now = time.Now
	}
	o.transportKey = cmp.Or(o.transportKey, metakey.Transport)
	return o
}

func metadataReader(key string) func(*message.Message) string {
	return func(m *message.Message) string { return m.Metadata.Get(key) }
}

// WithKey makes a stage read a message's key with key. Split routes by it
// and Fallback holds it in cooldown (default: the event_key metadata; events
// without one all take the path of the empty key, and are not held); Dedupe
// remembers it (default: the message's UUID; "" lets a message through
// unchecked).
func WithKey(key func(*message.Message) string) Option {
	return func(o *options) { o.key = key }
}

// WithEventType makes Split read the type that SplitConfig.EventTypes is
// matched against with eventType. Default: the event_type metadata.
func WithEventType(eventType func(*message.Message) string) Option {
	return func(o *options) { o.eventType = eventType }
}

// WithTransportKey names the metadata key that holds a message's transport,
// which Split writes and Fallback rewrites. Default "transport".
func WithTransportKey(key string) Option {
	return func(o *options) { o.transportKey = key }
}

// WithRegisterer registers a stage's metrics with r: Fallback's
// switchyard_fallbacks_total and switchyard_circuit_breaker_state, Dedupe's
// events_deduplicated_total, switchyard_dedupe_evictions_total and
// switchyard_dedupe_keys. Without it they are registered nowhere, never
// with the global registry. Wrap r with prometheus.WrapRegistererWith to
// tell two stages of one kind apart.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) { o.registerer = r }
}

// WithLogger gives Fallback a logger for its breakers' changes of state.
func WithLogger(l watermill.LoggerAdapter) Option {
	return func(o *options) { o.logger = l }
}

// WithOnFallback makes Fallback call f for each message that goes to the
// fallback, after the fallback publish, with its outcome.
func WithOnFallback(f func(m *message.Message, from, to, reason string, err error)) Option {
	return func(o *options) { o.onFallback = f }
}

// WithNow makes Dedupe tell the time with now. Default time.Now, which
// inside a testing/synctest bubble is the bubble's fake clock.
func WithNow(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}
