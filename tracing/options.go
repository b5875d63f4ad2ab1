package tracing

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of every span this package starts.
const ScopeName = "github.com/switchyard-go/switchyard/tracing"

// DefaultSystem is the messaging.system of the spans unless WithSystem
// names another.
const DefaultSystem = "switchyard"

// Option sets what the constructors of this package cannot read from a
// configuration file: the tracer provider and the propagator.
type Option func(*config)

type config struct {
	provider    trace.TracerProvider
	propagator  propagation.TextMapPropagator
	system      string
	linkConsume bool

	tracer             trace.Tracer
	producer, consumer []trace.SpanStartOption
}

// WithTracerProvider starts spans with tp. Without it (or with nil) spans
// come from the global provider, otel.GetTracerProvider(), as it is when the
// constructor runs: set it with otel.SetTracerProvider before.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.provider = tp }
}

// WithPropagator writes and reads span contexts in message metadata with p.
// Without it (or with nil) it is propagation.TraceContext{}: the W3C
// traceparent and tracestate keys, not the global propagator, which
// propagates nothing until it is set. Pass a composite with
// propagation.Baggage{} to carry baggage too.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.propagator = p }
}

// WithSystem sets the messaging.system attribute (default DefaultSystem):
// "redis", say, when a plain Watermill Redis Streams publisher is wrapped.
func WithSystem(name string) Option {
	return func(c *config) { c.system = name }
}

// WithLinkedConsume makes consumer spans link to the producer's span
// instead of being its child, in their own trace or the consumer's ambient
// one: for consumers that run long after the publish, or fan one message
// out to many handlers.
func WithLinkedConsume() Option {
	return func(c *config) { c.linkConsume = true }
}

func newConfig(opts []Option) *config {
	c := &config{system: DefaultSystem}
	for _, opt := range opts {
		opt(c)
	}
	if c.provider == nil {
		c.provider = otel.GetTracerProvider()
	}
	if c.propagator == nil {
		c.propagator = propagation.TraceContext{}
	}
	c.tracer = c.provider.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))
	c.producer = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	c.consumer = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	return c
}
