package bus

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/internal/monotime"
)

// eventMetrics is the per-event metrics' own work for one event: what
// Publish, the entry stage, dispatch and, when the transport times
// deliveries, a Handle consumer do (clock reads, the ingress wait, the
// publish duration and outcome, the parse of published_at and the delivery
// latency).
func eventMetrics(pm *pipelineMetrics, publishedAt string, timed bool) {
	accepted := monotime.Now()                           // Publish
	pm.ingressWait.observe(monotime.Now()-accepted, nil) // enter
	start := monotime.Now()                              // dispatch
	pm.publish[0][pm.typeIndex("chat_message")].observe(monotime.Now()-start, nil)
	if timed {
		pm.delivered(0, "chat_message", publishedAt, time.Now().UnixNano()) // observeDelivery
	}
}

func newBenchMetrics(b *testing.B) (*pipelineMetrics, string) {
	b.Helper()
	timed := func(string) bool { return true }
	pm, err := newPipelineMetrics(DefaultConfig(), prometheus.NewRegistry(), timed)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	return pm, time.Now().UTC().Format(time.RFC3339Nano)
}

// deliveries are the two cases of the benchmarks: a transport that times
// deliveries (delivery=timed), and an in-process one that does not, by
// default (delivery=untimed).
var deliveries = []struct {
	name  string
	timed bool
}{{"untimed", false}, {"timed", true}}

// BenchmarkEventMetrics is eventMetrics alone, from one goroutine.
func BenchmarkEventMetrics(b *testing.B) {
	for _, d := range deliveries {
		b.Run("delivery="+d.name, func(b *testing.B) {
			pm, publishedAt := newBenchMetrics(b)
			for b.Loop() {
				eventMetrics(pm, publishedAt, d.timed)
			}
		})
	}
}

// BenchmarkEventMetricsParallel is eventMetrics from GOMAXPROCS goroutines
// at once, as the Router's handlers run: the series are shared.
func BenchmarkEventMetricsParallel(b *testing.B) {
	for _, d := range deliveries {
		b.Run("delivery="+d.name, func(b *testing.B) {
			pm, publishedAt := newBenchMetrics(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					eventMetrics(pm, publishedAt, d.timed)
				}
			})
		})
	}
}
