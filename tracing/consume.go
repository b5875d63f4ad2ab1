package tracing

import (
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"
)

// ConsumeMiddleware returns the middleware that traces a Watermill handler:
// each message gets a CONSUMER span, "process <topic>", a child of the
// producer's span whose context the metadata carries (or a link to it,
// WithLinkedConsume), that records the handler's error. The message's
// context carries the span while the handler runs, and so do the messages
// the handler produces that have no span of their own.
func ConsumeMiddleware(opts ...Option) message.HandlerMiddleware {
	c := newConfig(opts)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx, span := c.startConsumer(msg)
			msg.SetContext(ctx)
			done := false
			defer abandonUnless(&done, span)
			out, err := h(msg)
			done = true
			for _, m := range out {
				if !trace.SpanContextFromContext(m.Context()).IsValid() {
					m.SetContext(trace.ContextWithSpan(m.Context(), span))
				}
			}
			end(span, err)
			return out, err
		}
	}
}

// Handler is ConsumeMiddleware for a handler that publishes nothing, the
// kind bus.Handle takes:
//
//	b.Handle("gateway", "events:chat", tracing.Handler(h))
func Handler(h message.NoPublishHandlerFunc, opts ...Option) message.NoPublishHandlerFunc {
	mw := ConsumeMiddleware(opts...)(func(msg *message.Message) ([]*message.Message, error) { return nil, h(msg) })
	return func(msg *message.Message) error {
		_, err := mw(msg)
		return err
	}
}
