package tracing_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/tracing"
)

func TestInjectExtract(t *testing.T) {
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	state, err := trace.ParseTraceState("vendor=abc,other=x-y")
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, TraceState: state,
	})
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	withBaggage := tracing.WithPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	for _, tc := range []struct {
		name     string
		ctx      context.Context
		metadata message.Metadata
		opts     []tracing.Option
		want     message.Metadata // what Inject adds
		baggage  string
	}{
		{
			name:     "sampled span with tracestate",
			ctx:      trace.ContextWithSpanContext(context.Background(), sc),
			metadata: message.Metadata{"event_type": "typing"},
			want: message.Metadata{
				"event_type":  "typing",
				"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
				"tracestate":  "vendor=abc,other=x-y",
			},
		},
		{
			name:     "nil metadata",
			ctx:      trace.ContextWithSpanContext(context.Background(), sc),
			metadata: nil,
			want: message.Metadata{
				"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
				"tracestate":  "vendor=abc,other=x-y",
			},
		},
		{
			name:     "no span: nothing written",
			ctx:      context.Background(),
			metadata: message.Metadata{"event_type": "typing"},
			want:     message.Metadata{"event_type": "typing"},
		},
		{
			name:     "baggage with a composite propagator",
			ctx:      baggage.ContextWithBaggage(trace.ContextWithSpanContext(context.Background(), sc), bag),
			metadata: message.Metadata{},
			opts:     []tracing.Option{withBaggage},
			want: message.Metadata{
				"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
				"tracestate":  "vendor=abc,other=x-y",
				"baggage":     "tenant=acme",
			},
			baggage: "acme",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := message.NewMessage("id-1", nil)
			msg.Metadata = tc.metadata
			tracing.Inject(tc.ctx, msg, tc.opts...)
			assert.Equal(t, tc.want, msg.Metadata)

			got := trace.SpanContextFromContext(tracing.Extract(context.Background(), msg, tc.opts...))
			want := trace.SpanContextFromContext(tc.ctx)
			if !want.IsValid() {
				assert.False(t, got.IsValid())
				return
			}
			assert.True(t, got.IsRemote(), "an extracted span context is remote")
			assert.True(t, want.Equal(got.WithRemote(false)), "round trip: got %v, want %v", got, want)
			assert.Equal(t, tc.baggage, baggage.FromContext(tracing.Extract(context.Background(), msg, tc.opts...)).Member("tenant").Value())
		})
	}
}
