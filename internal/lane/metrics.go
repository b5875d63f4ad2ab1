package lane

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/internal/promreg"
)

// Metrics are the collectors of a subscriber whose lanes a Scheduler
// delivers: event_queue_depth{stream}, shared by the transports (its help
// text must stay the same for them to share it), and the transport's own
// dead-letter counter{stream,reason}.
type Metrics struct {
	Depth        *prometheus.GaugeVec
	DeadLettered *prometheus.CounterVec
}

// NewMetrics registers the collectors on reg, or reuses those already
// registered there under the same names. With a nil reg they count without
// being exported.
func NewMetrics(reg prometheus.Registerer, deadLetter prometheus.CounterOpts) Metrics {
	m := Metrics{
		Depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "event_queue_depth",
			Help: "Entries of a stream the consumer group has not acked yet: its lag (not yet delivered) plus its pending entries (delivered, not acked).",
		}, []string{"stream"}),
		DeadLettered: prometheus.NewCounterVec(deadLetter, []string{"stream", "reason"}),
	}
	if reg != nil {
		m.Depth = promreg.Register(reg, m.Depth)
		m.DeadLettered = promreg.Register(reg, m.DeadLettered)
	}
	return m
}
