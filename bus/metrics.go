package bus

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/internal/queue"
)

// ingressMetrics read the ingress's counters at scrape time, so the hot
// path pays nothing for them.
func ingressMetrics(in *queue.Broker, capacity int) []prometheus.Collector {
	gauge := func(name, help string, read func(queue.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return read(in.Stats()) })
	}
	counter := func(name, help string, read func(queue.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(read(in.Stats())) })
	}
	return []prometheus.Collector{
		gauge("switchyard_ingress_queue_depth", "Events accepted by Publish and not yet handed to a transport.",
			func(s queue.Stats) float64 { return float64(s.Queued) }),
		gauge("switchyard_ingress_queue_capacity", "Events the ingress holds at most (bus.queue_size): the limit of switchyard_ingress_queue_depth.",
			func(queue.Stats) float64 { return float64(capacity) }),
		counter("switchyard_ingress_accepted_total", "Events accepted by Publish.",
			func(s queue.Stats) uint64 { return s.Published }),
		counter("switchyard_ingress_handed_total", "Events the pipeline is done with: published on a transport, coalesced away, or held as a window's trailing event.",
			func(s queue.Stats) uint64 { return s.Acked }),
		counter("switchyard_ingress_retries_total", "Publish attempts that failed and were retried or dead-lettered.",
			func(s queue.Stats) uint64 { return s.Nacked }),
		counter("switchyard_ingress_dead_lettered_total", "Events dead-lettered after their retries.",
			func(s queue.Stats) uint64 { return s.DeadLettered }),
	}
}

// otherEventType is the event_type label of every type not configured.
const otherEventType = "other"

// latencyBuckets span a sub-millisecond in-process hop to a multi-second
// HTTP timeout.
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// pipelineMetrics are the bus's own per-event metrics. Their label values
// are bounded: transports are the configured ones, and event types the
// configured ones plus "other". Every series is resolved at New, so the hot
// path only indexes slices.
type pipelineMetrics struct {
	eventTypes map[string]int // configured type → index; other is len
	transports map[string]int // transport → index
	// [transport][event type]
	publish     [][]durationMetric // with switchyard_events_published_total
	delivery    [][]durationMetric // nil for a transport not timed
	ingressWait durationMetric
}

// durationMetric is one series of a per-event duration histogram, with the
// outcome counters of event_publish_duration_seconds' series.
type durationMetric struct {
	h        prometheus.Observer
	ok, fail prometheus.Counter // nil: outcomes not counted
}

// observe records d; a negative d (a clock behind the publisher's) counts 0.
func (s durationMetric) observe(d time.Duration, err error) {
	s.h.Observe(max(d, 0).Seconds())
	switch {
	case s.ok == nil:
	case err != nil:
		s.fail.Inc()
	default:
		s.ok.Inc()
	}
}

// newPipelineMetrics makes the series of every configured transport and
// event type; those of the delivery latency only for the transports
// timesDelivery reports true for.
func newPipelineMetrics(cfg Config, reg prometheus.Registerer, timesDelivery func(transport string) bool) (*pipelineMetrics, error) {
	pm := &pipelineMetrics{eventTypes: map[string]int{}, transports: map[string]int{}}
	types := slices.Concat(cfg.Metrics.EventTypes, cfg.Routing.EventTypes, cfg.Coalescing.EventTypes)
	slices.Sort(types)
	types = slices.DeleteFunc(slices.Compact(types), func(t string) bool { return t == "" || t == otherEventType })
	for i, t := range types {
		pm.eventTypes[t] = i
	}
	native := cfg.Metrics.NativeHistograms
	labels := []string{"transport", "event_type"}
	duration := prometheus.NewHistogramVec(histogramOpts("event_publish_duration_seconds",
		"Time a transport took to publish an event, by transport and event type (other: a type not configured).", native), labels)
	latency := prometheus.NewHistogramVec(histogramOpts("event_delivery_latency_seconds",
		"Time from an event's published_at to the start of its Handle handler, by the transport it arrived on and event type.", native), labels)
	published := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_events_published_total",
		Help: "Publishes on a transport by transport, event type and outcome (ok, error); an event that fell back counts once on each transport it was tried on.",
	}, append(labels, "outcome"))
	wait := prometheus.NewHistogram(histogramOpts("switchyard_ingress_wait_seconds",
		"Time from Publish accepting an event to the start of its pipeline: the queueing delay of the ingress.", native))
	pm.ingressWait = durationMetric{h: wait}
	for i, tr := range cfg.transportNames() {
		pm.transports[tr] = i
		timed := timesDelivery(tr)
		var pd, lat []durationMetric
		for _, et := range append(slices.Clone(types), otherEventType) {
			pd = append(pd, durationMetric{
				h:    duration.WithLabelValues(tr, et),
				ok:   published.WithLabelValues(tr, et, "ok"),
				fail: published.WithLabelValues(tr, et, "error"),
			})
			if timed {
				lat = append(lat, durationMetric{h: latency.WithLabelValues(tr, et)})
			}
		}
		pm.publish = append(pm.publish, pd)
		pm.delivery = append(pm.delivery, lat)
	}
	return pm, register(reg, duration, latency, published, wait)
}

// register registers cs with reg.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("bus: register metrics: %w", err)
		}
	}
	return nil
}

// histogramOpts are the options of every histogram of the bus: the latency
// buckets, and native buckets too when asked for.
func histogramOpts(name, help string, native bool) prometheus.HistogramOpts {
	opts := prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets}
	if native {
		opts.NativeHistogramBucketFactor = 1.1
		opts.NativeHistogramMaxBucketNumber = 160
		opts.NativeHistogramMinResetDuration = time.Hour
	}
	return opts
}

// typeIndex is the index of an event type's series: other for a type not
// configured.
func (pm *pipelineMetrics) typeIndex(eventType string) int {
	if e, ok := pm.eventTypes[eventType]; ok {
		return e
	}
	return len(pm.eventTypes)
}

// delivered observes the delivery latency of an event that arrived on the
// transport of index transport, from its published_at (RFC 3339) to now, in
// Unix nanoseconds: wall clocks, as the publisher may be another process.
// A time outside the years 1900 to 2199 is no publication time (Go's zero
// time is what a producer with none writes) and is not observed.
func (pm *pipelineMetrics) delivered(transport int, eventType, publishedAt string, now int64) {
	if publishedAt == "" {
		return
	}
	at, err := time.Parse(time.RFC3339Nano, publishedAt)
	if err != nil || at.Year() < 1900 || at.Year() > 2199 {
		return
	}
	pm.delivery[transport][pm.typeIndex(eventType)].observe(time.Duration(now-at.UnixNano()), nil)
}

// undoRegisterer remembers what it registers until keep, so that undo can
// unregister it all: a New that fails leaves nothing on the user's
// registerer.
type undoRegisterer struct {
	prometheus.Registerer
	mu   sync.Mutex
	kept bool
	done []prometheus.Collector
}

func (r *undoRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.kept {
		r.done = append(r.done, c)
	}
	return nil
}

func (r *undoRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// finish ends the remembering; with undo, it first unregisters what was
// registered, latest first.
func (r *undoRegisterer) finish(undo bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range slices.Backward(r.done) {
		if undo {
			r.Registerer.Unregister(c)
		}
	}
	r.kept, r.done = true, nil
}
