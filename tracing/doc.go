// Package tracing carries OpenTelemetry traces through switchyard and plain
// Watermill: it starts a span where a message is published and one where it
// is consumed, and carries the span context between them in the message's
// metadata, as W3C trace context (the traceparent and tracestate keys), so
// that one trace spans publisher and consumer across any transport that
// carries metadata: Redis Streams, HTTP (as the CloudEvents traceparent and
// tracestate extensions), in-memory.
//
// Nothing is traced unless you add this package's pieces; package bus does
// not import OpenTelemetry, and a program that does not import this package
// does not build it.
//
//	tp := sdktrace.NewTracerProvider(…)
//	opts := []tracing.Option{tracing.WithTracerProvider(tp)}
//
//	b.Use(tracing.PublishMiddleware(opts...))                 // first: outermost
//	b.Handle("gateway", "events:chat", tracing.Handler(h, opts...))
//	pub := tracing.NewPublisher(b, opts...)                   // publish through pub
//
//	msg := bus.NewMessage("chat_message", "conv-1", payload)
//	msg.SetContext(ctx)                                       // the request's, with its span
//	err := pub.Publish("events:chat", msg)
//
// # Spans
//
// A trace through the bus is:
//
//	request (the application's span, in ctx)
//	└─ publish events:chat    PRODUCER  NewPublisher: the call to Publish
//	   └─ send events:chat    PRODUCER  PublishMiddleware: pipeline → transport
//	      └─ process events:chat  CONSUMER  Handler / ConsumeMiddleware
//	         └─ (the handler's own spans, from msg.Context())
//
// Each piece is optional. Publisher alone traces any Watermill publisher.
// PublishMiddleware alone traces the pipeline, as a child of the span in
// the context of the call to bus.Publish or bus.PublishSync (the bus keeps
// that context's values, not its cancellation, for an asynchronous Publish),
// and sees every retry and the transport chosen; Publisher adds the time
// spent getting into the bus (backpressure) and names the pipeline's span
// after the topic, which the bus's pipeline does not otherwise know. The
// innermost producer span is the one the transport carries, so it is the
// consumer span's parent.
//
// Spans carry the messaging semantic conventions (semconv v1.43.0):
// messaging.system (DefaultSystem unless WithSystem), messaging.operation.type
// (send, process) and .name (publish, send, process),
// messaging.destination.name (the topic), messaging.message.id (the UUID),
// messaging.message.body.size, messaging.destination.subscription.name (the
// handler's name, on consumer spans); and the bus's metadata:
// switchyard.event_type, switchyard.event_key, switchyard.transport. They
// are set once the span started, and only if it records, so an unsampled
// message costs none (a sampler sees the name and kind only). A failure
// sets the span's status to Error, records the error as an event, and sets
// error.type.
//
// # Parents and links
//
// A producer span's parent is the span in the message's context, or else
// the span context already in its metadata (Inject, or an upstream hop). A
// consumer span's parent is the span context in the metadata, or else the
// span in the message's context. The messaging conventions ask that a
// consumer span link to the producer's; they allow it to be its child when
// one message is pushed to a handler, which is what switchyard does, and the
// child makes the one trace from publisher to consumer that a trace viewer
// shows whole. WithLinkedConsume makes consumer spans link instead.
//
// # Configuration
//
// Options choose the tracer provider (the global one, otel.GetTracerProvider,
// unless WithTracerProvider) and the propagator (propagation.TraceContext
// unless WithPropagator; not the global one, which propagates nothing until
// it is set).
package tracing
