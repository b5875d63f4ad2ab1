package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/middleware"
)

// transportsUnderTest is a dispatch handler over fake transports: each name
// maps to a behaviour, and every call is recorded.
type transportsUnderTest struct {
	mu       sync.Mutex
	behave   map[string]func(ctx context.Context) error
	calls    []string
	received map[string][]string // transport → message UUIDs published
}

func newTransports() *transportsUnderTest {
	ok := func(context.Context) error { return nil }
	return &transportsUnderTest{
		behave:   map[string]func(context.Context) error{"redis": ok, "http": ok},
		received: map[string][]string{},
	}
}

func (tr *transportsUnderTest) set(name string, f func(ctx context.Context) error) {
	tr.mu.Lock()
	tr.behave[name] = f
	tr.mu.Unlock()
}

func (tr *transportsUnderTest) handler(m *message.Message) ([]*message.Message, error) {
	name := m.Metadata.Get("transport")
	tr.mu.Lock()
	f := tr.behave[name]
	tr.calls = append(tr.calls, name)
	tr.mu.Unlock()
	if err := f(m.Context()); err != nil {
		return nil, err
	}
	tr.mu.Lock()
	tr.received[name] = append(tr.received[name], m.UUID)
	tr.mu.Unlock()
	return nil, nil
}

func (tr *transportsUnderTest) callCount(name string) (n int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, c := range tr.calls {
		if c == name {
			n++
		}
	}
	return n
}

func onRedis(uuid, key string) *message.Message {
	m := message.NewMessage(uuid, nil)
	m.Metadata.Set("event_key", key)
	m.Metadata.Set("transport", "redis")
	return m
}

var errDown = errors.New("connection refused")

// withBreaker is cfg with a failure threshold and a bound of keys in
// cooldown (0: the default).
func withBreaker(cfg middleware.FallbackConfig, threshold uint32, cooldownKeys int) middleware.FallbackConfig {
	cfg.FailureThreshold, cfg.CooldownKeys = threshold, cooldownKeys
	return cfg
}

func fallbackConfig() middleware.FallbackConfig {
	return middleware.FallbackConfig{Enabled: true, To: "http", PublishTimeout: 200 * time.Millisecond, Cooldown: time.Second}
}

func TestFallbackOnErrorPublishesOnTheFallback(t *testing.T) {
	reg := prometheus.NewRegistry()
	tr := newTransports()
	tr.set("redis", func(context.Context) error { return errDown })
	f, err := middleware.NewFallback(fallbackConfig(), middleware.WithRegisterer(reg))
	require.NoError(t, err)
	h := f.Middleware(tr.handler)

	m := onRedis("1", "conv-1")
	_, err = h(m)
	require.NoError(t, err)
	assert.Equal(t, []string{"redis", "http"}, tr.calls)
	assert.Equal(t, []string{"1"}, tr.received["http"])
	assert.Equal(t, "http", m.Metadata.Get("transport"), "the metadata says where it went")
	assert.Equal(t, 1.0, fallbackCount(t, reg, "error"))
}

func fallbackCount(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "switchyard_fallbacks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no switchyard_fallbacks_total{reason=%q}", reason)
	return 0
}

func TestFallbackOnTimeoutWithinTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newTransports()
		// A blackholed transport: answers only when the context ends.
		tr.set("redis", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		var reason string
		f, err := middleware.NewFallback(fallbackConfig(),
			middleware.WithOnFallback(func(_ *message.Message, _, _, r string, _ error) { reason = r }))
		require.NoError(t, err)

		start := time.Now()
		_, err = f.Middleware(tr.handler)(onRedis("1", "conv-1"))
		require.NoError(t, err)
		took := time.Since(start)
		assert.GreaterOrEqual(t, took, 200*time.Millisecond, "never before the publish deadline")
		assert.LessOrEqual(t, took, 210*time.Millisecond, "at most one slot (timeout/20, up to 10ms) after it")
		assert.Equal(t, middleware.ReasonTimeout, reason)
		assert.Equal(t, []string{"1"}, tr.received["http"])
	})
}

func TestFallbackDeadlineOfACancelableContextIsExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newTransports()
		tr.set("redis", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		f, err := middleware.NewFallback(fallbackConfig())
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background()) // a PublishSync caller's
		defer cancel()
		m := onRedis("1", "conv-1")
		m.SetContext(ctx)
		start := time.Now()
		_, err = f.Middleware(tr.handler)(m)
		require.NoError(t, err)
		assert.Equal(t, 200*time.Millisecond, time.Since(start))
		assert.Equal(t, ctx, m.Context(), "the message gets its own context back")
	})
}

func TestFallbackBreakerOpensAndProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newTransports()
		tr.set("redis", func(context.Context) error { return errDown })
		var reasons []string
		f, err := middleware.NewFallback(
			middleware.FallbackConfig{Enabled: true, To: "http", Cooldown: time.Millisecond, FailureThreshold: 3, ProbeInterval: time.Second},
			middleware.WithOnFallback(func(_ *message.Message, _, _, r string, _ error) { reasons = append(reasons, r) }))
		require.NoError(t, err)
		h := f.Middleware(tr.handler)
		publish := func(uuid string) {
			t.Helper()
			// Distinct keys: the cooldown is not what keeps them off redis.
			_, err := h(onRedis(uuid, "key-"+uuid))
			require.NoError(t, err)
		}

		for i := range 10 {
			publish("a" + string(rune('0'+i)))
		}
		assert.Equal(t, 3, tr.callCount("redis"), "after 3 failures in a row the breaker stops trying redis")
		assert.Equal(t, 10, tr.callCount("http"))
		assert.Equal(t, []string{"error", "error", "error"}, reasons[:3])
		assert.Equal(t, middleware.ReasonBreakerOpen, reasons[9])
		assert.Equal(t, "open", f.BreakerStates()["redis"])

		tr.set("redis", func(context.Context) error { return nil })
		time.Sleep(time.Second + time.Millisecond) // past the probe interval, on the fake clock
		publish("probe")
		assert.Equal(t, 4, tr.callCount("redis"), "one probe once the interval passed")
		assert.Equal(t, "closed", f.BreakerStates()["redis"], "a good probe closes the breaker")
		publish("after")
		assert.Equal(t, []string{"probe", "after"}, tr.received["redis"])
	})
}

// A success resets the failures in a row: failures with successes between
// them never open the breaker, however many, and threshold in a row do.
func TestFallbackBreakerCountsFailuresInARow(t *testing.T) {
	tr := newTransports()
	fail := true
	tr.set("redis", func(context.Context) error {
		if fail {
			return errDown
		}
		return nil
	})
	f, err := middleware.NewFallback(
		middleware.FallbackConfig{Enabled: true, To: "http", Cooldown: time.Millisecond, FailureThreshold: 3, ProbeInterval: time.Hour})
	require.NoError(t, err)
	h := f.Middleware(tr.handler)
	n := 0
	publish := func(ok bool) {
		t.Helper()
		n++
		fail = !ok
		_, err := h(onRedis(fmt.Sprint(n), fmt.Sprint("key-", n))) // distinct keys: no cooldown
		require.NoError(t, err)
	}
	for range 10 {
		publish(false)
		publish(false)
		publish(true)
	}
	assert.Equal(t, "closed", f.BreakerStates()["redis"], "never 3 failures in a row")
	assert.Equal(t, 30, tr.callCount("redis"), "every publish tried redis")
	publish(false)
	publish(false)
	publish(false)
	assert.Equal(t, "open", f.BreakerStates()["redis"], "3 in a row")
	publish(true)
	assert.Equal(t, 33, tr.callCount("redis"), "open: not tried")
}

// A publish that fails after its breaker opened and went half-open is of
// an older generation: its failure is not taken for the probe's, and the
// probe still reaches the transport.
func TestFallbackStaleFailureIsNotTheProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var mu sync.Mutex
		probes := 0
		handler := func(m *message.Message) ([]*message.Message, error) {
			if m.Metadata.Get("transport") == "http" {
				return nil, nil
			}
			switch m.UUID {
			case "slow":
				<-release
				return nil, errDown
			case "b", "c":
				return nil, errDown
			}
			mu.Lock()
			probes++
			mu.Unlock()
			return nil, nil
		}
		f, err := middleware.NewFallback(
			middleware.FallbackConfig{Enabled: true, To: "http", PublishTimeout: 5 * time.Second, Cooldown: time.Millisecond, FailureThreshold: 2, ProbeInterval: time.Second})
		require.NoError(t, err)
		h := f.Middleware(handler)

		slowDone := make(chan error, 1)
		go func() {
			_, err := h(onRedis("slow", "k-slow"))
			slowDone <- err
		}()
		synctest.Wait() // the slow publish is in the transport, the breaker clean
		for _, id := range []string{"b", "c"} {
			_, err := h(onRedis(id, "k-"+id))
			require.NoError(t, err, "fell back")
		}
		assert.Equal(t, "open", f.BreakerStates()["redis"])
		time.Sleep(time.Second + time.Millisecond)
		assert.Equal(t, "half-open", f.BreakerStates()["redis"])

		close(release) // the slow publish fails now, half-open
		require.NoError(t, <-slowDone, "fell back")
		assert.Equal(t, "half-open", f.BreakerStates()["redis"], "an old failure is no probe")

		_, err = h(onRedis("probe", "k-probe"))
		require.NoError(t, err)
		assert.Equal(t, 1, probes, "the probe reached redis")
		assert.Equal(t, "closed", f.BreakerStates()["redis"])
	})
}

// A publish that panics counts as a failure, as gobreaker counts one, and
// the panic goes on up.
func TestFallbackPanicCountsAsAFailure(t *testing.T) {
	f, err := middleware.NewFallback(
		middleware.FallbackConfig{Enabled: true, To: "http", Cooldown: time.Millisecond, FailureThreshold: 2, ProbeInterval: time.Hour})
	require.NoError(t, err)
	h := f.Middleware(func(m *message.Message) ([]*message.Message, error) {
		if m.Metadata.Get("transport") == "redis" {
			panic("transport bug")
		}
		return nil, nil
	})
	for i := range 2 {
		assert.PanicsWithValue(t, "transport bug", func() { _, _ = h(onRedis(fmt.Sprint(i), fmt.Sprint("k", i))) })
	}
	assert.Equal(t, "open", f.BreakerStates()["redis"], "two panics in a row")
}

func TestFallbackCooldownKeepsTheKeyOnTheFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newTransports()
		fails := true
		tr.set("redis", func(context.Context) error {
			if fails {
				return errDown
			}
			return nil
		})
		f, err := middleware.NewFallback(fallbackConfig())
		require.NoError(t, err)
		h := f.Middleware(tr.handler)

		_, err = h(onRedis("1", "conv-1"))
		require.NoError(t, err)
		fails = false
		_, err = h(onRedis("2", "conv-1"))
		require.NoError(t, err)
		_, err = h(onRedis("3", "conv-2"))
		require.NoError(t, err)
		assert.Equal(t, []string{"1", "2"}, tr.received["http"], "conv-1 stays on http while its cooldown lasts")
		assert.Equal(t, []string{"3"}, tr.received["redis"], "other keys are not held")
		assert.Equal(t, 1, f.Held())

		time.Sleep(time.Second)
		_, err = h(onRedis("4", "conv-1"))
		require.NoError(t, err)
		assert.Equal(t, []string{"3", "4"}, tr.received["redis"], "after the cooldown conv-1 returns")
		assert.Equal(t, 0, f.Held())
	})
}

func TestFallbackWhenEveryTransportFails(t *testing.T) {
	tr := newTransports()
	tr.set("redis", func(context.Context) error { return errDown })
	tr.set("http", func(context.Context) error { return errors.New("503 Service Unavailable") })
	f, err := middleware.NewFallback(fallbackConfig())
	require.NoError(t, err)
	m := onRedis("1", "conv-1")
	_, err = f.Middleware(tr.handler)(m)
	require.Error(t, err)
	assert.ErrorIs(t, err, errDown)
	assert.True(t, strings.Contains(err.Error(), "503"), "both failures are in the error: %v", err)
	assert.Equal(t, "redis", m.Metadata.Get("transport"), "a retry starts from the routed transport")
}

func TestFallbackPassesThrough(t *testing.T) {
	cases := []struct {
		name string
		cfg  middleware.FallbackConfig
		m    func() *message.Message
	}{
		{"disabled", middleware.FallbackConfig{To: "http"}, func() *message.Message { return onRedis("1", "k") }},
		{"already on the fallback", fallbackConfig(), func() *message.Message {
			m := onRedis("1", "k")
			m.Metadata.Set("transport", "http")
			return m
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTransports()
			tr.set("redis", func(context.Context) error { return errDown })
			tr.set("http", func(context.Context) error { return errDown })
			f, err := middleware.NewFallback(tc.cfg)
			require.NoError(t, err)
			_, err = f.Middleware(tr.handler)(tc.m())
			require.ErrorIs(t, err, errDown)
			assert.Len(t, tr.calls, 1, "tried once, no fallback")
		})
	}
}

func TestFallbackCallerCancellationIsNotAFailure(t *testing.T) {
	tr := newTransports()
	tr.set("redis", func(ctx context.Context) error { return ctx.Err() })
	f, err := middleware.NewFallback(withBreaker(fallbackConfig(), 1, 0))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := onRedis("1", "k")
	m.SetContext(ctx)
	_, err = f.Middleware(tr.handler)(m)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 0, tr.callCount("http"))
	assert.Equal(t, "closed", f.BreakerStates()["redis"], "a cancellation does not trip the breaker")
}

func TestFallbackUpdate(t *testing.T) {
	f, err := middleware.NewFallback(fallbackConfig())
	require.NoError(t, err)
	require.Error(t, f.Update(middleware.FallbackConfig{Enabled: true}), "enabled without a target")
	assert.Equal(t, "http", f.Config().To, "the old config stays")
	require.NoError(t, f.Update(middleware.FallbackConfig{Enabled: false, To: "http"}))
	assert.False(t, f.Config().Enabled)
	assert.Equal(t, 500*time.Millisecond, f.Config().PublishTimeout)
}

func TestFallbackBusyKeyComesBackAfterTheProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newTransports()
		tr.set("redis", func(context.Context) error { return errDown })
		f, err := middleware.NewFallback(
			middleware.FallbackConfig{Enabled: true, To: "http", Cooldown: 300 * time.Millisecond, FailureThreshold: 1, ProbeInterval: time.Second})
		require.NoError(t, err)
		h := f.Middleware(tr.handler)

		// One key publishing every 50ms: its first publish fails and trips
		// the breaker; the rest fall back because it is open, which must not
		// hold the key, or it would never probe redis again.
		healed := false
		for i := 0; i < 60; i++ {
			if i == 10 {
				tr.set("redis", func(context.Context) error { return nil })
				healed = true
			}
			_, err := h(onRedis(strconv.Itoa(i), "conv-busy"))
			require.NoError(t, err)
			time.Sleep(50 * time.Millisecond)
		}
		require.True(t, healed)
		assert.Equal(t, "closed", f.BreakerStates()["redis"])
		got := tr.received["redis"]
		require.NotEmpty(t, got, "the busy key returned to redis")
		first, _ := strconv.Atoi(got[0])
		// Failed at 0s, probe once the breaker has been open 1s: by 1.05s.
		assert.LessOrEqual(t, first, 21, "the key came back with the first probe")
	})
}

func BenchmarkFallbackHealthy(b *testing.B) {
	f, err := middleware.NewFallback(fallbackConfig())
	require.NoError(b, err)
	h := f.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	m := onRedis("1", "conv-1")
	b.ReportAllocs()
	for b.Loop() {
		m.Metadata.Set("transport", "redis")
		if _, err := h(m); err != nil {
			b.Fatal(err)
		}
	}
}

// A transport that derives a context from an async publish's (the HTTP
// publisher's context.WithTimeout) registers with the shared deadline
// rather than starting a goroutine per publish, and the deadline still ends
// what it derived.
func TestFallbackSharedDeadlineStartsNoGoroutinePerPublish(t *testing.T) {
	const publishes = 1000
	tr := newTransports()
	var (
		mu      sync.Mutex
		derived []context.Context
		cancels []context.CancelFunc
	)
	tr.set("redis", func(ctx context.Context) error {
		d, cancel := context.WithTimeout(ctx, time.Hour)
		mu.Lock()
		derived, cancels = append(derived, d), append(cancels, cancel)
		mu.Unlock()
		return nil
	})
	cfg := fallbackConfig()
	cfg.PublishTimeout = 50 * time.Millisecond
	f, err := middleware.NewFallback(cfg)
	require.NoError(t, err)
	h := f.Middleware(tr.handler)
	t.Cleanup(func() {
		for _, cancel := range cancels {
			cancel()
		}
	})

	baseline := runtime.NumGoroutine()
	for i := range publishes {
		_, err := h(onRedis(strconv.Itoa(i), "conv-"+strconv.Itoa(i)))
		require.NoError(t, err)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), baseline+2,
		"%d publishes under the shared deadline must not start a goroutine each", publishes)
	for i, d := range derived {
		select {
		case <-d.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("context %d derived under the shared deadline outlived it", i)
		}
		require.ErrorIs(t, d.Err(), context.DeadlineExceeded)
	}
}

// BenchmarkFallbackCooldown measures the cooldown set on the path of every
// message, from lanes publishing at once: held=none with no key held (the
// steady state), held=some with one key held (during an incident, the keys
// that are not held), held=all with every key published held (each goes
// to the fallback).
func BenchmarkFallbackCooldown(b *testing.B) {
	const keys = 1024
	for _, held := range []string{"none", "some", "all"} {
		b.Run("held="+held, func(b *testing.B) {
			cfg := fallbackConfig()
			cfg.Cooldown = time.Hour
			f, err := middleware.NewFallback(withBreaker(cfg, math.MaxUint32, 0))
			require.NoError(b, err)
			var failing atomic.Bool
			failing.Store(true)
			h := f.Middleware(func(m *message.Message) ([]*message.Message, error) {
				if failing.Load() && m.Metadata.Get("transport") == "redis" {
					return nil, errDown
				}
				return nil, nil
			})
			switch held {
			case "some":
				_, err = h(onRedis("0", "held"))
				require.NoError(b, err)
			case "all":
				for i := range keys {
					_, err = h(onRedis("0", "conv-"+strconv.Itoa(i)))
					require.NoError(b, err)
				}
			}
			failing.Store(false)
			var worker atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := int(worker.Add(1))
				msgs := make([]*message.Message, 64)
				for i := range msgs {
					msgs[i] = onRedis("0", "conv-"+strconv.Itoa((w*len(msgs)+i)%keys))
				}
				for i := 0; pb.Next(); i++ {
					m := msgs[i%len(msgs)]
					m.Metadata.Set("transport", "redis")
					if _, err := h(m); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// Past CooldownKeys the key held longest ago is let go; the latest stay.
func TestFallbackCooldownKeysLetTheOldestGo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newTransports()
		tr.set("redis", func(context.Context) error { return errDown })
		f, err := middleware.NewFallback(withBreaker(fallbackConfig(), 100, 2))
		require.NoError(t, err)
		h := f.Middleware(tr.handler)
		for i, key := range []string{"conv-1", "conv-2", "conv-3"} {
			_, err = h(onRedis(strconv.Itoa(i), key))
			require.NoError(t, err)
		}
		assert.Equal(t, 2, f.Held())

		tr.set("redis", func(context.Context) error { return nil })
		for i, key := range []string{"conv-1", "conv-2", "conv-3"} {
			_, err = h(onRedis(strconv.Itoa(10+i), key))
			require.NoError(t, err)
		}
		assert.Equal(t, []string{"10"}, tr.received["redis"], "conv-1 was let go")
		assert.Equal(t, []string{"0", "1", "2", "11", "12"}, tr.received["http"], "conv-2 and conv-3 are held")
	})
}
