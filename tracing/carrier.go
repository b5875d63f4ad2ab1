package tracing

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/propagation"
)

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
	return propagatorOf(opts).Extract(ctx, propagation.MapCarrier(msg.Metadata))
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
	p.Inject(ctx, propagation.MapCarrier(msg.Metadata))
}
