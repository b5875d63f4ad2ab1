package tracing_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder returns an SDK tracer provider that keeps every ended span.
func recorder() (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	sr := tracetest.NewSpanRecorder()
	return sr, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
}

// named returns the ended span called name; it fails t unless there is
// exactly one.
func named(t testing.TB, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		names := make([]string, 0, len(spans))
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("want one span %q, got %d among %q", name, len(found), names)
	}
	return found[0]
}

// waitFor waits until the recorder has spans called names. A producer span
// may end after the consumer's: the transport has the message before the
// publisher's call returns.
func waitFor(t testing.TB, sr *tracetest.SpanRecorder, names ...string) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans := sr.Ended()
		missing := slices.DeleteFunc(slices.Clone(names), func(name string) bool {
			return slices.ContainsFunc(spans, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == name })
		})
		if len(missing) == 0 {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("spans %q did not end", missing)
		}
		time.Sleep(time.Millisecond)
	}
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	m := make(map[attribute.Key]string, len(s.Attributes()))
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

// deliver is what a transport does: a new message with the UUID, payload
// and metadata of m, and a context of its own.
func deliver(m *message.Message) *message.Message {
	d := message.NewMessage(m.UUID, m.Payload)
	d.Metadata = maps.Clone(m.Metadata)
	return d
}

// capture is a publisher that keeps what it is given.
type capture struct {
	msgs []*message.Message
	err  error
}

func (c *capture) Publish(_ string, msgs ...*message.Message) error {
	c.msgs = append(c.msgs, msgs...)
	return c.err
}

func (c *capture) Close() error { return nil }
