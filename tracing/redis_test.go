package tracing_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/tracing"
	_ "github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// runBus runs a bus until the test ends.
func runBus(t *testing.T, settings map[string]any, setup func(*bus.Bus)) *bus.Bus {
	t.Helper()
	cfg, err := bus.LoadConfig(bus.FromMap(settings))
	require.NoError(t, err)
	b, err := bus.New(cfg, bus.WithLoggerAdapter(watermill.NopLogger{}))
	require.NoError(t, err)
	setup(b)
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-time.After(10 * time.Second):
		t.Fatal("bus did not start")
	}
	t.Cleanup(func() {
		assert.NoError(t, b.Close())
		assert.NoError(t, <-done)
	})
	return b
}

// One trace spans the publisher and the consumer across Redis Streams: the
// span context travels in the stream entry's metadata, and the spans the
// in-memory recorder exported link up, whichever way the application
// publishes.
func TestTraceAcrossRedis(t *testing.T) {
	srv := redistest.Start(t)
	sr, tp := recorder()
	opt := tracing.WithTracerProvider(tp)
	tracer := tp.Tracer("app")

	for i, tc := range []struct {
		name     string
		publish  func(b *bus.Bus, topic string, msg *message.Message) error
		producer []string // the producer spans, outermost first; {topic} is the topic
	}{
		{
			name: "NewPublisher over the bus",
			publish: func(b *bus.Bus, topic string, msg *message.Message) error {
				return tracing.NewPublisher(b, opt).Publish(topic, msg)
			},
			producer: []string{"publish {topic}", "send {topic}"},
		},
		{
			name:     "bus.Publish",
			publish:  func(b *bus.Bus, topic string, msg *message.Message) error { return b.Publish(topic, msg) },
			producer: []string{"send"},
		},
		{
			name: "bus.PublishSync",
			publish: func(b *bus.Bus, topic string, msg *message.Message) error {
				return b.PublishSync(msg.Context(), topic, msg)
			},
			producer: []string{"send"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr.Reset()
			topic := fmt.Sprintf("events:chat:%d", i)
			handled := make(chan trace.SpanContext, 1)
			b := runBus(t, map[string]any{
				"transports": map[string]any{"redis": map[string]any{
					"type": "redisstream", "url": srv.URL(), "consumer_group": "hub", "start_id": "0",
				}},
				"routing": map[string]any{"baseline": "redis"},
				"consume": map[string]any{"from": []any{"redis"}},
			}, func(b *bus.Bus) {
				require.NoError(t, b.Use(tracing.PublishMiddleware(opt)))
				require.NoError(t, b.Handle("hub", topic, tracing.Handler(func(m *message.Message) error {
					_, work := tracer.Start(m.Context(), "handler work")
					work.End()
					handled <- work.SpanContext()
					return nil
				}, opt)))
			})

			ctx, request := tracer.Start(context.Background(), "request")
			msg := bus.NewMessage("chat_message", "conv-1", []byte(`{"text":"hi"}`))
			msg.SetContext(ctx)
			require.NoError(t, tc.publish(b, topic, msg))
			request.End()
			select {
			case <-handled:
			case <-time.After(30 * time.Second):
				t.Fatal("the handler did not get the event")
			}
			names := []string{"request"}
			for _, name := range tc.producer {
				names = append(names, strings.ReplaceAll(name, "{topic}", topic))
			}
			names = append(names, "process "+topic, "handler work")
			spans := waitFor(t, sr, names...)

			// request → producer spans → process → handler work, one trace.
			var chain []sdktrace.ReadOnlySpan
			for _, name := range names {
				chain = append(chain, named(t, spans, name))
			}
			process := chain[len(chain)-2]
			for j := 1; j < len(chain); j++ {
				parent, child := chain[j-1], chain[j]
				assert.Equal(t, chain[0].SpanContext().TraceID(), child.SpanContext().TraceID(), "%s: same trace", child.Name())
				assert.Equal(t, parent.SpanContext().SpanID(), child.Parent().SpanID(), "%s is the child of %s", child.Name(), parent.Name())
			}
			send := chain[len(chain)-3]
			assert.Equal(t, trace.SpanKindProducer, send.SpanKind())
			assert.Equal(t, trace.SpanKindConsumer, process.SpanKind())
			assert.True(t, process.Parent().IsRemote(), "the consumer's parent came through Redis")

			sendAttrs, processAttrs := attrs(send), attrs(process)
			assert.Equal(t, "redis", sendAttrs["switchyard.transport"])
			for _, a := range []map[attribute.Key]string{sendAttrs, processAttrs} {
				assert.Equal(t, "switchyard", a["messaging.system"])
				assert.Equal(t, msg.UUID, a["messaging.message.id"])
				assert.Equal(t, "chat_message", a["switchyard.event_type"])
				assert.Equal(t, "conv-1", a["switchyard.event_key"])
			}
			assert.Equal(t, topic, processAttrs["messaging.destination.name"])
			assert.Equal(t, "hub", processAttrs["messaging.destination.subscription.name"])

			// The stream entry itself holds the pipeline span's traceparent.
			traceparent := fmt.Sprintf("00-%s-%s-01", send.SpanContext().TraceID(), send.SpanContext().SpanID())
			assert.Contains(t, srv.Do(t, "XRANGE", topic, "-", "+"), traceparent)
		})
	}
}
