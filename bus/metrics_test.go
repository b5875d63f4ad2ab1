package bus_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports"
	"github.com/switchyard-go/switchyard/transports/memory"
)

// metricsSeries is one series of a gathered family: its labels and its
// value (a histogram's: its count of observations).
type metricsSeries struct {
	labels map[string]string
	value  float64
}

// metricsCollect gathers reg into family name → series.
func metricsCollect(reg prometheus.Gatherer) (map[string][]metricsSeries, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]metricsSeries, len(mfs))
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			s := metricsSeries{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s.value = m.GetGauge().GetValue()
			case m.Histogram != nil:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			out[mf.GetName()] = append(out[mf.GetName()], s)
		}
	}
	return out, nil
}

func metricsGather(t *testing.T, reg prometheus.Gatherer) map[string][]metricsSeries {
	t.Helper()
	out, err := metricsCollect(reg)
	require.NoError(t, err)
	return out
}

// metricsFind finds the series of family with exactly labels.
func metricsFind(families map[string][]metricsSeries, family string, labels map[string]string) (float64, bool) {
	for _, s := range families[family] {
		if maps.Equal(s.labels, labels) {
			return s.value, true
		}
	}
	return 0, false
}

// metricsValue is the value of the series of family with exactly labels.
func metricsValue(t *testing.T, families map[string][]metricsSeries, family string, labels map[string]string) float64 {
	t.Helper()
	v, ok := metricsFind(families, family, labels)
	require.True(t, ok, "no series %s%v", family, labels)
	return v
}

// TestMetricsSeriesBoundedUnderJunkEventTypes publishes 1,000 events of
// 1,000 different event types, as untrusted input could, through a rollout
// whose candidate fails: the bus publishes, falls back and delivers them
// all, and not one series is added for them.
func TestMetricsSeriesBoundedUnderJunkEventTypes(t *testing.T) {
	st := newStubs()
	reg := prometheus.NewRegistry()
	b := newBus(t, func(c *bus.Config) {
		c.Transports["redis"] = map[string]any{"type": "stub"}
		c.Routing.Candidate = "redis"
		c.Routing.Enabled = true
		c.Routing.Percentage = 100
		c.Routing.Fallback.Enabled = true
		// With coalescing.event_types' typing: two configured types.
		c.Metrics.EventTypes = []string{"chat_message"}
		c.Consume.From = []string{"memory"}
		c.Metrics.InProcessDeliveryLatency = true // the memory consumer's too
	}, bus.WithRegistry(st.registry()), bus.WithRegisterer(reg))
	const (
		transports = 2 // memory, redis
		eventTypes = 2 // chat_message, typing; and other
		outcomes   = 2 // ok, error
		junk       = 1000
		known      = 3
	)
	var handled atomic.Int64
	require.NoError(t, b.Handle("hub", "events:chat", func(*message.Message) error {
		handled.Add(1)
		return nil
	}))
	start(t, b)
	before := metricsGather(t, reg)

	st.setFail("redis", errors.New("connection refused"))
	types := map[string]bool{}
	for i := range junk {
		typ := fmt.Sprintf("junk-%d-%016x", i, rand.Uint64())
		types[typ] = true
		require.NoError(t, b.Publish("events:chat", bus.NewMessage(typ, "conv-"+strconv.Itoa(i), []byte(`{}`))))
	}
	require.Len(t, types, junk, "distinct event types")
	for i := range known {
		require.NoError(t, b.Publish("events:chat", bus.NewMessage("chat_message", "chat-"+strconv.Itoa(i), []byte(`{}`))))
	}
	// A delivery can start before the publish that made it is counted:
	// wait for both.
	other := map[string]string{"transport": "memory", "event_type": "other", "outcome": "ok"}
	require.Eventually(t, func() bool {
		families, err := metricsCollect(reg)
		published, _ := metricsFind(families, "switchyard_events_published_total", other)
		return err == nil && published == junk && handled.Load() == junk+known
	}, 30*time.Second, 5*time.Millisecond, "every event published on the fallback and delivered")
	after := metricsGather(t, reg)

	labelled := map[string]int{
		"event_publish_duration_seconds":    transports * (eventTypes + 1),
		"event_delivery_latency_seconds":    transports * (eventTypes + 1),
		"switchyard_events_published_total": transports * (eventTypes + 1) * outcomes,
	}
	for family, want := range labelled {
		assert.Len(t, before[family], want, "%s at start", family)
		assert.Len(t, after[family], want, "%s after %d event types", family, junk)
	}
	const bound = transports * (eventTypes + 1) * outcomes
	total := 0
	var unbounded []string
	for family, series := range after {
		assert.LessOrEqual(t, len(series), bound, family)
		total += len(series)
		for _, s := range series {
			for name, value := range s.labels {
				if strings.Contains(value, "junk") ||
					name == "event_type" && !slices.Contains([]string{"chat_message", "typing", "other"}, value) {
					unbounded = append(unbounded, fmt.Sprintf("%s{%s=%q}", family, name, value))
				}
			}
		}
	}
	assert.Empty(t, unbounded[:min(len(unbounded), 5)], "label values from the event types (%d series)", len(unbounded))
	// The routing families appear with the first fallback, bounded by
	// the transports and the reasons, not by the events.
	added := total
	for _, series := range before {
		added -= len(series)
	}
	assert.LessOrEqual(t, added, 4+1, "switchyard_fallbacks_total{from=redis,to=memory,reason} and the breaker's state")

	assert.Equal(t, float64(junk), metricsValue(t, after, "switchyard_events_published_total", other))
	assert.Equal(t, float64(known), metricsValue(t, after, "switchyard_events_published_total",
		map[string]string{"transport": "memory", "event_type": "chat_message", "outcome": "ok"}))
	assert.Equal(t, float64(junk), metricsValue(t, after, "event_delivery_latency_seconds",
		map[string]string{"transport": "memory", "event_type": "other"}))
	assert.Positive(t, metricsValue(t, after, "switchyard_events_published_total",
		map[string]string{"transport": "redis", "event_type": "other", "outcome": "error"}))
	assert.Equal(t, 0.0, metricsValue(t, after, "switchyard_events_published_total",
		map[string]string{"transport": "memory", "event_type": "typing", "outcome": "ok"}))
}

// TestMetricsNeverUseTheDefaultRegistry runs buses with and without a
// registerer and checks that none of their metrics went to the global
// default registry: a collector of each name can still be registered
// there.
func TestMetricsNeverUseTheDefaultRegistry(t *testing.T) {
	st := newStubs()
	reg := prometheus.NewRegistry()
	rollout := func(c *bus.Config) {
		c.Transports["redis"] = map[string]any{"type": "stub"}
		c.Routing.Candidate = "redis"
		c.Routing.Enabled = true
		c.Routing.Percentage = 100
		c.Routing.Fallback.Enabled = true
	}
	withReg := newBus(t, rollout, bus.WithRegistry(st.registry()), bus.WithRegisterer(reg))
	start(t, withReg)
	without := newBus(t, rollout, bus.WithRegistry(st.registry()))
	start(t, without)
	st.setFail("redis", errors.New("connection refused"))
	for _, b := range []*bus.Bus{withReg, without} {
		for _, typ := range []string{"chat_message", "typing"} {
			require.NoError(t, b.PublishSync(context.Background(), "events:chat", bus.NewMessage(typ, "k", []byte(`{}`))))
		}
	}

	families := metricsGather(t, reg)
	for _, name := range []string{
		"switchyard_ingress_queue_depth", "event_publish_duration_seconds", "switchyard_events_published_total",
		"switchyard_fallbacks_total", "switchyard_circuit_breaker_state", "switchyard_config_reloads_total",
		"events_coalesced_total",
	} {
		require.Contains(t, families, name, "the bus given a registerer registers there")
	}
	defaults := metricsGather(t, prometheus.DefaultGatherer)
	for name := range families {
		assert.NotContains(t, defaults, name)
		probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"})
		if assert.NoError(t, prometheus.DefaultRegisterer.Register(probe), "%s is in the default registry", name) {
			prometheus.DefaultRegisterer.Unregister(probe)
		}
	}
}

// TestMetricsNativeHistograms checks metrics.native_histograms: native
// buckets beside the classic ones, which stay, on every histogram.
func TestMetricsNativeHistograms(t *testing.T) {
	for _, native := range []bool{false, true} {
		t.Run("native="+strconv.FormatBool(native), func(t *testing.T) {
			reg := prometheus.NewRegistry()
			b := newBus(t, func(c *bus.Config) {
				c.Metrics.NativeHistograms = native
				c.Metrics.InProcessDeliveryLatency = true
			}, bus.WithRegisterer(reg))
			require.NoError(t, b.Handle("hub", "events:chat", func(*message.Message) error { return nil }))
			start(t, b)
			require.NoError(t, b.PublishSync(context.Background(), "events:chat", bus.NewMessage("chat_message", "k", []byte(`{}`))))
			mfs, err := reg.Gather()
			require.NoError(t, err)
			var histograms []string
			for _, mf := range mfs {
				if mf.GetType().String() != "HISTOGRAM" {
					continue
				}
				histograms = append(histograms, mf.GetName())
				for _, m := range mf.GetMetric() {
					h := m.GetHistogram()
					assert.Len(t, h.GetBucket(), 16, "%s keeps its classic buckets", mf.GetName())
					if native {
						assert.Positive(t, h.GetZeroThreshold(), "%s has native buckets", mf.GetName())
						assert.Equal(t, int32(3), h.GetSchema(), "%s: bucket factor 1.1", mf.GetName())
					} else {
						assert.Zero(t, h.GetZeroThreshold(), mf.GetName())
						assert.Empty(t, h.GetPositiveSpan(), mf.GetName())
					}
				}
			}
			slices.Sort(histograms)
			assert.Equal(t, []string{"event_delivery_latency_seconds", "event_publish_duration_seconds", "switchyard_ingress_wait_seconds"},
				histograms)
		})
	}
}

// TestMetricsWithoutEventMetrics checks that WithoutEventMetrics leaves
// out exactly the four families observed per event.
func TestMetricsWithoutEventMetrics(t *testing.T) {
	perEvent := []string{
		"event_delivery_latency_seconds", "event_publish_duration_seconds",
		"switchyard_events_published_total", "switchyard_ingress_wait_seconds",
	}
	for _, without := range []bool{false, true} {
		t.Run("without="+strconv.FormatBool(without), func(t *testing.T) {
			reg := prometheus.NewRegistry()
			opts := []bus.Option{bus.WithRegisterer(reg)}
			if without {
				opts = append(opts, bus.WithoutEventMetrics())
			}
			b := newBus(t, func(c *bus.Config) { c.Metrics.InProcessDeliveryLatency = true }, opts...)
			require.NoError(t, b.Handle("hub", "events:chat", func(*message.Message) error { return nil }))
			start(t, b)
			require.NoError(t, b.PublishSync(context.Background(), "events:chat", bus.NewMessage("chat_message", "k", []byte(`{}`))))
			families := metricsGather(t, reg)
			for _, name := range perEvent {
				_, ok := families[name]
				assert.Equal(t, !without, ok, name)
			}
			for _, name := range []string{"switchyard_ingress_accepted_total", "switchyard_config_reloads_total", "events_coalesced_total"} {
				assert.Contains(t, families, name)
			}
			accepted := metricsValue(t, families, "switchyard_ingress_accepted_total", map[string]string{})
			assert.Equal(t, 1.0, accepted)
		})
	}
}

// TestMetricsInProcessDeliveryLatency checks which inbound transports
// observe event_delivery_latency_seconds: a transport that says it is in
// process (memory, gochannel) only with metrics.in_process_delivery_latency,
// any other always, a plugin that says nothing included.
func TestMetricsInProcessDeliveryLatency(t *testing.T) {
	registry := transports.Default().Clone()
	// A plugin that does not say it is in process: a memory transport
	// under another type name, InProcess left false.
	registry.Register("plugin", func(s transports.Settings) (transports.Transport, error) {
		tr, err := memory.Factory(s)
		return transports.Transport{Publisher: tr.Publisher, Subscriber: tr.Subscriber}, err
	})
	for _, inProcess := range []bool{false, true} {
		t.Run("in_process_delivery_latency="+strconv.FormatBool(inProcess), func(t *testing.T) {
			reg := prometheus.NewRegistry()
			b := newBus(t, func(c *bus.Config) {
				c.Transports["gochannel"] = map[string]any{"type": "gochannel"}
				c.Transports["plugin"] = map[string]any{"type": "plugin"}
				c.Consume.From = []string{"memory", "gochannel", "plugin"}
				c.Metrics.InProcessDeliveryLatency = inProcess
			}, bus.WithRegistry(registry), bus.WithRegisterer(reg))
			handled := make(chan struct{}, 1)
			require.NoError(t, b.Handle("hub", "events:chat", func(*message.Message) error {
				handled <- struct{}{}
				return nil
			}))
			start(t, b)
			require.NoError(t, b.PublishSync(context.Background(), "events:chat", bus.NewMessage("chat_message", "k", []byte(`{}`))))
			select {
			case <-handled:
			case <-time.After(10 * time.Second):
				t.Fatal("the event was not delivered")
			}
			// The handler starts after the delivery latency is observed.
			families := metricsGather(t, reg)
			got := map[string]bool{}
			for _, s := range families["event_delivery_latency_seconds"] {
				got[s.labels["transport"]] = true
			}
			want := map[string]bool{"plugin": true}
			if inProcess {
				want = map[string]bool{"memory": true, "gochannel": true, "plugin": true}
			}
			assert.Equal(t, want, got, "transports with delivery latency series")
			if inProcess {
				// Published on the baseline, memory, and observed there.
				assert.Equal(t, 1.0, metricsValue(t, families, "event_delivery_latency_seconds",
					map[string]string{"transport": "memory", "event_type": "chat_message"}))
			}
		})
	}
}

// TestMetricsFailedNewLeavesRegistererClean: a New that fails after its
// transports registered their collectors (a consume.from transport that
// cannot subscribe) takes them back, so that the registerer serves a
// second try, and exports nothing of the bus that never was.
func TestMetricsFailedNewLeavesRegistererClean(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := newStubs()
	cfg := bus.DefaultConfig()
	cfg.Transports["publish-only"] = map[string]any{"type": "stub"}
	cfg.Consume.From = []string{"memory", "publish-only"}
	_, err := bus.New(cfg, quiet, bus.WithRegistry(st.registry()), bus.WithRegisterer(reg))
	require.ErrorContains(t, err, `"publish-only"`, "New fails after building the transports")
	families := metricsGather(t, reg)
	assert.Empty(t, slices.Collect(maps.Keys(families)), "families left behind by a failed New")

	b := newBus(t, nil, bus.WithRegisterer(reg))
	start(t, b)
	assert.Contains(t, metricsGather(t, reg), "switchyard_memory_delivered_total")
}
