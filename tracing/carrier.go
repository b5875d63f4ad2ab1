package tracing

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/propagation"
)

// MetadataCarrier lets a propagator read and write a message's metadata.
// Keys are used as the propagator gives them: the W3C keys are lower-case,
// as metadata keys conventionally are.
type MetadataCarrier message.Metadata

// Get returns the value of key, or "".
func (c MetadataCarrier) Get(key string) string { return c[key] }

// Set sets key to value.
func (c MetadataCarrier) Set(key, value string) { c[key] = value }

// Keys lists the keys of the metadata.
func (c MetadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes the span context of ctx into msg's metadata (traceparent,
// and tracestate when there is one, with the default propagator). A ctx
// without a valid span context writes nothing. Only WithPropagator matters
// among opts.
func Inject(ctx context.Context, msg *message.Message, opts ...Option) {
	inject(propagatorOf(opts), ctx, msg)
}

// Extract returns ctx carrying the span context that msg's metadata holds,
// as a remote parent for the spans started from it; ctx itself when the
// metadata holds none. Only WithPropagator matters among opts.
func Extract(ctx context.Context, msg *message.Message, opts ...Option) context.Context {
	return propagatorOf(opts).Extract(ctx, MetadataCarrier(msg.Metadata))
}

func propagatorOf(opts []Option) propagation.TextMapPropagator {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	if c.propagator == nil {
		return propagation.TraceContext{}
	}
	return c.propagator
}

func inject(p propagation.TextMapPropagator, ctx context.Context, msg *message.Message) {
	if msg.Metadata == nil {
		msg.Metadata = make(message.Metadata, 2)
	}
	p.Inject(ctx, MetadataCarrier(msg.Metadata))
}

var _ propagation.TextMapCarrier = MetadataCarrier(nil)
