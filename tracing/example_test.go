package tracing_test

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/tracing"
)

// Trace a bus: a span where the application publishes, one per pass
// through the pipeline, one per handler, all in the trace of the request
// that published the event.
func Example() {
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	opt := tracing.WithTracerProvider(tp)

	b, err := bus.New(bus.DefaultConfig(), bus.WithLoggerAdapter(watermill.NopLogger{}))
	if err != nil {
		panic(err)
	}
	_ = b.Use(tracing.PublishMiddleware(opt))
	handled := make(chan trace.SpanContext, 1)
	_ = b.Handle("gateway", "events:chat", tracing.Handler(func(m *message.Message) error {
		handled <- trace.SpanContextFromContext(m.Context())
		return nil
	}, opt))
	go func() { _ = b.Run(context.Background()) }()
	<-b.Running()

	ctx, request := tp.Tracer("chat").Start(context.Background(), "POST /api/v1/messages")
	msg := bus.NewMessage("chat_message", "conv-1", []byte(`{"text":"hi"}`))
	msg.SetContext(ctx)
	if err := tracing.NewPublisher(b, opt).Publish("events:chat", msg); err != nil {
		panic(err)
	}
	request.End()
	consumer := <-handled
	_ = b.Close() // waits for the handler, whose span has ended

	spans := map[string]tracetest.SpanStub{}
	for _, s := range exporter.GetSpans() {
		spans[s.Name] = s
	}
	send, process := spans["send events:chat"], spans["process events:chat"]
	fmt.Println("one trace:", consumer.TraceID() == request.SpanContext().TraceID())
	fmt.Println("send under publish:", send.Parent.SpanID() == spans["publish events:chat"].SpanContext.SpanID())
	fmt.Println("process under send:", process.Parent.SpanID() == send.SpanContext.SpanID())
	fmt.Println(send.SpanKind, process.SpanKind)
	// Output:
	// one trace: true
	// send under publish: true
	// process under send: true
	// producer consumer
}
