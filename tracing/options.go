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

	tracer trace.Tracer
	// The start options of producer and consumer spans, made once.
	producer, consumer []trace.SpanStartOption
}

// WithTracerProvider starts spans with tp. Without it (or with nil) spans
// come from the global provider, otel.GetTracerProvider(), as it is when the
// constructor runs: set it with otel.SetTracerProvider before. (Until the
// program first sets it, the global provider is a no-op that forwards to the
// first provider set; a provider set after that one is not followed.)
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.provider = tp }
}

// WithPropagator writes and reads span contexts in message metadata with p.
// Without it (or with nil) it is propagation.TraceContext{}: the W3C
// traceparent and tracestate keys. The global propagator is not the
// default, because until an application sets it, it propagates nothing; pass
// otel.GetTextMapPropagator() to use it, or a composite with
// propagation.Baggage{} to carry baggage too.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.propagator = p }
}

// WithSystem sets the messaging.system attribute (default DefaultSystem):
// "redis", say, when a plain Watermill Redis Streams publisher is wrapped.
func WithSystem(name string) Option {
	return func(c *config) { c.system = name }
}

// WithLinkedConsume makes consumer spans start their own trace (or continue
// the consumer's ambient one, such as an HTTP server span) with a link to the
// producer's span, instead of being its child. It suits consumers that run
// long after the publish, or fan one message out to many handlers, where one
// trace per consumer reads better than one ever-growing trace.
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
