package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports"
	_ "github.com/switchyard-go/switchyard/transports/all"
)

// leakOptions are what a build tag's tests add to the leak check.
var leakOptions []goleak.Option

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leakOptions...) }

var quiet = bus.WithLoggerAdapter(watermill.NopLogger{})

// start runs b until the test ends and waits for Run to return.
func start(t *testing.T, b *bus.Bus) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-time.After(10 * time.Second):
		t.Fatal("bus did not start")
	}
	t.Cleanup(func() {
		_ = b.Close()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after Close")
		}
	})
}

func newBus(t *testing.T, mutate func(*bus.Config), opts ...bus.Option) *bus.Bus {
	t.Helper()
	cfg := bus.DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	b, err := bus.New(cfg, append([]bus.Option{quiet}, opts...)...)
	require.NoError(t, err)
	return b
}

func TestPubSub(t *testing.T) {
	features := tests.Features{
		// A bus has its own in-process inbound transport; consumer groups of
		// separate buses cannot meet.
		ConsumerGroups: false,
		// At least once: redelivery after a nack or a subscriber leaving.
		ExactlyOnceDelivery: false,
		// Keyless events share one ingress lane and one transport lane, so
		// publish order is kept end to end, each delivered after the previous ack.
		GuaranteedOrder: true,
		// A process has one bus: every constructor call of a test gets a
		// handle on the same bus (see busHandle), and what one handle leaves
		// unread the next one gets. Nothing outlives the bus itself.
		Persistent:            true,
		RequireSingleInstance: true,
		// The memory transport gives each delivery its own context.
		ContextPreserved: false,
	}
	var (
		mu    sync.Mutex
		buses = map[*testing.T]*bus.Bus{}
	)
	constructor := func(t *testing.T) (message.Publisher, message.Subscriber) {
		mu.Lock()
		defer mu.Unlock()
		b, ok := buses[t]
		if !ok {
			b = newBus(t, func(c *bus.Config) {
				c.Bus.CloseTimeout = 5 * time.Second
				// The suite nacks one message hundreds of times and expects it
				// back each time: unlimited, fast retries in the inbound transport.
				c.Transports["memory"]["max_retries"] = -1
				c.Transports["memory"]["retry_backoff"] = "1ms"
				c.Transports["memory"]["max_retry_backoff"] = "1ms"
			})
			start(t, b)
			buses[t] = b
		}
		h := newBusHandle(b)
		return h, h
	}
	tests.TestPubSub(t, features, constructor, nil)
}

// busHandle is what a part of a program holds: the process's bus, whose
// Close ends only the handle's own subscriptions. The bus itself is closed
// when the test ends, and must report nothing lost.
type busHandle struct {
	*bus.Bus
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	subs   []<-chan *message.Message
	closed bool
}

func newBusHandle(b *bus.Bus) *busHandle {
	ctx, cancel := context.WithCancel(context.Background())
	return &busHandle{Bus: b, ctx: ctx, cancel: cancel}
}

func (h *busHandle) Publish(topic string, msgs ...*message.Message) error {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return bus.ErrClosed
	}
	return h.Bus.Publish(topic, msgs...)
}

func (h *busHandle) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(h.ctx, cancel)
	ch, err := h.Bus.Subscribe(ctx, topic)
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	h.mu.Lock()
	h.subs = append(h.subs, ch)
	h.mu.Unlock()
	return ch, nil
}

// Close ends the handle's subscriptions and returns once their channels are
// closed (a message still in one is left to its redelivery).
func (h *busHandle) Close() error {
	h.mu.Lock()
	h.closed = true
	subs := h.subs
	h.subs = nil
	h.mu.Unlock()
	h.cancel()
	for _, ch := range subs {
		for m := range ch {
			m.Nack()
		}
	}
	return nil
}

// TestOrderPerKey: 100 keys × 1,000 events from 8 goroutines arrive in
// per-key order, all of them, none twice.
func TestOrderPerKey(t *testing.T) {
	const keys, perKey, publishers = 100, 1000, 8
	b := newBus(t, nil)
	var (
		mu   sync.Mutex
		next = make(map[string]int, keys)
		got  atomic.Int64
		errs = make(chan error, 1)
		all  = make(chan struct{})
	)
	require.NoError(t, b.Handle("check", "events:order", func(m *message.Message) error {
		key := m.Metadata.Get(bus.MetaEventKey)
		seq, err := strconv.Atoi(string(m.Payload))
		if err != nil {
			return err
		}
		mu.Lock()
		want := next[key]
		next[key] = seq + 1
		mu.Unlock()
		if seq != want {
			select {
			case errs <- fmt.Errorf("key %s: got %d, want %d", key, seq, want):
			default:
			}
		}
		if got.Add(1) == keys*perKey {
			close(all)
		}
		return nil
	}))
	start(t, b)

	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for k := p; k < keys; k += publishers {
				key := "conv-" + strconv.Itoa(k)
				for i := range perKey {
					if err := b.Publish("events:order", bus.NewMessage("chat_message", key, []byte(strconv.Itoa(i)))); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-all:
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatalf("received %d of %d", got.Load(), keys*perKey)
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	mu.Lock()
	defer mu.Unlock()
	for k := range keys {
		assert.Equal(t, perKey, next["conv-"+strconv.Itoa(k)], "key %d", k)
	}
	assert.EqualValues(t, keys*perKey, got.Load(), "none twice")
}

// stallingRegistry returns a registry with a "stall" transport whose Publish
// blocks until release is closed: a stalled consumer of the ingress.
// registryWith is the default registry and a type name that builds tr.
func registryWith(name string, tr transports.Transport) *transports.Registry {
	reg := transports.Default().Clone()
	reg.Register(name, func(transports.Settings) (transports.Transport, error) { return tr, nil })
	return reg
}

func stallingRegistry(release <-chan struct{}, published *atomic.Int64) *transports.Registry {
	return registryWith("stall", transports.Transport{Publisher: publisherFunc(func(topic string, msgs ...*message.Message) error {
		<-release
		published.Add(int64(len(msgs)))
		return nil
	})})
}

type publisherFunc func(topic string, msgs ...*message.Message) error

func (f publisherFunc) Publish(topic string, msgs ...*message.Message) error {
	return f(topic, msgs...)
}
func (f publisherFunc) Close() error { return nil }

func TestBackpressure(t *testing.T) {
	for _, onFull := range []string{"block", "reject"} {
		t.Run(onFull, func(t *testing.T) {
			release := make(chan struct{})
			var published atomic.Int64
			b := newBus(t, func(c *bus.Config) {
				c.Bus.QueueSize = 10
				c.Bus.OnFull = onFull
				c.Transports["stall"] = map[string]any{"type": "stall"}
				c.Routing.Baseline = "stall"
			}, bus.WithRegistry(stallingRegistry(release, &published)))
			start(t, b)

			for i := range 10 {
				require.NoError(t, b.Publish("events", bus.NewMessage("typing", strconv.Itoa(i), nil)), "message %d", i)
			}
			m := bus.NewMessage("typing", "11th", nil)
			const deadline = 200 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			m.SetContext(ctx)
			began := time.Now()
			err := b.Publish("events", m)
			took := time.Since(began)
			require.ErrorIs(t, err, bus.ErrQueueFull)
			if onFull == "block" {
				assert.GreaterOrEqual(t, took, deadline-10*time.Millisecond, "blocked until the deadline")
			} else {
				assert.Less(t, took, deadline/2, "rejected at once")
			}

			close(release)
			require.Eventually(t, func() bool { return published.Load() == 10 }, 10*time.Second, time.Millisecond,
				"all 10 accepted messages published after the consumer resumed")
		})
	}
}

func failingRegistry(err error) *transports.Registry {
	return registryWith("failing", transports.Transport{Publisher: publisherFunc(func(string, ...*message.Message) error { return err })})
}

func TestPublishSyncReturnsTransportError(t *testing.T) {
	errDown := errors.New("hub is down")
	b := newBus(t, func(c *bus.Config) {
		c.Transports["failing"] = map[string]any{"type": "failing"}
		c.Routing.Baseline = "failing"
		c.Consume.From = []string{"memory"} // where the dead letters are
		c.Bus.MaxRetries = 2
		c.Bus.RetryBackoff = time.Millisecond
	}, bus.WithRegistry(failingRegistry(errDown)))
	var deadLettered atomic.Int64
	require.NoError(t, b.Handle("dlq", "dead_letter", func(m *message.Message) error {
		assert.Equal(t, "events:chat", m.Metadata.Get(bus.MetaDeadLetterTopic))
		assert.Contains(t, m.Metadata.Get(bus.MetaDeadLetterReason), "hub is down")
		deadLettered.Add(1)
		return nil
	}))
	start(t, b)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := b.PublishSync(ctx, "events:chat", bus.NewMessage("chat_message", "c1", []byte("hi")))
	require.ErrorIs(t, err, errDown)
	require.ErrorIs(t, err, bus.ErrDeadLettered)
	require.Eventually(t, func() bool { return deadLettered.Load() == 1 }, 5*time.Second, time.Millisecond)
}

func TestPublishSyncSucceeds(t *testing.T) {
	b := newBus(t, nil)
	got := make(chan *message.Message, 1)
	require.NoError(t, b.Handle("h", "events:chat", func(m *message.Message) error { got <- m; return nil }))
	start(t, b)
	m := bus.NewMessage("chat_message", "c1", []byte("hello"))
	require.NoError(t, b.PublishSync(context.Background(), "events:chat", m))
	select {
	case r := <-got:
		assert.Equal(t, m.UUID, r.UUID)
		assert.Equal(t, "memory", r.Metadata.Get(bus.MetaTransport))
		assert.Equal(t, "chat_message", r.Metadata.Get(bus.MetaEventType))
	case <-time.After(5 * time.Second):
		t.Fatal("not delivered")
	}
}

// TestCloseDrains: Close with 10,000 accepted messages in flight delivers all.
func TestCloseDrains(t *testing.T) {
	const n = 10000
	b := newBus(t, nil)
	var got atomic.Int64
	require.NoError(t, b.Handle("count", "events", func(*message.Message) error { got.Add(1); return nil }))
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	<-b.Running()
	for i := range n {
		require.NoError(t, b.Publish("events", bus.NewMessage("chat_message", strconv.Itoa(i%500), nil)))
	}
	require.NoError(t, b.Close())
	require.NoError(t, <-done)
	assert.EqualValues(t, n, got.Load())
	assert.ErrorIs(t, b.Publish("events", bus.NewMessage("typing", "k", nil)), bus.ErrClosed)
	assert.NoError(t, b.Close(), "idempotent")
}

// TestCloseReportsUndelivered: when the transport never takes the messages,
// Close returns within close_timeout and says how many were left.
func TestCloseReportsUndelivered(t *testing.T) {
	release := make(chan struct{})
	var published atomic.Int64
	b := newBus(t, func(c *bus.Config) {
		c.Bus.CloseTimeout = 300 * time.Millisecond
		c.Transports["stall"] = map[string]any{"type": "stall"}
		c.Routing.Baseline = "stall"
	}, bus.WithRegistry(stallingRegistry(release, &published)))
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	<-b.Running()
	for i := range 100 {
		require.NoError(t, b.Publish("events", bus.NewMessage("typing", strconv.Itoa(i), nil)))
	}
	began := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	var err error
	select {
	case err = <-closed:
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("Close not bounded by close_timeout")
	}
	close(release)
	require.ErrorIs(t, err, bus.ErrCloseTimeout)
	assert.Contains(t, err.Error(), "messages")
	assert.Less(t, time.Since(began), 2*time.Second)
	<-done
}

// A transport that fails to close is not a close timeout: nothing was left
// undelivered, and errors.Is(err, ErrCloseTimeout) must not say so.
func TestCloseReportsATransportsCloseErrorAsItIs(t *testing.T) {
	broken := errors.New("broken: cannot close")
	b := newBus(t, func(c *bus.Config) {
		c.Transports["broken"] = map[string]any{"type": "broken"}
		c.Routing.Baseline = "broken"
	}, bus.WithRegistry(registryWith("broken", transports.Transport{Publisher: closeFailing{err: broken}})))
	closeBus := runBus(t, b)
	require.NoError(t, b.PublishSync(t.Context(), "events", bus.NewMessage("typing", "k", nil)))

	err := closeBus()
	require.ErrorIs(t, err, broken)
	require.NotErrorIs(t, err, bus.ErrCloseTimeout)
}

type closeFailing struct{ err error }

func (closeFailing) Publish(string, ...*message.Message) error { return nil }
func (c closeFailing) Close() error                            { return c.err }

func TestRunStopsWhenContextEnds(t *testing.T) {
	b := newBus(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	<-b.Running()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	assert.ErrorIs(t, b.Publish("x", bus.NewMessage("t", "k", nil)), bus.ErrClosed)
}

func TestUseRunsCustomStage(t *testing.T) {
	b := newBus(t, nil)
	require.NoError(t, b.Use(func(h message.HandlerFunc) message.HandlerFunc {
		return func(m *message.Message) ([]*message.Message, error) {
			m.Metadata.Set("tenant", "acme")
			return h(m)
		}
	}))
	got := make(chan *message.Message, 1)
	require.NoError(t, b.Handle("h", "events", func(m *message.Message) error { got <- m; return nil }))
	start(t, b)
	require.NoError(t, b.Publish("events", bus.NewMessage("typing", "k", nil)))
	select {
	case m := <-got:
		assert.Equal(t, "acme", m.Metadata.Get("tenant"))
	case <-time.After(5 * time.Second):
		t.Fatal("not delivered")
	}
	assert.ErrorIs(t, b.Use(nil), bus.ErrRunning)
}

// A stage that panics fails the event's attempt: it is retried, and
// dead-lettered with the panic as the reason if every attempt panics.
func TestPanickingStageIsRetriedThenDeadLettered(t *testing.T) {
	b := newBus(t, func(c *bus.Config) {
		c.Bus.MaxRetries = 2
		c.Bus.RetryBackoff = time.Millisecond
	})
	var attempts atomic.Int64
	require.NoError(t, b.Use(func(h message.HandlerFunc) message.HandlerFunc {
		return func(m *message.Message) ([]*message.Message, error) {
			n := attempts.Add(1)
			if m.Metadata.Get(bus.MetaEventKey) == "always" || n == 1 {
				panic("stage bug")
			}
			return h(m)
		}
	}))
	got := make(chan *message.Message, 1)
	dead := make(chan *message.Message, 1)
	require.NoError(t, b.Handle("h", "events", func(m *message.Message) error { got <- m; return nil }))
	require.NoError(t, b.Handle("dlq", "dead_letter", func(m *message.Message) error { dead <- m; return nil }))
	start(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	require.NoError(t, b.PublishSync(ctx, "events", bus.NewMessage("chat_message", "once", []byte("a"))))
	select {
	case m := <-got:
		assert.Equal(t, "a", string(m.Payload))
	case <-ctx.Done():
		t.Fatal("not delivered after the panic")
	}
	assert.EqualValues(t, 2, attempts.Load(), "one attempt panicked, the retry went through")

	err := b.PublishSync(ctx, "events", bus.NewMessage("chat_message", "always", []byte("b")))
	require.ErrorIs(t, err, bus.ErrDeadLettered)
	var panicErr middleware.RecoveredPanicError
	require.ErrorAs(t, err, &panicErr)
	assert.Equal(t, "stage bug", panicErr.V)
	assert.NotContains(t, err.Error(), "goroutine", "the stack is logged, not returned")
	select {
	case m := <-dead:
		reason := m.Metadata.Get(bus.MetaDeadLetterReason)
		assert.Contains(t, reason, "stage bug")
		assert.NotContains(t, reason, "goroutine", "no stack in the dead letter")
		assert.Equal(t, "3", m.Metadata.Get(bus.MetaDeadLetterAttempts))
	case <-ctx.Done():
		t.Fatal("not dead-lettered")
	}
}

func TestNewRejectsUnknownTransportNamingTheKey(t *testing.T) {
	cfg := bus.DefaultConfig()
	cfg.Transports["hub"] = map[string]any{"type": "kafka"}
	_, err := bus.New(cfg, quiet)
	require.ErrorIs(t, err, bus.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "transports.hub.type")
	assert.Contains(t, err.Error(), "gochannel", "lists the known types")
	assert.Contains(t, err.Error(), "memory")
}
