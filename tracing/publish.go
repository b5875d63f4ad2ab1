package tracing

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/internal/metakey"
)

// Publisher is a message.Publisher that traces another: each message gets a
// PRODUCER span, "publish <topic>", a child of the span in the message's
// context (msg.Context()), whose context it injects into the metadata
// before the wrapped publisher takes the message. Wrap a *bus.Bus with it
// to trace where the application publishes, or any Watermill publisher.
type Publisher struct {
	pub message.Publisher
	cfg *config
}

// NewPublisher returns a Publisher that traces pub.
func NewPublisher(pub message.Publisher, opts ...Option) *Publisher {
	return &Publisher{pub: pub, cfg: newConfig(opts)}
}

// Publish starts a span per message, publishes them all with one call to
// the wrapped publisher and ends every span with its error. Each message's
// context is left carrying its span, for what runs inside the wrapped
// publisher (a bus's PublishMiddleware) to nest under it.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	var one [1]trace.Span
	spans := one[:0]
	if len(msgs) > 1 {
		spans = make([]trace.Span, 0, len(msgs))
	}
	for _, m := range msgs {
		ctx, span := p.cfg.startProducer(m.Context(), m, opPublish, topic)
		m.SetContext(context.WithValue(ctx, destinationKey{}, &destination{span: span.SpanContext(), topic: topic}))
		spans = append(spans, span)
	}
	done := false
	defer abandonUnless(&done, spans...)
	err := p.pub.Publish(topic, msgs...)
	done = true
	for _, s := range spans {
		end(s, err)
	}
	return err
}

// Close closes the wrapped publisher.
func (p *Publisher) Close() error { return p.pub.Close() }

// PublishMiddleware returns the middleware that traces a publish pipeline
// (add it with bus.Use, first, so that it is the outermost of yours and times
// the others): each message that goes through gets a PRODUCER span, "send
// <topic>", which records the pipeline's error and the transport the
// message left on (switchyard.transport), and whose context it injects into
// the metadata, for the transport to carry to the consumers. Each attempt
// of a retried message gets a span of its own, under the same parent.
//
// The pipeline does not know the topic: the span is named after it when the
// message came through a Publisher, and is "send" otherwise.
func PublishMiddleware(opts ...Option) message.HandlerMiddleware {
	c := newConfig(opts)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := msg.Context()
			ctx, span := c.startProducer(ctx, msg, opSend, destinationOf(ctx))
			msg.SetContext(ctx)
			done := false
			defer abandonUnless(&done, span)
			out, err := h(msg)
			done = true
			if t := msg.Metadata[metakey.Transport]; t != "" {
				span.SetAttributes(attrTransport.String(t))
			}
			end(span, err)
			return out, err
		}
	}
}

// destination is the topic a Publisher published a message to, for a
// PublishMiddleware to name its span after.
type destination struct {
	span  trace.SpanContext // the Publisher's span
	topic string
}

type destinationKey struct{}

// destinationOf returns the topic a Publisher left in ctx, if the span in
// ctx is still that Publisher's.
func destinationOf(ctx context.Context) string {
	d, ok := ctx.Value(destinationKey{}).(*destination)
	if !ok || !d.span.Equal(trace.SpanContextFromContext(ctx)) {
		return ""
	}
	return d.topic
}

var _ message.Publisher = (*Publisher)(nil)
