package jetstream

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/internal/promreg"
)

// Metrics are a subscriber's Prometheus collectors: event_queue_depth and
// switchyard_jetstream_dead_lettered_total (docs/jetstream.md lists them).
// Make them with NewMetrics and pass them to NewSubscriber; the Factory does
// so with the bus's registerer. Several subscribers may share one Metrics.
type Metrics struct {
	depth      *prometheus.GaugeVec
	deadLetter *prometheus.CounterVec
}

// NewMetrics registers the collectors on reg, or reuses those already
// registered there under the same names (event_queue_depth is shared with
// the Redis Streams transport: its help text must stay the same). With a
// nil reg they count without being exported.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "event_queue_depth",
			Help: "Entries of a stream the consumer group has not acked yet: its lag (not yet delivered) plus its pending entries (delivered, not acked).",
		}, []string{"stream"}),
		deadLetter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_jetstream_dead_lettered_total",
			Help: "JetStream messages published to the dead-letter subject, by reason: malformed (not a message), nacked (max_deliver times) or max_deliver (delivered that often without an ack).",
		}, []string{"stream", "reason"}),
	}
	if reg != nil {
		m.depth = promreg.Register(reg, m.depth)
		m.deadLetter = promreg.Register(reg, m.deadLetter)
	}
	return m
}

func (m *Metrics) deadLettered(topic, reason string) {
	m.deadLetter.WithLabelValues(topic, reason).Inc()
}
