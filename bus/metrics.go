package bus

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/transports/memory"
)

// ingressCollector reads the ingress's counters at scrape time, so the hot
// path pays nothing for these metrics.
type ingressCollector struct {
	ingress                                         *memory.Broker
	depth, accepted, published, retried, deadLetter *prometheus.Desc
}

func newIngressCollector(in *memory.Broker) *ingressCollector {
	return &ingressCollector{
		ingress:    in,
		depth:      prometheus.NewDesc("switchyard_ingress_queue_depth", "Events accepted by Publish and not yet handed to a transport.", nil, nil),
		accepted:   prometheus.NewDesc("switchyard_ingress_accepted_total", "Events accepted by Publish.", nil, nil),
		published:  prometheus.NewDesc("switchyard_ingress_handed_total", "Events handed to a transport.", nil, nil),
		retried:    prometheus.NewDesc("switchyard_ingress_retries_total", "Publish attempts that failed and were retried or dead-lettered.", nil, nil),
		deadLetter: prometheus.NewDesc("switchyard_ingress_dead_lettered_total", "Events dead-lettered after their retries.", nil, nil),
	}
}

func (c *ingressCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.accepted
	ch <- c.published
	ch <- c.retried
	ch <- c.deadLetter
}

func (c *ingressCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.ingress.Stats()
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(s.Published))
	ch <- prometheus.MustNewConstMetric(c.published, prometheus.CounterValue, float64(s.Acked))
	ch <- prometheus.MustNewConstMetric(c.retried, prometheus.CounterValue, float64(s.Nacked))
	ch <- prometheus.MustNewConstMetric(c.deadLetter, prometheus.CounterValue, float64(s.DeadLettered))
}
