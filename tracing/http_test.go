package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/tracing"
	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// One trace spans the publisher and the consumer across the HTTP transport,
// in each of its formats: in CloudEvents binary mode the span context
// travels as the ce-traceparent and ce-tracestate headers, the CloudEvents
// distributed tracing extension.
func TestTraceAcrossHTTP(t *testing.T) {
	sr, tp := recorder()
	opt := tracing.WithTracerProvider(tp)
	tracer := tp.Tracer("app")

	for _, tc := range []struct {
		format httptransport.Format
		header string // where the traceparent travels
	}{
		{httptransport.FormatBinary, "Ce-Traceparent"},
		{httptransport.FormatStructured, ""},
		{httptransport.FormatRaw, ""},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			sr.Reset()
			receiver, err := httptransport.NewReceiver(httptransport.ReceiverConfig{}, watermill.NopLogger{})
			require.NoError(t, err)
			var (
				mu      sync.Mutex
				headers http.Header
			)
			mux := http.NewServeMux()
			mux.Handle("POST /events/{topic}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				headers = r.Header.Clone()
				mu.Unlock()
				receiver.ServeHTTP(w, r)
			}))
			hub := httptest.NewServer(mux)
			t.Cleanup(hub.Close)

			router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
			require.NoError(t, err)
			router.AddMiddleware(tracing.ConsumeMiddleware(opt))
			router.AddConsumerHandler("hub", "events:chat", receiver, func(m *message.Message) error {
				_, work := tracer.Start(m.Context(), "handler work")
				work.End()
				return nil
			})
			go func() { _ = router.Run(context.Background()) }()
			<-router.Running()
			t.Cleanup(func() {
				assert.NoError(t, router.Close())
				assert.NoError(t, receiver.Close())
			})

			inner, err := httptransport.NewPublisher(httptransport.Config{
				URL: hub.URL + "/events/{topic}", Format: tc.format,
			}, watermill.NopLogger{})
			require.NoError(t, err)
			pub := tracing.NewPublisher(inner, opt)
			t.Cleanup(func() { assert.NoError(t, pub.Close()) })

			state, err := trace.ParseTraceState("hub=a b%c") // a space and a percent sign: percent-encoded in headers
			require.NoError(t, err)
			ctx, request := tracer.Start(context.Background(), "request")
			ctx = trace.ContextWithSpanContext(ctx, trace.SpanContextFromContext(ctx).WithTraceState(state))
			msg := message.NewMessage(watermill.NewUUID(), []byte(`{"text":"hi"}`))
			msg.Metadata.Set("event_type", "chat_message")
			msg.Metadata.Set("event_key", "conv-1")
			msg.SetContext(ctx)
			// The Receiver answers once the handler acked: Publish returns after it.
			require.NoError(t, pub.Publish("events:chat", msg))
			request.End()
			spans := waitFor(t, sr, "publish events:chat", "process events:chat", "handler work")

			publish, process := named(t, spans, "publish events:chat"), named(t, spans, "process events:chat")
			work := named(t, spans, "handler work")
			assert.Equal(t, publish.SpanContext().TraceID(), process.SpanContext().TraceID())
			assert.Equal(t, publish.SpanContext().SpanID(), process.Parent().SpanID())
			assert.Equal(t, "hub=a b%c", process.Parent().TraceState().String(), "tracestate intact")
			assert.Equal(t, process.SpanContext().SpanID(), work.Parent().SpanID())
			assert.Equal(t, trace.SpanKindConsumer, process.SpanKind())
			assert.Equal(t, msg.UUID, attrs(process)["messaging.message.id"])
			assert.Equal(t, "chat_message", attrs(process)["switchyard.event_type"])

			if tc.header != "" {
				mu.Lock()
				defer mu.Unlock()
				assert.Equal(t, msg.Metadata.Get("traceparent"), headers.Get(tc.header))
			}
		})
	}
}
