package tracing_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/switchyard-go/switchyard/tracing"
)

// providers are the tracer providers the benchmarks compare: none (the
// middleware not added at all), OpenTelemetry's no-op, the SDK sampling no
// span, and the SDK sampling every span and exporting it to an exporter
// that drops it, so that what is measured is this package and the SDK, not
// an exporter.
func providers(b *testing.B) []struct {
	name string
	tp   trace.TracerProvider
} {
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	b.Cleanup(func() {
		_ = sdk.Shutdown(context.Background())
		_ = unsampled.Shutdown(context.Background())
	})
	return []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"none", nil},
		{"noop", noop.NewTracerProvider()},
		{"sdk-unsampled", unsampled},
		{"sdk", sdk},
	}
}

// BenchmarkPublishMiddleware is the cost per message of the pipeline span,
// with the caller's span as its parent, and of injecting it.
func BenchmarkPublishMiddleware(b *testing.B) {
	for _, p := range providers(b) {
		b.Run(p.name, func(b *testing.B) {
			h := func(*message.Message) ([]*message.Message, error) { return nil, nil }
			if p.tp != nil {
				h = tracing.PublishMiddleware(tracing.WithTracerProvider(p.tp))(h)
			}
			ctx, caller := sdktrace.NewTracerProvider().Tracer("app").Start(context.Background(), "caller")
			defer caller.End()
			msg := newEvent("0193a5c4-7d3e-7cc0-b1f5-6a0e2f6c9d11")
			b.ReportAllocs()
			for b.Loop() {
				msg.SetContext(ctx)
				if _, err := h(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandler is the cost per message of the consumer span: extracting
// the producer's context from the metadata, starting and ending the span.
func BenchmarkHandler(b *testing.B) {
	for _, p := range providers(b) {
		b.Run(p.name, func(b *testing.B) {
			h := func(*message.Message) error { return nil }
			if p.tp != nil {
				h = tracing.Handler(h, tracing.WithTracerProvider(p.tp))
			}
			ctx, producer := sdktrace.NewTracerProvider().Tracer("app").Start(context.Background(), "producer")
			defer producer.End()
			msg := newEvent("0193a5c4-7d3e-7cc0-b1f5-6a0e2f6c9d11")
			tracing.Inject(ctx, msg)
			b.ReportAllocs()
			for b.Loop() {
				msg.SetContext(context.Background())
				if err := h(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
