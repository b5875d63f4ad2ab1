package tracing_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/tracing"
	_ "github.com/switchyard-go/switchyard/transports/memory" // the default configuration's transport
)

// Each attempt of a message the bus retries gets a pipeline span of its
// own, under the caller's span; the failed one records the error, and the
// consumer is the child of the attempt that got through.
func TestPipelineRetries(t *testing.T) {
	sr, tp := recorder()
	opt := tracing.WithTracerProvider(tp)
	var attempts atomic.Int32
	handled := make(chan struct{})
	b := runBus(t, map[string]any{}, func(b *bus.Bus) {
		require.NoError(t, b.Use(tracing.PublishMiddleware(opt), func(h message.HandlerFunc) message.HandlerFunc {
			return func(m *message.Message) ([]*message.Message, error) {
				if attempts.Add(1) == 1 {
					return nil, errors.New("transport down")
				}
				return h(m)
			}
		}))
		require.NoError(t, b.Handle("hub", "events:chat", tracing.Handler(func(*message.Message) error {
			close(handled)
			return nil
		}, opt)))
	})

	ctx, request := tp.Tracer("app").Start(context.Background(), "request")
	msg := bus.NewMessage("typing", "req-1", nil)
	msg.SetContext(ctx)
	require.NoError(t, b.Publish("events:chat", msg))
	request.End()
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered")
	}
	var spans, sends []sdktrace.ReadOnlySpan
	// The second attempt's span may end after the consumer's.
	require.Eventually(t, func() bool {
		spans, sends = waitFor(t, sr, "request", "process events:chat"), nil
		for _, s := range spans {
			if s.Name() == "send" {
				sends = append(sends, s)
			}
		}
		return len(sends) == 2
	}, 10*time.Second, time.Millisecond)
	for _, s := range sends {
		assert.Equal(t, request.SpanContext().SpanID(), s.Parent().SpanID(), "every attempt is the caller's child")
	}
	assert.Equal(t, codes.Error, sends[0].Status().Code)
	assert.Equal(t, "transport down", sends[0].Status().Description)
	assert.Equal(t, codes.Unset, sends[1].Status().Code)
	assert.Equal(t, "memory", attrs(sends[1])["switchyard.transport"])
	assert.Equal(t, sends[1].SpanContext().SpanID(), named(t, spans, "process events:chat").Parent().SpanID())
}

// An event the coalesce stage holds for its window's trailing edge goes
// through the pipeline twice: its second send span is the child of the
// first, and the consumer's parent is the second.
func TestPipelineCoalesced(t *testing.T) {
	sr, tp := recorder()
	opt := tracing.WithTracerProvider(tp)
	got := make(chan string, 3)
	b := runBus(t, map[string]any{
		"coalescing": map[string]any{"enabled": true, "window": "50ms", "event_types": []any{"typing"}},
	}, func(b *bus.Bus) {
		require.NoError(t, b.Use(tracing.PublishMiddleware(opt)))
		require.NoError(t, b.Handle("hub", "events:chat", tracing.Handler(func(m *message.Message) error {
			got <- m.UUID
			return nil
		}, opt)))
	})

	ctx, request := tp.Tracer("app").Start(context.Background(), "request")
	var last *message.Message
	for range 3 {
		last = bus.NewMessage("typing", "req-1", nil)
		last.SetContext(ctx)
		require.NoError(t, b.Publish("events:chat", last))
	}
	request.End()
	var delivered []string
	for len(delivered) < 2 {
		select {
		case id := <-got:
			delivered = append(delivered, id)
		case <-time.After(10 * time.Second):
			t.Fatalf("delivered %d of 2", len(delivered))
		}
	}
	require.Equal(t, last.UUID, delivered[1], "the trailing edge is the latest")

	var process sdktrace.ReadOnlySpan
	var sends []sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		process, sends = nil, nil
		for _, s := range sr.Ended() {
			if attrs(s)["messaging.message.id"] != last.UUID {
				continue
			}
			switch s.Name() {
			case "send":
				sends = append(sends, s)
			case "process events:chat":
				process = s
			}
		}
		return len(sends) == 2 && process != nil
	}, 10*time.Second, time.Millisecond)
	held, trailing := sends[0], sends[1]
	assert.Equal(t, request.SpanContext().SpanID(), held.Parent().SpanID())
	assert.Equal(t, held.SpanContext().SpanID(), trailing.Parent().SpanID())
	assert.Equal(t, trailing.SpanContext().SpanID(), process.Parent().SpanID())
}
