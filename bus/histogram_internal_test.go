package bus

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var errTest = errors.New("test: publish failed")

func TestLatencyBucketsFitShards(t *testing.T) {
	if len(latencyBuckets) != numBuckets {
		t.Fatalf("numBuckets is %d, latencyBuckets has %d", numBuckets, len(latencyBuckets))
	}
}

// A sharded histogram exposes what client_golang's histogram exposes for
// the same observations, observed from several goroutines at once.
func TestShardedHistogramAgreesWithClientGolang(t *testing.T) {
	ref := prometheus.NewHistogram(histogramOpts("ref_seconds", "reference", false))
	col := &histogramCollector{
		desc:    prometheus.NewDesc("sharded_seconds", "sharded", []string{"transport"}, nil),
		outcome: prometheus.NewDesc("sharded_total", "outcomes", []string{"transport", "outcome"}, nil),
	}
	series := col.add("memory")

	var wg sync.WaitGroup
	var mu sync.Mutex
	wantOK, wantFail := 0, 0
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			ok, fail := 0, 0
			for i := range 20_000 {
				// Durations from 0 to 20 s, log-uniform, and every bound
				// exactly, which falls in its own bucket (le).
				d := time.Duration(math.Exp(rng.Float64() * math.Log(20e9)))
				if i < len(latencyBoundsNs) {
					d = time.Duration(latencyBoundsNs[i])
				}
				var err error
				if i%10 == 0 {
					err, fail = errTest, fail+1
				} else {
					ok++
				}
				series.observe(d, err)
				ref.Observe(d.Seconds())
			}
			mu.Lock()
			wantOK, wantFail = wantOK+ok, wantFail+fail
			mu.Unlock()
		})
	}
	wg.Wait()
	series.observe(-time.Second, nil) // a clock behind: counts as 0
	ref.Observe(0)
	wantOK++

	var want dto.Metric
	if err := ref.Write(&want); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got *dto.Histogram
	outcomes := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "sharded_seconds":
				got = m.GetHistogram()
			case "sharded_total":
				for _, l := range m.GetLabel() {
					if l.GetName() == "outcome" {
						outcomes[l.GetValue()] = m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	if got == nil {
		t.Fatal("no sharded_seconds histogram gathered")
	}
	w := want.GetHistogram()
	if got.GetSampleCount() != w.GetSampleCount() {
		t.Errorf("count %d, client_golang %d", got.GetSampleCount(), w.GetSampleCount())
	}
	if math.Abs(got.GetSampleSum()-w.GetSampleSum()) > 1e-6*w.GetSampleSum() {
		t.Errorf("sum %g, client_golang %g", got.GetSampleSum(), w.GetSampleSum())
	}
	if len(got.GetBucket()) != len(w.GetBucket()) {
		t.Fatalf("%d buckets, client_golang %d", len(got.GetBucket()), len(w.GetBucket()))
	}
	for i, b := range w.GetBucket() {
		g := got.GetBucket()[i]
		if g.GetUpperBound() != b.GetUpperBound() || g.GetCumulativeCount() != b.GetCumulativeCount() {
			t.Errorf("bucket le=%g: %d; client_golang le=%g: %d", g.GetUpperBound(), g.GetCumulativeCount(), b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
	if outcomes["ok"] != float64(wantOK) || outcomes["error"] != float64(wantFail) {
		t.Errorf("outcomes %v, want ok %d, error %d", outcomes, wantOK, wantFail)
	}
}
