package jetstream

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/internal/lane"
)

// Metrics are a subscriber's Prometheus collectors: event_queue_depth and
// switchyard_jetstream_dead_lettered_total (docs/jetstream.md lists them).
// Make them with NewMetrics and pass them to NewSubscriber; the Factory does
// so with the bus's registerer. Several subscribers may share one Metrics.
type Metrics struct {
	lanes lane.Metrics
}

// NewMetrics registers the collectors on reg, or reuses those already
// registered there under the same names (event_queue_depth is shared with
// the Redis Streams transport). With a nil reg they count without being
// exported.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{lanes: lane.NewMetrics(reg, prometheus.CounterOpts{
		Name: "switchyard_jetstream_dead_lettered_total",
		Help: "JetStream messages published to the dead-letter subject, by reason: malformed (not a message), nacked (max_deliver times) or max_deliver (delivered that often without an ack).",
	})}
}

func (m *Metrics) deadLettered(topic, reason string) {
	m.lanes.DeadLettered.WithLabelValues(topic, reason).Inc()
}
