package memory

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes a broker's Stats, read when Prometheus scrapes, so the
// publish and delivery paths pay nothing for them. Its series carry the
// transport's name as their transport label: several memory transports
// share a registerer.
type collector struct {
	broker                                 *Broker
	depth, delivered, nacked, deadLettered *prometheus.Desc
}

// NewCollector returns a collector of b's queue depth and delivery
// counters, labelled transport=name: switchyard_memory_queue_depth and
// switchyard_memory_{delivered,nacked,dead_lettered}_total. The Factory
// registers one for each memory transport of a bus.
func NewCollector(b *Broker, name string) prometheus.Collector {
	labels := prometheus.Labels{"transport": name}
	return &collector{
		broker:       b,
		depth:        prometheus.NewDesc("switchyard_memory_queue_depth", "Events a memory transport holds: published and not yet acked or dead-lettered, once for each consumer group, over all its topics.", nil, labels),
		delivered:    prometheus.NewDesc("switchyard_memory_delivered_total", "Deliveries to a memory transport's subscribers, redeliveries included.", nil, labels),
		nacked:       prometheus.NewDesc("switchyard_memory_nacked_total", "Deliveries of a memory transport that a subscriber nacked: each is redelivered or dead-lettered.", nil, labels),
		deadLettered: prometheus.NewDesc("switchyard_memory_dead_lettered_total", "Events a memory transport dead-lettered after max_retries redeliveries.", nil, labels),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.delivered
	ch <- c.nacked
	ch <- c.deadLettered
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.broker.Stats()
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(c.delivered, prometheus.CounterValue, float64(s.Delivered))
	ch <- prometheus.MustNewConstMetric(c.nacked, prometheus.CounterValue, float64(s.Nacked))
	ch <- prometheus.MustNewConstMetric(c.deadLettered, prometheus.CounterValue, float64(s.DeadLettered))
}
