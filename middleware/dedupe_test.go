package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/middleware"
)

// defaultMaxKeys is the default of DedupeConfig.MaxKeys.
const defaultMaxKeys = 100000

var errDedupeHandler = errors.New("handler failed")

// dedupeRig runs messages through a Dedupe's Middleware into a handler
// that counts its calls per UUID and fails when told to.
type dedupeRig struct {
	d     *middleware.Dedupe
	reg   *prometheus.Registry
	h     message.HandlerFunc
	mu    sync.Mutex
	calls map[string]int
	fail  map[string]bool // the next call for the UUID fails
}

func newDedupeRig(t *testing.T, cfg middleware.DedupeConfig, opts ...middleware.Option) *dedupeRig {
	t.Helper()
	r := &dedupeRig{reg: prometheus.NewRegistry(), calls: map[string]int{}, fail: map[string]bool{}}
	d, err := middleware.NewDedupe(cfg, append(opts, middleware.WithRegisterer(r.reg))...)
	require.NoError(t, err)
	r.d = d
	r.h = d.Middleware(func(m *message.Message) ([]*message.Message, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls[m.UUID]++
		if r.fail[m.UUID] {
			delete(r.fail, m.UUID)
			return nil, errDedupeHandler
		}
		return nil, nil
	})
	return r
}

// deliver hands a message with uuid to the middleware and says what became
// of it: "handled", "failed" (the handler's error, a nack) or "dropped"
// (acked without reaching the handler).
func (r *dedupeRig) deliver(uuid string, fail bool) string {
	r.mu.Lock()
	before := r.calls[uuid]
	if fail {
		r.fail[uuid] = true
	}
	r.mu.Unlock()
	_, err := r.h(message.NewMessage(uuid, nil))
	r.mu.Lock()
	called := r.calls[uuid] > before
	delete(r.fail, uuid) // for this delivery only
	r.mu.Unlock()
	switch {
	case errors.Is(err, errDedupeHandler) && called:
		return "failed"
	case err == nil && called:
		return "handled"
	case err == nil && !called:
		return "dropped"
	}
	return fmt.Sprintf("called %t, error %v", called, err)
}

// dedupeMetric is the value of the unlabelled metric name in reg.
func dedupeMetric(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		require.Len(t, f.GetMetric(), 1, name)
		m := f.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// dedupeExposition is the text exposition of the named metric families
// in reg, in the order named.
func dedupeExposition(t *testing.T, reg prometheus.Gatherer, names ...string) string {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	var b strings.Builder
	for _, name := range names {
		for _, f := range families {
			if f.GetName() == name {
				_, err := expfmt.MetricFamilyToText(&b, f)
				require.NoError(t, err)
			}
		}
	}
	return b.String()
}

const dedupeTTL = time.Minute

// The rules of Dedupe, case by case, each in a bubble so that the TTL
// passes exactly.
func TestDedupe(t *testing.T) {
	type delivery struct {
		at   time.Duration // since the start
		uuid string
		fail bool   // the handler fails, if it is called
		want string // handled, failed or dropped
	}
	tests := []struct {
		name          string
		maxKeys       int
		key           func(*message.Message) string
		deliveries    []delivery
		wantLen       int
		wantEvictions float64
	}{
		{
			name: "a duplicate within the TTL is acked and dropped",
			deliveries: []delivery{
				{at: 0, uuid: "a", want: "handled"},
				{at: time.Second, uuid: "a", want: "dropped"},
				{at: dedupeTTL - time.Nanosecond, uuid: "a", want: "dropped"},
			},
			wantLen: 1,
		},
		{
			name: "once the TTL has passed it is handled again, and remembered anew",
			deliveries: []delivery{
				{at: 0, uuid: "a", want: "handled"},
				{at: dedupeTTL, uuid: "a", want: "handled"},
				{at: 2*dedupeTTL - time.Nanosecond, uuid: "a", want: "dropped"},
				{at: 2 * dedupeTTL, uuid: "a", want: "handled"},
			},
			wantLen: 1,
		},
		{
			name: "the TTL counts from the success, not from the first delivery",
			deliveries: []delivery{
				{at: 0, uuid: "a", fail: true, want: "failed"},
				{at: dedupeTTL / 2, uuid: "a", want: "handled"},
				{at: dedupeTTL, uuid: "a", want: "dropped"},
				{at: dedupeTTL/2 + dedupeTTL, uuid: "a", want: "handled"},
			},
			wantLen: 1,
		},
		{
			name: "a failed message is not remembered: its redelivery is handled",
			deliveries: []delivery{
				{at: 0, uuid: "a", fail: true, want: "failed"},
				{at: time.Second, uuid: "a", fail: true, want: "failed"},
				{at: 2 * time.Second, uuid: "a", want: "handled"},
				{at: 3 * time.Second, uuid: "a", fail: true, want: "dropped"},
			},
			wantLen: 1,
		},
		{
			name: "UUIDs do not collide",
			deliveries: []delivery{
				{at: 0, uuid: "a", want: "handled"},
				{at: 0, uuid: "b", want: "handled"},
				{at: 0, uuid: "a", want: "dropped"},
				{at: 0, uuid: "b", want: "dropped"},
				{at: 0, uuid: "c", want: "handled"},
			},
			wantLen: 3,
		},
		{
			name: "a message without a key passes, every time",
			deliveries: []delivery{
				{at: 0, uuid: "", want: "handled"},
				{at: 0, uuid: "", want: "handled"},
			},
			wantLen: 0,
		},
		{
			name: "a Key of one's own",
			key: func(m *message.Message) string {
				return strings.TrimSuffix(m.UUID, "-redelivered")
			},
			deliveries: []delivery{
				{at: 0, uuid: "a", want: "handled"},
				{at: 0, uuid: "a-redelivered", want: "dropped"},
			},
			wantLen: 1,
		},
		{
			name:    "at MaxKeys the oldest is forgotten first and passes again",
			maxKeys: 3,
			deliveries: []delivery{
				{at: 0, uuid: "a", want: "handled"},
				{at: 1, uuid: "b", want: "handled"},
				{at: 2, uuid: "c", want: "handled"},
				{at: 3, uuid: "d", want: "handled"}, // evicts a
				{at: 4, uuid: "a", want: "handled"}, // evicts b
				{at: 5, uuid: "c", want: "dropped"}, // the newest three are c, d, a
				{at: 6, uuid: "d", want: "dropped"},
				{at: 7, uuid: "a", want: "dropped"},
				{at: 8, uuid: "b", want: "handled"}, // evicts c
				{at: 9, uuid: "c", want: "handled"}, // evicts d
				{at: 10, uuid: "b", want: "dropped"},
				{at: 11, uuid: "e", fail: true, want: "failed"}, // a failure evicts nothing
				{at: 12, uuid: "a", want: "dropped"},
			},
			wantLen:       3,
			wantEvictions: 4,
		},
		{
			name:    "expired keys make room before any is evicted",
			maxKeys: 2,
			deliveries: []delivery{
				{at: 0, uuid: "a", want: "handled"},
				{at: 1, uuid: "b", want: "handled"},
				{at: dedupeTTL + 1, uuid: "c", want: "handled"},
				{at: dedupeTTL + 2, uuid: "d", want: "handled"},
				{at: dedupeTTL + 3, uuid: "c", want: "dropped"},
			},
			wantLen: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newDedupeRig(t, middleware.DedupeConfig{TTL: dedupeTTL, MaxKeys: tt.maxKeys}, middleware.WithKey(tt.key))
				start := time.Now()
				wantDropped := 0
				for i, dl := range tt.deliveries {
					time.Sleep(dl.at - time.Since(start))
					assert.Equal(t, dl.want, r.deliver(dl.uuid, dl.fail), "delivery %d: %q at %s", i, dl.uuid, dl.at)
					if dl.want == "dropped" {
						wantDropped++
					}
				}
				assert.Equal(t, tt.wantLen, r.d.Len())
				assert.Equal(t, float64(wantDropped), dedupeMetric(t, r.reg, "events_deduplicated_total"))
				assert.Equal(t, tt.wantEvictions, dedupeMetric(t, r.reg, "switchyard_dedupe_evictions_total"))
			})
		})
	}
}

// However many messages come, no more than MaxKeys are remembered, and the
// newest are.
func TestDedupeMemoryIsBounded(t *testing.T) {
	const (
		maxKeys  = 1000
		messages = 10 * maxKeys
		// Eviction takes the oldest first, so the newest are all kept.
		newest = 64
	)
	r := newDedupeRig(t, middleware.DedupeConfig{MaxKeys: maxKeys})
	for i := range messages {
		require.Equal(t, "handled", r.deliver("m-"+strconv.Itoa(i), false))
		if i%97 == 0 {
			require.LessOrEqual(t, r.d.Len(), maxKeys, "after %d messages", i+1)
		}
	}
	assert.Equal(t, maxKeys, r.d.Len())
	assert.Equal(t, float64(messages-maxKeys), dedupeMetric(t, r.reg, "switchyard_dedupe_evictions_total"))
	for i := messages - newest; i < messages; i++ {
		assert.Equal(t, "dropped", r.deliver("m-"+strconv.Itoa(i), false), "one of the newest")
	}
	assert.Equal(t, "handled", r.deliver("m-0", false), "the oldest is forgotten")
}

// A duplicate that arrives while its key is in the handler waits for the
// outcome; it never runs alongside, and it is never lost.
func TestDedupeDuplicateWhileInFlight(t *testing.T) {
	tests := []struct {
		name string
		// first ends the first delivery's handler: it returns, or panics.
		first func() error
		// cancel ends the duplicate's context while it waits.
		cancel    bool
		wantFirst string // what the first delivery returns
		wantCalls int
	}{
		{name: "the first succeeds: the duplicate is dropped", first: func() error { return nil }, wantFirst: "<nil>", wantCalls: 1},
		{name: "the first fails: the duplicate is handled", first: func() error { return errDedupeHandler }, wantFirst: "handler failed", wantCalls: 2},
		{name: "the first panics: the duplicate is handled", first: func() error { panic("boom") }, wantFirst: "panic: boom", wantCalls: 2},
		{name: "the duplicate's context ends: it is nacked, for redelivery", first: func() error { return nil }, cancel: true, wantFirst: "<nil>", wantCalls: 1},
	}
	// Middleware and Handler share the logic; each must get it right.
	wraps := []struct {
		name string
		wrap func(*middleware.Dedupe, message.NoPublishHandlerFunc) message.NoPublishHandlerFunc
	}{
		{"Middleware", func(d *middleware.Dedupe, h message.NoPublishHandlerFunc) message.NoPublishHandlerFunc {
			wrapped := d.Middleware(func(m *message.Message) ([]*message.Message, error) { return nil, h(m) })
			return func(m *message.Message) error { _, err := wrapped(m); return err }
		}},
		{"Handler", (*middleware.Dedupe).Handler},
	}
	for _, tt := range tests {
		for _, w := range wraps {
			t.Run(w.name+"/"+tt.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					d, err := middleware.NewDedupe(middleware.DedupeConfig{})
					require.NoError(t, err)
					release := make(chan struct{})
					var calls, running, overlaps atomic.Int32
					h := w.wrap(d, func(m *message.Message) error {
						if running.Add(1) > 1 {
							overlaps.Add(1)
						}
						defer running.Add(-1)
						if calls.Add(1) == 1 {
							<-release
							return tt.first()
						}
						return nil
					})
					run := func(m *message.Message) (err error) {
						defer func() {
							if p := recover(); p != nil {
								err = fmt.Errorf("panic: %v", p)
							}
						}()
						return h(m)
					}

					firstDone := make(chan error, 1)
					go func() { firstDone <- run(message.NewMessage("u", nil)) }()
					synctest.Wait() // the first is in the handler

					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					dup := message.NewMessage("u", nil)
					dup.SetContext(ctx)
					dupDone := make(chan error, 1)
					go func() { dupDone <- run(dup) }()
					synctest.Wait()
					require.Len(t, dupDone, 0, "the duplicate waits")
					require.EqualValues(t, 1, calls.Load())

					if tt.cancel {
						cancel()
						synctest.Wait()
						err := <-dupDone
						assert.ErrorIs(t, err, middleware.ErrDuplicateInFlight)
						assert.ErrorIs(t, err, context.Canceled)
					}
					close(release)
					synctest.Wait()
					assert.Equal(t, tt.wantFirst, fmt.Sprint(<-firstDone))
					if !tt.cancel {
						assert.NoError(t, <-dupDone, "the duplicate is acked")
					}
					assert.EqualValues(t, tt.wantCalls, calls.Load())
					assert.Zero(t, overlaps.Load(), "never two at once")
					assert.Equal(t, 1, d.Len())
					require.NoError(t, run(message.NewMessage("u", nil)), "a later duplicate")
					assert.EqualValues(t, tt.wantCalls, calls.Load(), "is dropped")
				})
			})
		}
	}
}

// Many goroutines deliver the same UUIDs at once: the handler runs exactly
// once per UUID that succeeds, never twice at once for one UUID, and no
// delivery is lost.
func TestDedupeConcurrentDuplicates(t *testing.T) {
	const (
		workers = 16
		uuids   = 300
	)
	tests := []struct {
		name      string
		failFirst bool // the first call for each UUID fails
	}{
		{name: "every handler succeeds"},
		{name: "the first attempt of every UUID fails", failFirst: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			d, err := middleware.NewDedupe(middleware.DedupeConfig{}, middleware.WithRegisterer(reg))
			require.NoError(t, err)
			var (
				calls, running [uuids]atomic.Int32
				failed         [uuids]atomic.Int32 // deliveries that got the handler's error
				overlaps       atomic.Int32
				otherErrs      atomic.Int32
			)
			h := d.Middleware(func(m *message.Message) ([]*message.Message, error) {
				i, _ := strconv.Atoi(m.UUID)
				if running[i].Add(1) > 1 {
					overlaps.Add(1)
				}
				defer running[i].Add(-1)
				runtime.Gosched() // give a duplicate a chance to overlap
				if calls[i].Add(1) == 1 && tt.failFirst {
					return nil, errDedupeHandler
				}
				return nil, nil
			})
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 7))
					for _, i := range rng.Perm(uuids) {
						_, err := h(message.NewMessage(strconv.Itoa(i), nil))
						switch {
						case errors.Is(err, errDedupeHandler):
							failed[i].Add(1)
						case err != nil:
							otherErrs.Add(1)
						}
					}
				})
			}
			wg.Wait()

			wantCalls, wantFailed := int32(1), int32(0)
			if tt.failFirst {
				wantCalls, wantFailed = 2, 1
			}
			for i := range uuids {
				require.Equal(t, wantCalls, calls[i].Load(), "calls of UUID %d", i)
				require.Equal(t, wantFailed, failed[i].Load(), "failures of UUID %d", i)
			}
			assert.Zero(t, overlaps.Load(), "a UUID in the handler twice at once")
			assert.Zero(t, otherErrs.Load())
			assert.Equal(t, uuids, d.Len())
			assert.Equal(t, float64(workers*uuids-uuids*int(wantCalls)),
				dedupeMetric(t, reg, "events_deduplicated_total"), "every other delivery dropped")
		})
	}
}

// In a Watermill router over gochannel, which blocks each Publish until
// its message is acked and resends nacked ones: duplicates are acked (the
// Publish returns) without reaching the handler, and a failed message is
// redelivered and handled. Middleware and Handler behave alike.
func TestDedupeInARouter(t *testing.T) {
	pubSub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	defer pubSub.Close()
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	require.NoError(t, err)

	var mu sync.Mutex
	calls := map[string]int{} // topic/UUID → calls
	handle := func(topic string) message.NoPublishHandlerFunc {
		return func(m *message.Message) error {
			mu.Lock()
			defer mu.Unlock()
			calls[topic+"/"+m.UUID]++
			if m.UUID == "flaky" && calls[topic+"/"+m.UUID] == 1 {
				return errDedupeHandler
			}
			return nil
		}
	}
	reg := prometheus.NewRegistry()
	withMiddleware, err := middleware.NewDedupe(middleware.DedupeConfig{},
		middleware.WithRegisterer(prometheus.WrapRegistererWith(prometheus.Labels{"handler": "middleware"}, reg)))
	require.NoError(t, err)
	withHandler, err := middleware.NewDedupe(middleware.DedupeConfig{},
		middleware.WithRegisterer(prometheus.WrapRegistererWith(prometheus.Labels{"handler": "handler"}, reg)))
	require.NoError(t, err)
	router.AddConsumerHandler("middleware", "middleware", pubSub, handle("middleware")).
		AddMiddleware(withMiddleware.Middleware)
	router.AddConsumerHandler("handler", "handler", pubSub, withHandler.Handler(handle("handler")))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- router.Run(ctx) }()
	<-router.Running()

	for _, topic := range []string{"middleware", "handler"} {
		for _, uuid := range []string{"u1", "u1", "u2", "flaky", "flaky", "u1"} {
			require.NoError(t, pubSub.Publish(topic, message.NewMessage(uuid, []byte(uuid))), "acked")
		}
	}
	require.NoError(t, router.Close())
	require.NoError(t, <-runDone)

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{
		"middleware/u1": 1, "middleware/u2": 1, "middleware/flaky": 2,
		"handler/u1": 1, "handler/u2": 1, "handler/flaky": 2,
	}, calls)
	assert.Equal(t, `# HELP events_deduplicated_total Messages dropped as duplicates of one already handled.
# TYPE events_deduplicated_total counter
events_deduplicated_total{handler="handler"} 3
events_deduplicated_total{handler="middleware"} 3
`, dedupeExposition(t, reg, "events_deduplicated_total"))
}

// The metrics are registered with the registerer given, and scrape as
// documented.
func TestDedupeMetricsScrape(t *testing.T) {
	var now atomic.Int64
	r := newDedupeRig(t, middleware.DedupeConfig{
		TTL:     dedupeTTL,
		MaxKeys: 2,
	}, middleware.WithNow(func() time.Time { return time.Unix(0, now.Load()) }))
	for _, uuid := range []string{"a", "a", "b", "a", "c", "c"} {
		r.deliver(uuid, false)
	}
	assert.Equal(t, `# HELP events_deduplicated_total Messages dropped as duplicates of one already handled.
# TYPE events_deduplicated_total counter
events_deduplicated_total 3
# HELP switchyard_dedupe_evictions_total Keys forgotten before their TTL because dedupe remembered its maximum of keys.
# TYPE switchyard_dedupe_evictions_total counter
switchyard_dedupe_evictions_total 1
# HELP switchyard_dedupe_keys Keys that dedupe remembers.
# TYPE switchyard_dedupe_keys gauge
switchyard_dedupe_keys 2
`, dedupeExposition(t, r.reg, "events_deduplicated_total", "switchyard_dedupe_evictions_total", "switchyard_dedupe_keys"))

	now.Add(int64(dedupeTTL)) // everything expires
	srv := httptest.NewServer(promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	assert.Contains(t, string(body), "\nevents_deduplicated_total 3\n")
	assert.Contains(t, string(body), "\nswitchyard_dedupe_keys 0\n", "expired keys are not counted")
}

func TestDedupeConfigErrors(t *testing.T) {
	tests := []struct {
		cfg  middleware.DedupeConfig
		want []string
	}{
		{middleware.DedupeConfig{TTL: -time.Second}, []string{"ttl"}},
		{middleware.DedupeConfig{MaxKeys: -1}, []string{"max_keys"}},
		{middleware.DedupeConfig{TTL: -1, MaxKeys: -1}, []string{"ttl", "max_keys"}},
	}
	for _, tt := range tests {
		_, err := middleware.NewDedupe(tt.cfg)
		require.Error(t, err)
		for _, want := range tt.want {
			assert.ErrorContains(t, err, want)
		}
	}
	assert.NoError(t, middleware.DedupeConfig{}.Validate(), "the zero value is valid")

	reg := prometheus.NewRegistry()
	_, err := middleware.NewDedupe(middleware.DedupeConfig{}, middleware.WithRegisterer(reg))
	require.NoError(t, err)
	_, err = middleware.NewDedupe(middleware.DedupeConfig{}, middleware.WithRegisterer(reg))
	var already prometheus.AlreadyRegisteredError
	assert.ErrorAs(t, err, &already, "two on one registerer need telling apart")
}

// Now of one's own drives the TTL without synctest.
func TestDedupeInjectedClock(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	r := newDedupeRig(t, middleware.DedupeConfig{
		TTL: dedupeTTL,
	}, middleware.WithNow(func() time.Time { return time.Unix(0, now.Load()) }))
	require.Equal(t, "handled", r.deliver("a", false))
	now.Add(int64(dedupeTTL - 1))
	require.Equal(t, "dropped", r.deliver("a", false))
	now.Add(-int64(time.Hour)) // a clock that steps back does not bring keys back early
	require.Equal(t, "dropped", r.deliver("a", false))
	now.Add(int64(time.Hour) + 1)
	require.Equal(t, "handled", r.deliver("a", false))
}

// A clock that steps back while a handler runs does not make the key it
// remembers expire early.
func TestDedupeClockSteppingBackDuringAHandler(t *testing.T) {
	var now atomic.Int64
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	set := func(d time.Duration) { now.Store(start + int64(d)) }
	set(0)
	d, err := middleware.NewDedupe(middleware.DedupeConfig{
		TTL:     dedupeTTL,
		MaxKeys: 100,
	}, middleware.WithNow(func() time.Time { return time.Unix(0, now.Load()) }))
	require.NoError(t, err)
	var calls atomic.Int32
	stepBack := false
	h := d.Middleware(func(m *message.Message) ([]*message.Message, error) {
		calls.Add(1)
		if stepBack {
			set(dedupeTTL - 10*time.Second)
		}
		return nil, nil
	})
	deliver := func(uuid string) {
		_, err := h(message.NewMessage(uuid, nil))
		require.NoError(t, err)
	}

	deliver("a")
	set(dedupeTTL)
	stepBack = true
	deliver("a") // expired: handled again, and the clock steps back meanwhile
	stepBack = false
	set(dedupeTTL + time.Second)
	deliver("b") // makes the Dedupe expire what it must
	require.EqualValues(t, 3, calls.Load())
	deliver("a")
	assert.EqualValues(t, 3, calls.Load(), "a, remembered at the second delivery, is still remembered")
}

// Dropping a duplicate allocates nothing.
func TestDedupeDuplicateDoesNotAllocate(t *testing.T) {
	d, err := middleware.NewDedupe(middleware.DedupeConfig{}, middleware.WithRegisterer(prometheus.NewRegistry()))
	require.NoError(t, err)
	h := d.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	m := message.NewMessage("a", nil)
	_, err = h(m)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(1000, func() { _, _ = h(m) })
	assert.Zero(t, allocs)
}

// go test -run '^$' -bench Dedupe -benchmem ./middleware/
func BenchmarkDedupe(b *testing.B) {
	ok := func(*message.Message) ([]*message.Message, error) { return nil, nil }

	// hit: a duplicate, dropped.
	b.Run("hit", func(b *testing.B) {
		d, _ := middleware.NewDedupe(middleware.DedupeConfig{})
		h := d.Middleware(ok)
		m := message.NewMessage("6f1c2a52-3b0e-4d5e-9a57-2f6c5b1d8e90", nil)
		_, _ = h(m)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = h(m)
		}
	})
	// miss: a new UUID, handled and remembered, evicting the oldest once
	// MaxKeys are remembered (the keys cycle past MaxKeys).
	b.Run("miss", func(b *testing.B) {
		d, _ := middleware.NewDedupe(middleware.DedupeConfig{})
		h := d.Middleware(ok)
		keys := dedupeBenchKeys(1 << 18)
		m := message.NewMessage("", nil)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			m.UUID = keys[i&(len(keys)-1)]
			i++
			_, _ = h(m)
		}
	})
	// map-reference: what miss does to a bare Go map, without locks, clock
	// or handler: the floor of any map-based dedupe, to read miss against
	// on a noisy machine.
	b.Run("map-reference", func(b *testing.B) {
		keys := dedupeBenchKeys(1 << 18)
		seen := make(map[string]int64)
		i := 0
		for b.Loop() {
			key := keys[i&(len(keys)-1)]
			if _, ok := seen[key]; !ok {
				if i >= defaultMaxKeys {
					delete(seen, keys[(i-defaultMaxKeys)&(len(keys)-1)])
				}
				seen[key] = int64(i)
			}
			i++
		}
	})
	b.Run("hit-parallel", func(b *testing.B) {
		d, _ := middleware.NewDedupe(middleware.DedupeConfig{})
		h := d.Middleware(ok)
		keys := dedupeBenchKeys(1024)
		for _, k := range keys {
			_, _ = h(message.NewMessage(k, nil))
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			m := message.NewMessage("", nil)
			i := rand.IntN(len(keys))
			for pb.Next() {
				m.UUID = keys[i&(len(keys)-1)]
				i++
				_, _ = h(m)
			}
		})
	})
	b.Run("miss-parallel", func(b *testing.B) {
		d, _ := middleware.NewDedupe(middleware.DedupeConfig{})
		h := d.Middleware(ok)
		keys := dedupeBenchKeys(1 << 18)
		var next atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			m := message.NewMessage("", nil)
			for pb.Next() {
				m.UUID = keys[int(next.Add(1))&(len(keys)-1)]
				_, _ = h(m)
			}
		})
	})
}

// BenchmarkDedupeMemory reports the heap that a full Dedupe holds per key
// remembered, the UUID string included: go test -run '^$' -bench
// DedupeMemory -benchtime 3x ./middleware/
func BenchmarkDedupeMemory(b *testing.B) {
	const keys = defaultMaxKeys
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d, _ := middleware.NewDedupe(middleware.DedupeConfig{})
		h := d.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		m := message.NewMessage("", nil)
		// Twice MaxKeys, for the Dedupe to be full and evicting.
		for range 2 * keys {
			m.UUID = watermill.NewUUID()
			_, _ = h(m)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if d.Len() != keys {
			b.Fatalf("remembered %d keys, want %d", d.Len(), keys)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/keys, "B/key")
		runtime.KeepAlive(d)
	}
}

func dedupeBenchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = watermill.NewUUID()
	}
	return keys
}
