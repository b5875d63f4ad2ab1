package bus

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/internal/monotime"
)

// BenchmarkEventMetrics is the per-event metrics' own work, alone: what
// the pipeline, dispatch and a Handle consumer do for one event (clock
// reads, the ingress wait, the publish duration and outcome, the parse of
// published_at and the delivery latency).
func BenchmarkEventMetrics(b *testing.B) {
	pm, err := newPipelineMetrics(DefaultConfig(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	publishedAt := time.Now().UTC().Format(time.RFC3339Nano)
	b.ReportAllocs()
	for b.Loop() {
		accepted := monotime.Now()                           // Publish
		pm.ingressWait.observe(monotime.Now()-accepted, nil) // observeWait
		start := monotime.Now()                              // dispatch
		pm.publish[0][pm.typeIndex("chat_message")].observe(monotime.Now()-start, nil)
		pm.delivered(0, "chat_message", publishedAt, time.Now().UnixNano()) // observeDelivery
	}
}

// BenchmarkEventMetricsParallel is BenchmarkEventMetrics from GOMAXPROCS
// goroutines at once, as the Router's handlers run: the series are shared.
func BenchmarkEventMetricsParallel(b *testing.B) {
	pm, err := newPipelineMetrics(DefaultConfig(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	publishedAt := time.Now().UTC().Format(time.RFC3339Nano)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			accepted := monotime.Now()
			pm.ingressWait.observe(monotime.Now()-accepted, nil)
			start := monotime.Now()
			pm.publish[0][pm.typeIndex("chat_message")].observe(monotime.Now()-start, nil)
			pm.delivered(0, "chat_message", publishedAt, time.Now().UnixNano())
		}
	})
}
