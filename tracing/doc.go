// Package tracing carries OpenTelemetry traces through switchyard and plain
// Watermill: it starts a span where a message is published and one where it
// is consumed, and carries the span context between them in the message's
// metadata as W3C trace context (traceparent, tracestate), across any
// transport that carries metadata. Package bus does not import
// OpenTelemetry: nothing is traced unless you add this package's pieces.
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
// the context given to bus.Publish or bus.PublishSync, and sees every retry
// and the transport chosen; Publisher adds the time spent getting into the
// bus (backpressure) and names the pipeline's span after the topic. The
// innermost producer span, which the transport carries, is the consumer
// span's parent.
//
// Spans carry the messaging semantic conventions (semconv v1.43.0):
// messaging.system (DefaultSystem unless WithSystem), messaging.operation.type
// (send, process) and .name (publish, send, process),
// messaging.destination.name (the topic), messaging.message.id (the UUID),
// messaging.message.body.size, messaging.destination.subscription.name (the
// handler's name, on consumer spans); and the bus's metadata:
// switchyard.event_type, switchyard.event_key, switchyard.transport. They
// are set only on spans that record (a sampler sees the name and kind
// only). A failure sets the status to Error, records the error and sets
// error.type.
//
// # Parents and links
//
// A producer span's parent is the span in the message's context, or else
// the span context already in its metadata (Inject, or an upstream hop). A
// consumer span's parent is the span context in the metadata, or else the
// span in the message's context: the messaging conventions allow a child
// when one message is pushed to a handler, and it makes one trace from
// publisher to consumer. WithLinkedConsume makes consumer spans link
// instead.
//
// Options choose the tracer provider (default: the global one) and the
// propagator (default: propagation.TraceContext, not the global one).
package tracing
