package jetstream

import "github.com/prometheus/client_golang/prometheus"

// DeadLetteredCounter is the dead-letter counter of topic and reason.
func DeadLetteredCounter(m *Metrics, topic, reason string) prometheus.Collector {
	return m.lanes.DeadLettered.WithLabelValues(topic, reason)
}

// Depth is event_queue_depth of topic.
func (m *Metrics) Depth(topic string) prometheus.Collector {
	return m.lanes.Depth.WithLabelValues(topic)
}
