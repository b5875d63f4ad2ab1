//go:build chaos

package bus_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/middleware"
	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// chaosKeys is how many event keys the numbered events are spread over:
// event n has key conv-(n mod chaosKeys).
const chaosKeys = 50

// chaosRow is one line of TestChaos's table.
type chaosRow struct {
	scenario  string
	published int // accepted: Publish returned nil
	delivered int // distinct events the consumer saw
	lost      int // published, neither delivered nor dead-lettered
	// dup counts deliveries beyond the first per event that reached the
	// handler: after Dedupe where the scenario uses it, else the same as
	// dupRaw, counted before any dedupe.
	dup, dupRaw int
	dedupe      bool
	dead        int           // dead-lettered: by the bus, or by the Redis consumer
	recovered   time.Duration // fault's end → first delivery on the faulted path; <0: none
}

// chaosTable collects the rows of TestChaos's subtests.
type chaosTable struct {
	mu   sync.Mutex
	rows []chaosRow
}

func (tb *chaosTable) add(r chaosRow) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.rows = append(tb.rows, r)
}

func (tb *chaosTable) String() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var b strings.Builder
	line := "%-44s %9s %9s %6s %6s %8s %6s %10s\n"
	fmt.Fprintf(&b, line, "scenario", "published", "delivered", "lost", "dup", "dup-raw", "dead", "recovered")
	for _, r := range tb.rows {
		dup := strconv.Itoa(r.dup)
		if !r.dedupe {
			dup = "-"
		}
		rec := "-"
		if r.recovered >= 0 {
			rec = r.recovered.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, line, r.scenario, strconv.Itoa(r.published), strconv.Itoa(r.delivered), strconv.Itoa(r.lost),
			dup, strconv.Itoa(r.dupRaw), strconv.Itoa(r.dead), rec)
	}
	return b.String()
}

// recorder counts what the consumers of one scenario saw, by event number.
type recorder struct {
	mu      sync.Mutex
	raw     map[int]int // deliveries that reached a hub's handler
	passed  map[int]int // deliveries that passed Dedupe (all of them without)
	dead    map[int]bool
	at      []pathTime // every raw delivery
	changed time.Time  // last delivery or dead letter
}

type pathTime struct {
	transport string
	at        time.Time
}

func newRecorder() *recorder {
	return &recorder{raw: map[int]int{}, passed: map[int]int{}, dead: map[int]bool{}, changed: time.Now()}
}

func (r *recorder) delivered(seq int, transport string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.raw[seq]++
	r.at = append(r.at, pathTime{transport, now})
	r.changed = now
}

func (r *recorder) pass(seq int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.passed[seq]++
}

func (r *recorder) deadLettered(seq int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dead[seq] = true
	r.changed = time.Now()
}

// missing counts the accepted events neither delivered nor dead-lettered.
func (r *recorder) missing(accepted []int) (n int, changed time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range accepted {
		if r.raw[s] == 0 && !r.dead[s] {
			n++
		}
	}
	return n, r.changed
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.raw)
}

// firstAfter is the time from t to the first delivery on transport after it.
func (r *recorder) firstAfter(transport string, t time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.at {
		if p.transport == transport && p.at.After(t) {
			return p.at.Sub(t)
		}
	}
	return -1
}

// logSink keeps what a bus logs at Warn and above.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Contains(strings.ToLower(s.buf.String()), strings.ToLower(sub))
}

func (s *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// setting sets a dotted path of a nested settings map, making the maps on
// the way.
func setting(m map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

func loadSettings(t *testing.T, m map[string]any) bus.Config {
	t.Helper()
	cfg, err := bus.LoadConfig(bus.FromMap(m))
	require.NoError(t, err)
	return cfg
}

// chaosHub is one consumer process: a bus that fans in the Redis consumer
// group "hub" (when redisURL is set) and an HTTP receiver, recording each
// delivery in a recorder shared by the scenario's hubs.
type chaosHub struct {
	b    *bus.Bus
	reg  *prometheus.Registry
	logs *logSink
	addr string // the HTTP receiver's host:port
	rec  *recorder

	work    atomic.Int64 // how long the handler works on each event, in ns
	gateMu  sync.Mutex
	gate    chan struct{} // Redis deliveries wait until it is closed
	waiting atomic.Int64  // Redis deliveries waiting at the gate
	inner   message.NoPublishHandlerFunc
	// only is the inbound transport of a hub with one: its handler's name
	// has no @transport then.
	only string
}

// startChaosHub starts a hub; tune changes its settings before New.
func startChaosHub(t *testing.T, rec *recorder, redisURL string, dedupe *middleware.Dedupe, tune func(map[string]any)) *chaosHub {
	t.Helper()
	m := map[string]any{
		"transports": map[string]any{
			"http": map[string]any{
				"type": "http", "receiver": map[string]any{"listen": "127.0.0.1:0", "handler_timeout": "5s"},
			},
		},
		"routing":    map[string]any{"baseline": "memory"},
		"coalescing": map[string]any{"enabled": false},
		"consume":    map[string]any{"from": []any{"http"}},
	}
	if redisURL != "" {
		setting(m, "transports.redis", map[string]any{
			"type": "redisstream", "url": redisURL, "consumer_group": "hub", "consumer": "hub-1", "start_id": "0",
			"block": "50ms",
		})
		setting(m, "consume.from", []any{"redis", "http"})
	}
	if tune != nil {
		tune(m)
	}
	h := &chaosHub{reg: prometheus.NewRegistry(), logs: &logSink{}, rec: rec, gate: make(chan struct{})}
	if redisURL == "" {
		h.only = "http"
	}
	close(h.gate)
	b, err := bus.New(loadSettings(t, m), bus.WithLogger(h.logs.logger()), bus.WithRegisterer(h.reg))
	require.NoError(t, err)
	h.b = b
	tr, ok := b.Transport("http")
	require.True(t, ok)
	h.addr = tr.Subscriber.(*httptransport.Server).Addr().(*net.TCPAddr).String()
	h.inner = func(m *message.Message) error {
		seq, _ := strconv.Atoi(string(m.Payload))
		rec.pass(seq)
		return nil
	}
	if dedupe != nil {
		h.inner = dedupe.Handler(h.inner)
	}
	require.NoError(t, b.Handle("hub", "events:chat", h.handle))
	start(t, b)
	return h
}

// url is where the hub's receiver takes events, through addr (the
// receiver itself, or a proxy in front of it).
func hubURL(addr string) string { return "http://" + addr + "/api/v1/events/{topic}" }

func (h *chaosHub) handle(m *message.Message) error {
	_, transport, ok := strings.Cut(message.HandlerNameFromCtx(m.Context()), "@")
	if !ok {
		transport = h.only
	}
	if transport == "redis" {
		h.gateMu.Lock()
		gate := h.gate
		h.gateMu.Unlock()
		select {
		case <-gate:
		default:
			h.waiting.Add(1)
			select {
			case <-gate:
				h.waiting.Add(-1)
			case <-m.Context().Done():
				h.waiting.Add(-1)
				return m.Context().Err()
			}
		}
	}
	seq, err := strconv.Atoi(string(m.Payload))
	if err != nil {
		return fmt.Errorf("payload %q: %w", m.Payload, err)
	}
	h.rec.delivered(seq, transport)
	if work := time.Duration(h.work.Load()); work > 0 {
		time.Sleep(work) // the handler's own work, not a synchronisation
	}
	return h.inner(m)
}

// holdRedis makes Redis deliveries wait at the handler until the returned
// func is called.
func (h *chaosHub) holdRedis() (release func()) {
	h.gateMu.Lock()
	defer h.gateMu.Unlock()
	g := make(chan struct{})
	h.gate = g
	var once sync.Once
	return func() { once.Do(func() { close(g) }) }
}

// chaosApp is the producing application: a bus whose dead letters (memory
// transport, topic dead_letter) are read back into the recorder.
type chaosApp struct {
	b        *bus.Bus
	reg      *prometheus.Registry
	rec      *recorder
	next     int
	accepted []int
	rejected []error
}

// appSettings routes events:chat to Redis at 100% (redisURL), with the
// hub's HTTP receiver (httpURL) as baseline and fallback. Without a
// redisURL everything goes to HTTP.
func appSettings(redisURL, httpURL string) map[string]any {
	m := map[string]any{
		"transports": map[string]any{
			"http":   map[string]any{"type": "http", "url": httpURL, "timeout": "2s"},
			"memory": map[string]any{"type": "memory"},
		},
		"routing": map[string]any{
			"baseline": "http",
			"fallback": map[string]any{
				"enabled": true, "publish_timeout": "500ms", "cooldown": "300ms",
				"failure_threshold": 3, "probe_interval": "500ms",
			},
		},
		"bus":        map[string]any{"close_timeout": "60s"},
		"coalescing": map[string]any{"enabled": false},
		"consume":    map[string]any{"from": []any{"memory"}},
	}
	if redisURL != "" {
		setting(m, "transports.redis", map[string]any{"type": "redisstream", "url": redisURL})
		setting(m, "routing.candidate", "redis")
		setting(m, "routing.enabled", true)
		setting(m, "routing.percentage", 100)
	}
	return m
}

func startChaosApp(t *testing.T, rec *recorder, settings map[string]any) *chaosApp {
	t.Helper()
	a := &chaosApp{reg: prometheus.NewRegistry(), rec: rec}
	b, err := bus.New(loadSettings(t, settings), quiet, bus.WithRegisterer(a.reg))
	require.NoError(t, err)
	a.b = b
	require.NoError(t, b.Handle("dead", "dead_letter", func(m *message.Message) error {
		seq, err := strconv.Atoi(string(m.Payload))
		if err != nil {
			return err
		}
		rec.deadLettered(seq)
		return nil
	}))
	start(t, b)
	return a
}

// publish sends the next numbered event with Publish.
func (a *chaosApp) publish() error {
	seq, m := a.nextEvent()
	err := a.b.Publish("events:chat", m)
	if err != nil {
		a.rejected = append(a.rejected, err)
		return err
	}
	a.accepted = append(a.accepted, seq)
	return nil
}

// nextEvent makes the next numbered event.
func (a *chaosApp) nextEvent() (int, *message.Message) {
	seq := a.next
	a.next++
	return seq, bus.NewMessage("chat_message", "conv-"+strconv.Itoa(seq%chaosKeys), []byte(strconv.Itoa(seq)))
}

// publishN publishes n events at once.
func (a *chaosApp) publishN(t *testing.T, n int) {
	t.Helper()
	for range n {
		require.NoError(t, a.publish())
	}
}

// publishSyncN publishes n events with one PublishSync, which returns once
// the transport has stored them all.
func (a *chaosApp) publishSyncN(t *testing.T, n int) {
	t.Helper()
	msgs := make([]*message.Message, n)
	seqs := make([]int, n)
	for i := range msgs {
		seqs[i], msgs[i] = a.nextEvent()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, a.b.PublishSync(ctx, "events:chat", msgs...))
	a.accepted = append(a.accepted, seqs...)
}

// chaosPace is the interval between two events of pump: 500 events/s.
const chaosPace = 2 * time.Millisecond

// pump publishes one event every chaosPace for d, failing the test on a
// rejected event unless allowed says it may be rejected; each does
// something between events when set.
func (a *chaosApp) pump(t *testing.T, d time.Duration, allowed func(error) bool, each func()) {
	t.Helper()
	tick := time.NewTicker(chaosPace)
	defer tick.Stop()
	end := time.After(d)
	for {
		select {
		case <-end:
			return
		case <-tick.C:
		}
		if err := a.publish(); err != nil && (allowed == nil || !allowed(err)) {
			t.Fatalf("publish: %v", err)
		}
		if each != nil {
			each()
		}
	}
}

// pumpN publishes n events, one every chaosPace, calling each after each.
func (a *chaosApp) pumpN(t *testing.T, n int, each func()) {
	t.Helper()
	tick := time.NewTicker(chaosPace)
	defer tick.Stop()
	for range n {
		<-tick.C
		require.NoError(t, a.publish())
		each()
	}
}

// settle waits until every accepted event was delivered or dead-lettered,
// or until nothing has changed for 5s (what is missing then is lost), or
// for at most max.
func (a *chaosApp) settle(max time.Duration) {
	start := time.Now()
	deadline := start.Add(max)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		missing, changed := a.rec.missing(a.accepted)
		if changed.Before(start) {
			changed = start
		}
		if missing == 0 || time.Since(changed) > 5*time.Second || time.Now().After(deadline) {
			return
		}
	}
}

// row counts what happened to the accepted events; extraDead are dead
// letters of entries the bus did not publish (a foreign producer's).
func (a *chaosApp) row(name string, dedupe bool, extraDead int, faultPath string, faultEnd time.Time) chaosRow {
	r := a.rec
	rec := time.Duration(-1)
	if faultPath != "" {
		rec = r.firstAfter(faultPath, faultEnd)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	row := chaosRow{scenario: name, published: len(a.accepted), delivered: len(r.raw), dedupe: dedupe, dead: extraDead, recovered: rec}
	for _, s := range a.accepted {
		switch {
		case r.raw[s] > 0:
		case r.dead[s]:
			row.dead++
		default:
			row.lost++
		}
	}
	for _, n := range r.raw {
		row.dupRaw += n - 1
	}
	for _, n := range r.passed {
		row.dup += n - 1
	}
	return row
}

// lostSeqs lists up to n of the accepted events that are lost, for the
// failure message.
func (a *chaosApp) lostSeqs(n int) []int {
	r := a.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, s := range a.accepted {
		if r.raw[s] == 0 && !r.dead[s] {
			out = append(out, s)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// gather sums the samples of the metric families of reg whose name match
// says yes to, and whose labels include every pair of labels.
func gather(t *testing.T, reg *prometheus.Registry, match func(name string) bool, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if !match(mf.GetName()) {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == k && l.GetValue() == v)
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func named(name string) func(string) bool { return func(n string) bool { return n == name } }

// toxics is an in-process Toxiproxy: proxies on free loopback ports, with
// toxics added and removed through its Go API.
type toxics struct{ srv *toxiproxy.ApiServer }

func newToxics(t *testing.T) *toxics {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	t.Cleanup(func() { _ = srv.Collection.Clear() })
	return &toxics{srv: srv}
}

// proxy starts a proxy to upstream; its Listen is the address to dial.
func (x *toxics) proxy(t *testing.T, name, upstream string) *toxiproxy.Proxy {
	t.Helper()
	p := toxiproxy.NewProxy(x.srv, name, "127.0.0.1:0", upstream)
	require.NoError(t, x.srv.Collection.Add(p, true))
	return p
}

// addToxic adds a toxic of type typ to one stream ("upstream": client to
// server, "downstream": server to client) of p.
func addToxic(t *testing.T, p *toxiproxy.Proxy, name, typ, stream, attributes string) {
	t.Helper()
	_, err := p.Toxics.AddToxicJson(strings.NewReader(fmt.Sprintf(
		`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, typ, stream, attributes)))
	require.NoError(t, err)
}

func removeToxic(t *testing.T, p *toxiproxy.Proxy, names ...string) {
	t.Helper()
	for _, n := range names {
		require.NoError(t, p.Toxics.RemoveToxic(context.Background(), n))
	}
}

// heapSampler keeps the peak of the heap in use.
type heapSampler struct{ base, peak uint64 }

func newHeapSampler() *heapSampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &heapSampler{base: ms.HeapInuse, peak: ms.HeapInuse}
}

func (h *heapSampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.peak = max(h.peak, ms.HeapInuse)
}
