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
// the wrapped publisher and ends the spans with its error: when a batch
// fails, every message's span records the error. Each message's context is
// left carrying its span, so that a PublishMiddleware in a bus's pipeline,
// or the wrapped publisher's own instrumentation, nests under it.
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
	defer func() {
		if !done {
			for _, s := range spans {
				abandon(s)
			}
		}
	}()
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
// the metadata, so that the transport carries it to the consumers.
//
// The span's parent is the span in the message's context: a Publisher's,
// or the one in the context of the application's call to bus.Publish,
// whose values the bus keeps; failing that, the one the metadata holds.
// Every attempt of a message the pipeline retries gets a span of its own,
// under the same parent.
//
// The bus does not tell its pipeline the topic a message is published to;
// the span is named after it when the message came through a Publisher, and
// is "send" otherwise.
func PublishMiddleware(opts ...Option) message.HandlerMiddleware {
	c := newConfig(opts)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := msg.Context()
			ctx, span := c.startProducer(ctx, msg, opSend, destinationOf(ctx))
			msg.SetContext(ctx)
			done := false
			defer func() {
				if !done {
					abandon(span)
				}
			}()
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

// destination is the topic a Publisher published a message to, kept in the
// context it gives the message, so that a PublishMiddleware of the bus's
// pipeline can name its span after it.
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
