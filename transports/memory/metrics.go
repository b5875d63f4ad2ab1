package memory

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes a broker's queue depths and counters, read when
// Prometheus scrapes, so the publish and delivery paths pay nothing for
// them. Its series carry the transport's name as their transport label:
// several memory transports share a registerer.
type collector struct {
	broker                                           *Broker
	depth, capacity, delivered, nacked, deadLettered *prometheus.Desc
}

// NewCollector returns a collector of b's queue depth by topic, its
// capacity and its delivery counters, labelled transport=name:
// switchyard_memory_queue_depth, switchyard_memory_queue_capacity and
// switchyard_memory_{delivered,nacked,dead_lettered}_total. The Factory
// registers one for each memory transport of a bus.
func NewCollector(b *Broker, name string) prometheus.Collector {
	labels := prometheus.Labels{"transport": name}
	return &collector{
		broker:       b,
		depth:        prometheus.NewDesc("switchyard_memory_queue_depth", "Events a memory transport's topic holds for its fullest consumer group: published and not yet acked or dead-lettered. At switchyard_memory_queue_capacity, publishing to the topic waits or fails.", []string{"topic"}, labels),
		capacity:     prometheus.NewDesc("switchyard_memory_queue_capacity", "Events a memory transport's topic holds at most for one consumer group (queue_size): the limit of switchyard_memory_queue_depth.", nil, labels),
		delivered:    prometheus.NewDesc("switchyard_memory_delivered_total", "Deliveries to a memory transport's subscribers, redeliveries included.", nil, labels),
		nacked:       prometheus.NewDesc("switchyard_memory_nacked_total", "Deliveries of a memory transport that a subscriber nacked: each is redelivered or dead-lettered.", nil, labels),
		deadLettered: prometheus.NewDesc("switchyard_memory_dead_lettered_total", "Events a memory transport dead-lettered after max_retries redeliveries.", nil, labels),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.capacity
	ch <- c.delivered
	ch <- c.nacked
	ch <- c.deadLettered
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	// A label value must be UTF-8; a topic name need not be. Names that
	// become one label value share its series, at their largest depth.
	depths := map[string]int{}
	for topic, n := range c.broker.QueueDepths() {
		label := strings.ToValidUTF8(topic, "\uFFFD")
		depths[label] = max(depths[label], n)
	}
	for topic, n := range depths {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n), topic)
	}
	ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(c.broker.Config().QueueSize))
	s := c.broker.Stats()
	ch <- prometheus.MustNewConstMetric(c.delivered, prometheus.CounterValue, float64(s.Delivered))
	ch <- prometheus.MustNewConstMetric(c.nacked, prometheus.CounterValue, float64(s.Nacked))
	ch <- prometheus.MustNewConstMetric(c.deadLettered, prometheus.CounterValue, float64(s.DeadLettered))
}
