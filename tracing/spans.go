package tracing

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/internal/metakey"
)

// Attributes of switchyard's own, from the metadata the bus sets.
const (
	attrEventType = attribute.Key("switchyard.event_type")
	attrEventKey  = attribute.Key("switchyard.event_key")
	attrTransport = attribute.Key("switchyard.transport") // the route stage's choice
)

// The messaging.operation.name of each span.
const (
	opPublish = "publish" // the application's Publish (Publisher)
	opSend    = "send"    // the publish pipeline, ending in a transport (PublishMiddleware)
	opProcess = "process" // a handler (ConsumeMiddleware, Handler)
)

// maxAttrs is the most attributes messageAttributes returns.
const maxAttrs = 8

// messageAttributes are the span attributes of an operation on msg.
func (c *config) messageAttributes(buf []attribute.KeyValue, opType attribute.KeyValue, op, topic string, msg *message.Message) []attribute.KeyValue {
	attrs := append(buf[:0],
		semconv.MessagingSystemKey.String(c.system),
		opType,
		semconv.MessagingOperationName(op),
		semconv.MessagingMessageBodySize(len(msg.Payload)),
	)
	if topic != "" {
		attrs = append(attrs, semconv.MessagingDestinationName(topic))
	}
	if msg.UUID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(msg.UUID))
	}
	if v := msg.Metadata[metakey.EventType]; v != "" {
		attrs = append(attrs, attrEventType.String(v))
	}
	if v := msg.Metadata[metakey.EventKey]; v != "" {
		attrs = append(attrs, attrEventKey.String(v))
	}
	return attrs
}

func spanName(op, topic string) string {
	if topic == "" {
		return op
	}
	return op + " " + topic
}

// startProducer starts a PRODUCER span for msg, a child of ctx's span or
// else of the metadata's, and injects its context into the metadata.
func (c *config) startProducer(ctx context.Context, msg *message.Message, op, topic string) (context.Context, trace.Span) {
	parent := ctx
	if !trace.SpanContextFromContext(ctx).IsValid() {
		parent = c.propagator.Extract(ctx, propagation.MapCarrier(msg.Metadata))
	}
	ctx, span := c.tracer.Start(parent, spanName(op, topic), c.producer...)
	if span.IsRecording() {
		var buf [maxAttrs]attribute.KeyValue
		span.SetAttributes(c.messageAttributes(buf[:], semconv.MessagingOperationTypeSend, op, topic, msg)...)
	}
	inject(c.propagator, ctx, msg)
	return ctx, span
}

// startConsumer starts a CONSUMER span for msg: a child of the metadata's
// span context, or else of msg's context's span; WithLinkedConsume makes it
// a child of the latter that links to the former.
func (c *config) startConsumer(msg *message.Message) (context.Context, trace.Span) {
	ctx := msg.Context()
	topic := message.SubscribeTopicFromCtx(ctx)
	parent := c.propagator.Extract(ctx, propagation.MapCarrier(msg.Metadata))
	opts := c.consumer
	if c.linkConsume {
		if remote := trace.SpanContextFromContext(parent); remote.IsValid() {
			opts = append(opts[:len(opts):len(opts)], trace.WithLinks(trace.Link{SpanContext: remote}))
		}
		// Keep what else the propagator extracted (baggage), with the
		// consumer's own span as the parent.
		parent = trace.ContextWithSpanContext(parent, trace.SpanContextFromContext(ctx))
	}
	ctx, span := c.tracer.Start(parent, spanName(opProcess, topic), opts...)
	if span.IsRecording() {
		var buf [maxAttrs + 1]attribute.KeyValue
		attrs := c.messageAttributes(buf[:], semconv.MessagingOperationTypeProcess, opProcess, topic, msg)
		if h := message.HandlerNameFromCtx(msg.Context()); h != "" {
			attrs = append(attrs, semconv.MessagingDestinationSubscriptionName(h))
		}
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// end records err, if any, and ends span.
func end(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(semconv.ErrorType(err))
	}
	span.End()
}

// abandonUnless ends spans as failed unless the call they cover is done: it
// panicked (the panic goes on, untouched) or called runtime.Goexit.
func abandonUnless(done *bool, spans ...trace.Span) {
	if *done {
		return
	}
	for _, span := range spans {
		span.SetStatus(codes.Error, "did not return: panic or Goexit")
		span.SetAttributes(semconv.ErrorTypeKey.String("panic"))
		span.End()
	}
}
