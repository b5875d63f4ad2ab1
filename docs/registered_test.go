package docs_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/middleware"
)

// recordingRegisterer registers on a registry and keeps every collector,
// so that a test can list every family registered, even those with no
// series yet (a vector nothing has been counted in). It also keeps the
// refusals other than prometheus.AlreadyRegisteredError: a family two
// transports share (event_queue_depth) is registered once and found again
// by the second only if its help and labels are the same in both; a
// mismatch is refused, and the second transport's series would be
// exported nowhere.
type recordingRegisterer struct {
	*prometheus.Registry
	mu         sync.Mutex
	collectors []prometheus.Collector
	refused    []error
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		if !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			r.mu.Lock()
			r.refused = append(r.refused, err)
			r.mu.Unlock()
		}
		return err
	}
	r.mu.Lock()
	r.collectors = append(r.collectors, c)
	r.mu.Unlock()
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// describedFamily is what a collector's Desc says: a name and label names.
type describedFamily struct {
	name   string
	labels []string // sorted
}

// describe lists the families of c from its descriptions. A Desc does not
// show its name or labels, so each is given one series of made-up label
// values (as many as the Desc accepts) and gathered on a registry of its
// own.
func describe(t *testing.T, c prometheus.Collector) []describedFamily {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var descs []*prometheus.Desc
	for d := range ch {
		descs = append(descs, d)
	}
	var out []describedFamily
	for _, d := range descs {
		var sample prometheus.Metric
		for n := 0; n <= 16 && sample == nil; n++ {
			values := make([]string, n)
			for i := range values {
				values[i] = fmt.Sprint("v", i)
			}
			sample, _ = prometheus.NewConstMetric(d, prometheus.UntypedValue, 0, values...)
		}
		require.NotNil(t, sample, "no series fits %s", d)
		reg := prometheus.NewRegistry()
		require.NoError(t, reg.Register(oneSample{sample}))
		mfs, err := reg.Gather()
		require.NoError(t, err)
		require.Len(t, mfs, 1)
		f := describedFamily{name: mfs[0].GetName()}
		for _, l := range mfs[0].GetMetric()[0].GetLabel() {
			f.labels = append(f.labels, l.GetName())
		}
		slices.Sort(f.labels)
		out = append(out, f)
	}
	return out
}

type oneSample struct{ m prometheus.Metric }

func (o oneSample) Describe(ch chan<- *prometheus.Desc) { ch <- o.m.Desc() }
func (o oneSample) Collect(ch chan<- prometheus.Metric) { ch <- o.m }

// TestMetricsDocListsEveryRegisteredFamily builds a bus with every source
// of metrics (Redis Streams, JetStream and HTTP transports, a rollout with
// fallback, coalescing) and a Dedupe on one registerer, and requires the families
// they register, with their labels, to be exactly those documented: the
// ones a scrape cannot show until something happens included.
func TestMetricsDocListsEveryRegisteredFamily(t *testing.T) {
	doc := readMetricsDoc(t)
	rec := &recordingRegisterer{Registry: prometheus.NewRegistry()}
	cfg := bus.DefaultConfig()
	// Nothing listens there: the bus is built, never run.
	cfg.Transports["redis"] = map[string]any{"type": "redisstream", "url": "redis://127.0.0.1:1/0", "consumer_group": "hub"}
	cfg.Transports["nats"] = map[string]any{"type": "jetstream", "url": "nats://127.0.0.1:1", "consumer": "hub"}
	cfg.Transports["http"] = map[string]any{"type": "http", "url": "http://127.0.0.1:1/api/v1/events/{topic}",
		"receiver": map[string]any{"listen": "127.0.0.1:0"}}
	cfg.Routing.Baseline = "http"
	cfg.Routing.Candidate = "redis"
	cfg.Routing.Fallback.Enabled = true
	b, err := bus.New(cfg, bus.WithRegisterer(rec), bus.WithLoggerAdapter(watermill.NopLogger{}))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	_, err = middleware.NewDedupe(middleware.DedupeConfig{TTL: time.Minute}, middleware.WithRegisterer(rec))
	require.NoError(t, err)

	registered := map[string][]string{}
	rec.mu.Lock()
	collectors := slices.Clone(rec.collectors)
	refused := slices.Clone(rec.refused)
	rec.mu.Unlock()
	assert.Empty(t, refused, "collectors that two sources share must be the same (help and labels)")
	for _, c := range collectors {
		for _, f := range describe(t, c) {
			_, dup := registered[f.name]
			require.False(t, dup, "%s registered twice", f.name)
			registered[f.name] = f.labels
		}
	}
	for name, m := range doc {
		labels, ok := registered[name]
		if assert.True(t, ok, "%s (metrics.md:%d) is documented but never registered", name, m.line) {
			assert.Equal(t, m.labels, labels, "labels of %s (metrics.md:%d)", name, m.line)
		}
	}
	for name := range registered {
		assert.Contains(t, doc, name, "%s is registered but not documented in metrics.md", name)
	}

	// The types of the families that have series already.
	mfs, err := rec.Gather()
	require.NoError(t, err)
	require.NotEmpty(t, mfs)
	for _, mf := range mfs {
		if m, ok := doc[mf.GetName()]; ok {
			assert.Equal(t, m.typ, strings.ToLower(mf.GetType().String()), "type of %s (metrics.md:%d)", mf.GetName(), m.line)
		}
	}
}
