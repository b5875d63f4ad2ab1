package bus_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/coalesce"
)

// delivered collects what the memory transport hands to Handle, per topic.
type delivered struct {
	mu  sync.Mutex
	got []string // "topic type key payload@ms"
	at  time.Time
}

func (d *delivered) handler(topic string) message.NoPublishHandlerFunc {
	return func(m *message.Message) error {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.got = append(d.got, topic+" "+m.Metadata.Get(bus.MetaEventType)+" "+m.Metadata.Get(bus.MetaEventKey)+" "+
			string(m.Payload)+"@"+strconv.Itoa(int(time.Since(d.at)/time.Millisecond)))
		return nil
	}
}

func (d *delivered) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.got...)
}

// runBus starts b in the bubble and returns a func that closes it and
// checks Close and Run.
func runBus(t *testing.T, b *bus.Bus) (closeBus func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	<-b.Running()
	return func() error {
		err := b.Close()
		require.NoError(t, <-done)
		return err
	}
}

// The pipeline coalesces typing per topic and key, on the bubble's clock:
// the leading event at once, the latest at the window's end; other types
// untouched and in order.
func TestBusCoalescesTyping(t *testing.T) {
	type pub struct {
		at                 time.Duration
		topic, typ, key, p string
	}
	typing := func(at time.Duration, key, p string) pub { return pub{at, "events:chat", "typing", key, p} }
	tests := []struct {
		name      string
		pubs      []pub
		want      []string
		unordered bool // keys apart, one instant's trailing events come in no set order
		saved     float64
	}{
		{
			name: "10 typing events within 50ms: 2 published, the trailing one with the 10th payload",
			pubs: func() []pub {
				var ps []pub
				for i := range 10 {
					ps = append(ps, typing(time.Duration(i)*5*time.Millisecond, "r1", "t"+strconv.Itoa(i)))
				}
				return ps
			}(),
			want:  []string{"events:chat typing r1 t0@0", "events:chat typing r1 t9@100"},
			saved: 8,
		},
		{
			name: "1 typing event: 1 published",
			pubs: []pub{typing(0, "r1", "t0")},
			want: []string{"events:chat typing r1 t0@0"},
		},
		{
			name: "other event types pass untouched and in order",
			pubs: []pub{
				typing(0, "r1", "t0"),
				{0, "events:chat", "chat_message", "r1", "m0"},
				typing(time.Millisecond, "r1", "t1"),
				{time.Millisecond, "events:chat", "chat_message", "r1", "m1"},
				typing(2*time.Millisecond, "r1", "t2"),
				{2 * time.Millisecond, "events:chat", "chat_message", "r1", "m2"},
			},
			want: []string{
				"events:chat typing r1 t0@0", "events:chat chat_message r1 m0@0", "events:chat chat_message r1 m1@1",
				"events:chat chat_message r1 m2@2", "events:chat typing r1 t2@100",
			},
			saved: 1,
		},
		{
			name: "different keys, and one key on two topics, never coalesce with each other",
			pubs: []pub{
				typing(0, "r1", "a0"), typing(0, "r2", "b0"), {0, "events:other", "typing", "r1", "c0"},
				typing(time.Millisecond, "r1", "a1"), typing(time.Millisecond, "r2", "b1"),
				{time.Millisecond, "events:other", "typing", "r1", "c1"},
			},
			want: []string{
				"events:chat typing r1 a0@0", "events:chat typing r2 b0@0", "events:other typing r1 c0@0",
				"events:chat typing r1 a1@100", "events:chat typing r2 b1@100", "events:other typing r1 c1@100",
			},
			unordered: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				b := newBus(t, nil, bus.WithRegisterer(reg))
				d := &delivered{at: time.Now()}
				require.NoError(t, b.Handle("chat", "events:chat", d.handler("events:chat")))
				require.NoError(t, b.Handle("other", "events:other", d.handler("events:other")))
				closeBus := runBus(t, b)
				for _, p := range tt.pubs {
					time.Sleep(p.at - time.Since(d.at))
					require.NoError(t, b.Publish(p.topic, bus.NewMessage(p.typ, p.key, []byte(p.p))))
				}
				time.Sleep(time.Second)
				synctest.Wait()
				if tt.unordered {
					assert.ElementsMatch(t, tt.want, d.list())
				} else {
					assert.Equal(t, tt.want, d.list())
				}
				assert.Equal(t, tt.saved, gauge(t, reg, "events_coalesced_total", "typing"))
				require.NoError(t, closeBus())
			})
		})
	}
}

// gauge returns the value of a counter or gauge of reg, with an
// event_type label if eventType is not empty.
func gauge(t *testing.T, reg *prometheus.Registry, name, eventType string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "event_type" && l.GetValue() != eventType {
					continue
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// Typing at 20/s for 1s with a 100ms window: 10 or 11 published, the last
// state last.
func TestBusCoalescesSteadyTyping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, nil)
		d := &delivered{at: time.Now()}
		require.NoError(t, b.Handle("chat", "events:chat", d.handler("events:chat")))
		closeBus := runBus(t, b)
		for i := range 20 {
			time.Sleep(time.Duration(i)*50*time.Millisecond - time.Since(d.at))
			require.NoError(t, b.Publish("events:chat", bus.NewMessage("typing", "r1", []byte("t"+strconv.Itoa(i)))))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		got := d.list()
		assert.True(t, len(got) == 10 || len(got) == 11, "published %d: %v", len(got), got)
		assert.Contains(t, got[len(got)-1], " t19@1000")
		require.NoError(t, closeBus())
	})
}

// PublishSync of an event coalesced away returns nil at once; that of the
// event left pending returns once it was published, at the window's end.
func TestBusCoalescedPublishSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, nil)
		d := &delivered{at: time.Now()}
		require.NoError(t, b.Handle("chat", "events:chat", d.handler("events:chat")))
		closeBus := runBus(t, b)
		ctx := context.Background()
		require.NoError(t, b.PublishSync(ctx, "events:chat", bus.NewMessage("typing", "r1", []byte("t0"))))
		assert.Zero(t, time.Since(d.at), "the leading event at once")

		pending := make(chan error, 1)
		go func() { pending <- b.PublishSync(ctx, "events:chat", bus.NewMessage("typing", "r1", []byte("t1"))) }()
		synctest.Wait()
		superseded := make(chan error, 1)
		go func() { superseded <- b.PublishSync(ctx, "events:chat", bus.NewMessage("typing", "r1", []byte("t2"))) }()
		synctest.Wait()
		assert.NoError(t, receive(t, pending), "t1 was superseded by t2")
		assert.Zero(t, time.Since(d.at))

		select {
		case err := <-superseded:
			t.Fatalf("t2 returned %v before its window ended", err)
		default:
		}
		assert.NoError(t, receive(t, superseded))
		assert.Equal(t, 100*time.Millisecond, time.Since(d.at), "t2 published at the window's end")
		synctest.Wait() // for Handle to get it
		assert.Equal(t, []string{"events:chat typing r1 t0@0", "events:chat typing r1 t2@100"}, d.list())
		require.NoError(t, closeBus())
	})
}

func receive(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no result")
		return nil
	}
}

// A trailing event that its transport refuses is retried and dead-lettered
// like any other, and its PublishSync gets the error.
func TestBusTrailingEventIsRetriedAndDeadLettered(t *testing.T) {
	errDown := errors.New("hub is down")
	b := newBus(t, func(c *bus.Config) {
		c.Transports["failing"] = map[string]any{"type": "failing"}
		c.Routing.Baseline = "failing"
		c.Consume.From = []string{"memory"} // where the dead letters are
		c.Bus.MaxRetries = 2
		c.Bus.RetryBackoff = time.Millisecond
		c.Coalescing.Window = 50 * time.Millisecond
	}, bus.WithRegistry(failingRegistry(errDown)))
	dead := make(chan string, 10)
	require.NoError(t, b.Handle("dlq", "dead_letter", func(m *message.Message) error {
		dead <- string(m.Payload) + " after " + m.Metadata.Get(bus.MetaDeadLetterAttempts)
		return nil
	}))
	start(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, b.Publish("events:chat", bus.NewMessage("typing", "r1", []byte("t0"))))
	err := b.PublishSync(ctx, "events:chat", bus.NewMessage("typing", "r1", []byte("t1")))
	require.ErrorIs(t, err, bus.ErrDeadLettered)
	require.ErrorIs(t, err, errDown)
	var got []string
	for range 2 {
		select {
		case d := <-dead:
			got = append(got, d)
		case <-time.After(10 * time.Second):
			t.Fatalf("dead-lettered: %v, want 2", got)
		}
	}
	assert.ElementsMatch(t, []string{"t0 after 3", "t1 after 3"}, got, "the leading and the trailing event, each tried 1+2 times")
}

// Close delivers every pending trailing event before it returns: none lost.
func TestBusCloseFlushesCoalesced(t *testing.T) {
	const keys, perKey = 200, 10
	b := newBus(t, func(c *bus.Config) { c.Coalescing.Window = time.Hour / 2 })
	var (
		mu   sync.Mutex
		last = map[string][]string{}
	)
	require.NoError(t, b.Handle("chat", "events:chat", func(m *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		k := m.Metadata.Get(bus.MetaEventKey)
		last[k] = append(last[k], string(m.Payload))
		return nil
	}))
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	<-b.Running()
	for i := range perKey {
		for k := range keys {
			require.NoError(t, b.Publish("events:chat", bus.NewMessage("typing", "r"+strconv.Itoa(k), []byte(strconv.Itoa(i)))))
		}
	}
	require.NoError(t, b.Close())
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, last, keys)
	for k := range keys {
		assert.Equal(t, []string{"0", strconv.Itoa(perKey - 1)}, last["r"+strconv.Itoa(k)], "key %d: leading, then the last state", k)
	}
}

func TestBusCoalescingOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		b := newBus(t, func(c *bus.Config) { c.Coalescing.Enabled = false }, bus.WithRegisterer(reg))
		d := &delivered{at: time.Now()}
		require.NoError(t, b.Handle("chat", "events:chat", d.handler("events:chat")))
		closeBus := runBus(t, b)
		for i := range 10 {
			require.NoError(t, b.Publish("events:chat", bus.NewMessage("typing", "r1", []byte(strconv.Itoa(i)))))
		}
		synctest.Wait()
		assert.Len(t, d.list(), 10)
		families, err := reg.Gather()
		require.NoError(t, err)
		for _, f := range families {
			assert.NotEqual(t, "events_coalesced_total", f.GetName(), "no coalescing metrics while it is off")
		}
		require.NoError(t, closeBus())
	})
}

func TestBusCoalescingWindowTooLong(t *testing.T) {
	cfg := bus.DefaultConfig()
	cfg.Coalescing.Window = time.Hour
	_, err := bus.New(cfg, quiet)
	require.ErrorIs(t, err, bus.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "coalescing.window: must be at most "+coalesce.MaxWindow.String())
}

// From the environment: EVENT_COALESCING_ENABLED and _WINDOW_MS.
func TestBusCoalescingFromEnv(t *testing.T) {
	t.Setenv("EVENT_COALESCING_ENABLED", "true")
	t.Setenv("EVENT_COALESCING_WINDOW_MS", "250")
	cfg, err := bus.LoadConfig(bus.FromEnv())
	require.NoError(t, err)
	synctest.Test(t, func(t *testing.T) {
		b, err := bus.New(cfg, quiet)
		require.NoError(t, err)
		d := &delivered{at: time.Now()}
		require.NoError(t, b.Handle("chat", "events:chat", d.handler("events:chat")))
		closeBus := runBus(t, b)
		for i := range 3 {
			require.NoError(t, b.Publish("events:chat", bus.NewMessage("typing", "r1", []byte(strconv.Itoa(i)))))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"events:chat typing r1 0@0", "events:chat typing r1 2@250"}, d.list())
		require.NoError(t, closeBus())
	})
}

// Reload changes the coalescing window of a running bus: typing at 20/s for
// 1s with the window raised from 100ms to 250ms publishes 4 or 5 events,
// not 10 or 11.
func TestBusCoalescingWindowReloads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, nil)
		d := &delivered{at: time.Now()}
		require.NoError(t, b.Handle("chat", "events:chat", d.handler("events:chat")))
		closeBus := runBus(t, b)
		next := b.Config()
		next.Coalescing.Window = 250 * time.Millisecond
		require.NoError(t, b.Reload(next))
		assert.Equal(t, 250*time.Millisecond, b.Config().Coalescing.Window)
		for i := range 20 {
			time.Sleep(time.Duration(i)*50*time.Millisecond - time.Since(d.at))
			require.NoError(t, b.Publish("events:chat", bus.NewMessage("typing", "r1", []byte("t"+strconv.Itoa(i)))))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		got := d.list()
		assert.True(t, len(got) == 4 || len(got) == 5, "published %d: %v", len(got), got)
		assert.Contains(t, got[len(got)-1], " t19@")
		require.NoError(t, closeBus())
	})
}
