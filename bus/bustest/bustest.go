// Package bustest gives tests a running bus on in-memory transports and
// assertions on what was published, per topic and event type.
//
// Code under test takes a *bus.Bus (or a message.Publisher); the test passes
// bustest.New(t).Bus instead of a bus built from the production config, so
// the same code runs without Redis or an HTTP hub:
//
//	b := bustest.New(t)
//	svc := chat.NewService(b.Bus)
//	svc.SendMessage(ctx, "req-1", "hello")
//	recs := b.WaitPublished(t, "events:chat", 1)
//	require.Equal(t, "chat_message", recs[0].EventType)
//
// The recording transport wraps the memory transport, found in the default
// registry as the bus finds every transport: the test binary must import
// github.com/switchyard-go/switchyard/transports/memory (or transports/all).
package bustest

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports"
)

// memoryType is the registered type of the memory transport that the
// recording transport wraps and that takes the bus's dead letters.
const memoryType = "memory"

// TransportType is the registered type of the recording transport, and the
// name of the one instance that New configures as the baseline and inbound
// transport.
const TransportType = "bustest"

// Record is a message as it reached the transport.
type Record struct {
	Topic     string
	UUID      string
	EventType string
	Key       string
	Payload   []byte
	Metadata  map[string]string
}

// Bus is a running bus whose transport records every message published.
type Bus struct {
	*bus.Bus
	rec *recorder
}

// Option adjusts what New builds.
type Option func(*settings)

type settings struct {
	mutate  []func(*bus.Config)
	options []bus.Option
	stages  []message.HandlerMiddleware
	timeout time.Duration
}

// WithConfig lets fn change the configuration before the bus is built; it
// starts from bus.DefaultConfig with the recording transport as the baseline
// and only inbound transport.
func WithConfig(fn func(*bus.Config)) Option {
	return func(s *settings) { s.mutate = append(s.mutate, fn) }
}

// WithOptions passes options to bus.New.
func WithOptions(opts ...bus.Option) Option {
	return func(s *settings) { s.options = append(s.options, opts...) }
}

// WithMiddleware adds stages to the publish pipeline, as Bus.Use does
// before Run, so a stage of the application's own is tested on the
// in-memory bus: what it lets through, changes or drops shows in
// Published.
func WithMiddleware(stages ...message.HandlerMiddleware) Option {
	return func(s *settings) { s.stages = append(s.stages, stages...) }
}

// WithWaitTimeout sets how long the Wait methods wait (default 5s).
func WithWaitTimeout(d time.Duration) Option {
	return func(s *settings) { s.timeout = d }
}

// New returns a running bus; t.Cleanup closes it and fails the test if
// closing loses messages.
func New(t testing.TB, opts ...Option) *Bus {
	t.Helper()
	s := settings{timeout: 5 * time.Second}
	for _, o := range opts {
		o(&s)
	}
	reg := transports.Default().Clone()
	memory, err := reg.Lookup(memoryType)
	if err != nil {
		t.Fatalf("bustest: %v", err)
	}
	rec := &recorder{memory: memory, byTopic: map[string][]Record{}, changed: make(chan struct{}), timeout: s.timeout}
	reg.Register(TransportType, rec.factory)

	cfg := bus.DefaultConfig()
	cfg.Transports = map[string]map[string]any{
		"memory":      {"type": memoryType},
		TransportType: {"type": TransportType},
	}
	cfg.Routing.Baseline = TransportType
	cfg.Consume.From = []string{TransportType}
	for _, fn := range s.mutate {
		fn(&cfg)
	}
	b, err := bus.New(cfg, append([]bus.Option{bus.WithLoggerAdapter(watermill.NopLogger{}), bus.WithRegistry(reg)}, s.options...)...)
	if err != nil {
		t.Fatalf("bustest: %v", err)
	}
	if err := b.Use(s.stages...); err != nil {
		t.Fatalf("bustest: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case err := <-done:
		t.Fatalf("bustest: Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("bustest: the bus did not start")
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("bustest: Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("bustest: Run: %v", err)
		}
	})
	return &Bus{Bus: b, rec: rec}
}

// Published returns what was published on topic so far, in order.
func (b *Bus) Published(topic string) []Record { return b.rec.get(topic, "") }

// PublishedOfType returns what was published on topic with event type typ.
func (b *Bus) PublishedOfType(topic, typ string) []Record { return b.rec.get(topic, typ) }

// WaitPublished waits until at least n messages were published on topic and
// returns them; it fails the test after the wait timeout.
func (b *Bus) WaitPublished(t testing.TB, topic string, n int) []Record {
	t.Helper()
	return b.rec.wait(t, topic, "", n)
}

// WaitPublishedOfType is WaitPublished for one event type.
func (b *Bus) WaitPublishedOfType(t testing.TB, topic, typ string, n int) []Record {
	t.Helper()
	return b.rec.wait(t, topic, typ, n)
}

// AssertPublished waits until n messages of event type typ were published on
// topic and fails the test if they do not come or if more than n did.
func (b *Bus) AssertPublished(t testing.TB, topic, typ string, n int) {
	t.Helper()
	if n > 0 {
		b.rec.wait(t, topic, typ, n)
	}
	if got := len(b.rec.get(topic, typ)); got != n {
		t.Errorf("bustest: %d %q messages published on %q, want %d", got, typ, topic, n)
	}
}

// Reset forgets what was recorded.
func (b *Bus) Reset() {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	b.rec.byTopic = map[string][]Record{}
}

type recorder struct {
	memory  transports.Factory
	mu      sync.Mutex
	byTopic map[string][]Record
	changed chan struct{}
	timeout time.Duration
}

// factory builds a memory transport whose publisher records what it takes.
func (r *recorder) factory(s transports.Settings) (transports.Transport, error) {
	t, err := r.memory(s)
	if err != nil {
		return t, err
	}
	return transports.Transport{Publisher: &recordingPublisher{Publisher: t.Publisher, rec: r}, Subscriber: t.Subscriber, InProcess: t.InProcess}, nil
}

type recordingPublisher struct {
	message.Publisher
	rec *recorder
}

func (p *recordingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	p.rec.add(topic, msgs)
	return nil
}

// Drain lets the bus wait for the inner memory transport on Close.
func (p *recordingPublisher) Drain(ctx context.Context) error {
	if d, ok := p.Publisher.(transports.Drainer); ok {
		return d.Drain(ctx)
	}
	return nil
}

func (r *recorder) add(topic string, msgs []*message.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		r.byTopic[topic] = append(r.byTopic[topic], Record{
			Topic:     topic,
			UUID:      m.UUID,
			EventType: m.Metadata.Get(bus.MetaEventType),
			Key:       m.Metadata.Get(bus.MetaEventKey),
			Payload:   append([]byte(nil), m.Payload...),
			Metadata:  maps.Clone(map[string]string(m.Metadata)),
		})
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) get(topic, typ string) []Record {
	recs, _ := r.snapshot(topic, typ)
	return recs
}

func (r *recorder) snapshot(topic, typ string) ([]Record, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Record
	for _, rec := range r.byTopic[topic] {
		if typ == "" || rec.EventType == typ {
			out = append(out, rec)
		}
	}
	return out, r.changed
}

func (r *recorder) wait(t testing.TB, topic, typ string, n int) []Record {
	t.Helper()
	timeout := time.NewTimer(r.timeout)
	defer timeout.Stop()
	for {
		recs, changed := r.snapshot(topic, typ)
		if len(recs) >= n {
			return recs
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("bustest: %d messages (type %q) published on %q within %s, want %d", len(recs), typ, topic, r.timeout, n)
			return nil
		}
	}
}

var (
	_ message.Publisher  = (*recordingPublisher)(nil)
	_ transports.Drainer = (*recordingPublisher)(nil)
)
