package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/tracing"
)

func newEvent(uuid string) *message.Message {
	m := message.NewMessage(uuid, []byte("hello"))
	m.Metadata.Set("event_type", "chat_message")
	m.Metadata.Set("event_key", "conv-1")
	return m
}

// A Publisher's span travels in the metadata; the consumer's span is its
// child, in the same trace, and the handler's own spans nest under it.
func TestPublisherToHandler(t *testing.T) {
	sr, tp := recorder()
	opt := tracing.WithTracerProvider(tp)
	tracer := tp.Tracer("app")

	sink := &capture{}
	pub := tracing.NewPublisher(sink, opt)
	ctx, root := tracer.Start(context.Background(), "request")
	msg := newEvent("uuid-1")
	msg.SetContext(ctx)
	require.NoError(t, pub.Publish("events:chat", msg))
	root.End()

	require.Len(t, sink.msgs, 1)
	assert.NotEmpty(t, sink.msgs[0].Metadata.Get("traceparent"), "the transport gets the span context")
	h := tracing.Handler(func(m *message.Message) error {
		_, child := tracer.Start(m.Context(), "handler work")
		child.End()
		return nil
	}, opt)
	require.NoError(t, h(deliver(sink.msgs[0])))

	spans := sr.Ended()
	request, publish := named(t, spans, "request"), named(t, spans, "publish events:chat")
	process, work := named(t, spans, "process"), named(t, spans, "handler work")
	for _, s := range []sdktrace.ReadOnlySpan{publish, process, work} {
		assert.Equal(t, request.SpanContext().TraceID(), s.SpanContext().TraceID(), "%s: one trace", s.Name())
	}
	assert.Equal(t, request.SpanContext().SpanID(), publish.Parent().SpanID())
	assert.Equal(t, publish.SpanContext().SpanID(), process.Parent().SpanID())
	assert.True(t, process.Parent().IsRemote(), "the consumer's parent came through the metadata")
	assert.Equal(t, process.SpanContext().SpanID(), work.Parent().SpanID())
	assert.Equal(t, trace.SpanKindProducer, publish.SpanKind())
	assert.Equal(t, trace.SpanKindConsumer, process.SpanKind())
	assert.Equal(t, tracing.ScopeName, publish.InstrumentationScope().Name)

	assert.Equal(t, map[string]string{
		"messaging.system":            "switchyard",
		"messaging.operation.type":    "send",
		"messaging.operation.name":    "publish",
		"messaging.destination.name":  "events:chat",
		"messaging.message.id":        "uuid-1",
		"messaging.message.body.size": "5",
		"switchyard.event_type":       "chat_message",
		"switchyard.event_key":        "conv-1",
	}, stringKeys(attrs(publish)))
	assert.Equal(t, map[string]string{
		"messaging.system":            "switchyard",
		"messaging.operation.type":    "process",
		"messaging.operation.name":    "process",
		"messaging.message.id":        "uuid-1",
		"messaging.message.body.size": "5",
		"switchyard.event_type":       "chat_message",
		"switchyard.event_key":        "conv-1",
	}, stringKeys(attrs(process)))
}

func stringKeys[K ~string, V any](m map[K]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}

// The pipeline span's parent is the span of the message's context, else the
// one in its metadata, else none; its own context replaces the metadata's,
// so the transport carries it.
func TestPublishMiddlewareParent(t *testing.T) {
	sr, tp := recorder()
	opt := tracing.WithTracerProvider(tp)
	tracer := tp.Tracer("app")

	ctxParent, ctxSpan := tracer.Start(context.Background(), "caller")
	ctxSpan.End()
	mdCtx, mdSpan := tracer.Start(context.Background(), "injected")
	mdSpan.End()

	for _, tc := range []struct {
		name       string
		ctx        context.Context
		inject     context.Context
		wantParent trace.SpanContext
	}{
		{"from the context", ctxParent, nil, ctxSpan.SpanContext()},
		{"the context wins over the metadata", ctxParent, mdCtx, ctxSpan.SpanContext()},
		{"from the metadata", context.Background(), mdCtx, mdSpan.SpanContext()},
		{"a root", context.Background(), nil, trace.SpanContext{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr.Reset()
			msg := newEvent("uuid-2")
			msg.SetContext(tc.ctx)
			if tc.inject != nil {
				tracing.Inject(tc.inject, msg)
			}
			var inPipeline trace.SpanContext
			h := tracing.PublishMiddleware(opt)(func(m *message.Message) ([]*message.Message, error) {
				inPipeline = trace.SpanContextFromContext(m.Context())
				m.Metadata.Set("transport", "redis") // as the route stage does
				return nil, nil
			})
			_, err := h(msg)
			require.NoError(t, err)

			send := named(t, sr.Ended(), "send")
			assert.Equal(t, trace.SpanKindProducer, send.SpanKind())
			assert.Equal(t, tc.wantParent.SpanID(), send.Parent().SpanID())
			if tc.wantParent.IsValid() {
				assert.Equal(t, tc.wantParent.TraceID(), send.SpanContext().TraceID())
			}
			assert.Equal(t, send.SpanContext().SpanID(), inPipeline.SpanID(), "later stages see the span")
			got := trace.SpanContextFromContext(tracing.Extract(context.Background(), msg))
			assert.Equal(t, send.SpanContext().SpanID(), got.SpanID(), "the metadata carries the pipeline's span")
			assert.Equal(t, "redis", attrs(send)["switchyard.transport"])
			assert.Equal(t, "send", attrs(send)["messaging.operation.name"])
		})
	}
}

// Through a Publisher and then a pipeline, as with a bus: the pipeline span
// is the publish span's child, named after the topic, and is the one the
// metadata carries on.
func TestPublisherThenPipeline(t *testing.T) {
	sr, tp := recorder()
	opt := tracing.WithTracerProvider(tp)
	var sent *message.Message
	pipeline := tracing.PublishMiddleware(opt)(func(m *message.Message) ([]*message.Message, error) {
		sent = deliver(m)
		return nil, nil
	})
	// A stand-in for the bus: its pipeline gets a copy of the message with
	// the caller's context, later.
	var accepted []*message.Message
	pub := tracing.NewPublisher(publishFunc(func(_ string, msgs ...*message.Message) error {
		for _, m := range msgs {
			c := deliver(m)
			c.SetContext(m.Context())
			accepted = append(accepted, c)
		}
		return nil
	}), opt)
	require.NoError(t, pub.Publish("events:chat", newEvent("uuid-3")))
	_, err := pipeline(accepted[0])
	require.NoError(t, err)

	spans := sr.Ended()
	publish, send := named(t, spans, "publish events:chat"), named(t, spans, "send events:chat")
	assert.Equal(t, publish.SpanContext().SpanID(), send.Parent().SpanID())
	assert.Equal(t, publish.SpanContext().TraceID(), send.SpanContext().TraceID())
	assert.Equal(t, "events:chat", attrs(send)["messaging.destination.name"])
	got := trace.SpanContextFromContext(tracing.Extract(context.Background(), sent))
	assert.Equal(t, send.SpanContext().SpanID(), got.SpanID())

	// A span started under the publish span is not the publish span: a
	// pipeline under it does not take the publisher's topic.
	sr.Reset()
	ctx, other := tp.Tracer("app").Start(accepted[0].Context(), "other")
	other.End()
	m := newEvent("uuid-4")
	m.SetContext(ctx)
	_, err = pipeline(m)
	require.NoError(t, err)
	named(t, sr.Ended(), "send")
}

type publishFunc func(topic string, msgs ...*message.Message) error

func (f publishFunc) Publish(topic string, msgs ...*message.Message) error { return f(topic, msgs...) }
func (publishFunc) Close() error                                           { return nil }

// Every piece records the error of what it wraps, and ends its span when
// what it wraps panics, which it lets go on.
func TestErrorsRecorded(t *testing.T) {
	sr, tp := recorder()
	opt := tracing.WithTracerProvider(tp)
	errHub := errors.New("hub: unavailable")
	wrapped := fmt.Errorf("bus: publish to %q: %w", "events:chat", &net503{})

	for _, tc := range []struct {
		name    string
		span    string
		run     func(fail func() error) error
		fail    func() error
		want    error
		errType string
	}{
		{
			name: "Publisher", span: "publish events:chat",
			run: func(fail func() error) error {
				return tracing.NewPublisher(publishFunc(func(string, ...*message.Message) error { return fail() }), opt).
					Publish("events:chat", newEvent("u"))
			},
			fail: func() error { return errHub }, want: errHub, errType: "*errors.errorString",
		},
		{
			name: "PublishMiddleware", span: "send",
			run: func(fail func() error) error {
				_, err := tracing.PublishMiddleware(opt)(func(*message.Message) ([]*message.Message, error) { return nil, fail() })(newEvent("u"))
				return err
			},
			fail: func() error { return wrapped }, want: wrapped, errType: "*tracing_test.net503",
		},
		{
			name: "ConsumeMiddleware", span: "process",
			run: func(fail func() error) error {
				_, err := tracing.ConsumeMiddleware(opt)(func(*message.Message) ([]*message.Message, error) { return nil, fail() })(newEvent("u"))
				return err
			},
			fail: func() error { return errHub }, want: errHub, errType: "*errors.errorString",
		},
		{
			name: "Handler", span: "process",
			run: func(fail func() error) error {
				return tracing.Handler(func(*message.Message) error { return fail() }, opt)(newEvent("u"))
			},
			fail: func() error { return errHub }, want: errHub, errType: "*errors.errorString",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr.Reset()
			require.ErrorIs(t, tc.run(tc.fail), tc.want)
			s := named(t, sr.Ended(), tc.span)
			assert.Equal(t, codes.Error, s.Status().Code)
			assert.Equal(t, tc.want.Error(), s.Status().Description)
			assert.Equal(t, tc.errType, attrs(s)["error.type"])
			require.Len(t, s.Events(), 1)
			assert.Equal(t, "exception", s.Events()[0].Name)

			sr.Reset()
			assert.PanicsWithValue(t, "boom", func() { _ = tc.run(func() error { panic("boom") }) })
			s = named(t, sr.Ended(), tc.span)
			assert.Equal(t, codes.Error, s.Status().Code)
			assert.Equal(t, "panic", attrs(s)["error.type"])

			sr.Reset()
			require.NoError(t, tc.run(func() error { return nil }))
			s = named(t, sr.Ended(), tc.span)
			assert.Equal(t, codes.Unset, s.Status().Code)
			assert.NotContains(t, attrs(s), "error.type")
		})
	}
}

type net503 struct{}

func (*net503) Error() string { return "503" }

// A handler's produced messages carry the consumer span in their contexts,
// unless they have a span of their own.
func TestConsumeMiddlewareProduced(t *testing.T) {
	sr, tp := recorder()
	opt := tracing.WithTracerProvider(tp)
	_, own := tp.Tracer("app").Start(context.Background(), "own")
	own.End()

	src := deliver(injected(t, tp))
	var produced []*message.Message
	h := tracing.ConsumeMiddleware(opt)(func(m *message.Message) ([]*message.Message, error) {
		withOwn := message.NewMessage("b", nil)
		withOwn.SetContext(trace.ContextWithSpan(context.Background(), own))
		produced = []*message.Message{message.NewMessage("a", nil), withOwn, m}
		return produced, nil
	})
	_, err := h(src)
	require.NoError(t, err)
	process := named(t, sr.Ended(), "process")
	assert.Equal(t, process.SpanContext(), trace.SpanContextFromContext(produced[0].Context()))
	assert.Equal(t, own.SpanContext(), trace.SpanContextFromContext(produced[1].Context()))
	assert.Equal(t, process.SpanContext(), trace.SpanContextFromContext(produced[2].Context()), "a relayed message")
}

// injected returns a message whose metadata carries a producer span's
// context, and that span's name is "publish t".
func injected(t *testing.T, tp trace.TracerProvider) *message.Message {
	t.Helper()
	sink := &capture{}
	require.NoError(t, tracing.NewPublisher(sink, tracing.WithTracerProvider(tp)).Publish("t", newEvent("uuid-5")))
	return sink.msgs[0]
}

// With WithLinkedConsume the consumer span links to the producer's and takes
// its parent from the consumer's own context: none (a new trace), or an
// HTTP server span, say.
func TestLinkedConsume(t *testing.T) {
	sr, tp := recorder()
	_, ambient := tp.Tracer("app").Start(context.Background(), "POST /events")
	ambient.End()

	for _, tc := range []struct {
		name       string
		ctx        context.Context
		wantParent trace.SpanContext
	}{
		{"new trace", context.Background(), trace.SpanContext{}},
		{"under the consumer's span", trace.ContextWithSpan(context.Background(), ambient), ambient.SpanContext()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr.Reset()
			msg := deliver(injected(t, tp))
			msg.SetContext(tc.ctx)
			require.NoError(t, tracing.Handler(func(*message.Message) error { return nil },
				tracing.WithTracerProvider(tp), tracing.WithLinkedConsume())(msg))
			spans := sr.Ended()
			publish, process := named(t, spans, "publish t"), named(t, spans, "process")
			require.Len(t, process.Links(), 1)
			assert.Equal(t, publish.SpanContext().SpanID(), process.Links()[0].SpanContext.SpanID())
			assert.Equal(t, tc.wantParent.SpanID(), process.Parent().SpanID())
			if !tc.wantParent.IsValid() {
				assert.NotEqual(t, publish.SpanContext().TraceID(), process.SpanContext().TraceID())
			} else {
				assert.Equal(t, tc.wantParent.TraceID(), process.SpanContext().TraceID())
			}
		})
	}
}

// Without WithTracerProvider spans come from the global provider.
func TestGlobalTracerProvider(t *testing.T) {
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	sr, tp := recorder()
	otel.SetTracerProvider(tp)
	require.NoError(t, tracing.Handler(func(*message.Message) error { return nil })(newEvent("u")))
	named(t, sr.Ended(), "process")
}

// A Publisher traces each message of a batch, and gives each its own span.
func TestPublisherBatch(t *testing.T) {
	sr, tp := recorder()
	sink := &capture{}
	msgs := []*message.Message{newEvent("a"), newEvent("b"), newEvent("c")}
	require.NoError(t, tracing.NewPublisher(sink, tracing.WithTracerProvider(tp)).Publish("t", msgs...))
	spans := sr.Ended()
	require.Len(t, spans, 3)
	seen := map[string]bool{}
	for i, s := range spans {
		assert.Equal(t, msgs[i].UUID, attrs(s)["messaging.message.id"])
		seen[msgs[i].Metadata.Get("traceparent")] = true
	}
	assert.Len(t, seen, 3, "one span context per message")
}
