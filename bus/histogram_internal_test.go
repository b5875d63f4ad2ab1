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
	created := time.Now()
	col := &histogramCollector{
		desc:    prometheus.NewDesc("sharded_seconds", "sharded", []string{"transport"}, nil),
		outcome: prometheus.NewDesc("sharded_total", "outcomes", []string{"transport", "outcome"}, nil),
		created: created,
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
				if !m.GetCounter().GetCreatedTimestamp().AsTime().Equal(created) {
					t.Errorf("counter created %v, want %v", m.GetCounter().GetCreatedTimestamp().AsTime(), created)
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
	if !got.GetCreatedTimestamp().AsTime().Equal(created) {
		t.Errorf("histogram created %v, want %v", got.GetCreatedTimestamp().AsTime(), created)
	}
	// The same float64 additions in another order.
	if math.Abs(got.GetSampleSum()-w.GetSampleSum()) > 1e-9*w.GetSampleSum() {
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

// The sum neither wraps nor loses what it held when observations add up to
// more than an int64 of nanoseconds, nor when one is absurdly long.
func TestShardedHistogramSumDoesNotOverflow(t *testing.T) {
	var h shardedHistogram
	const n = 3 * (1 << (62 - 50)) * histShards // every shard folds, about three times
	for range n {
		h.observe(maxObservedNs)
	}
	h.observe(time.Duration(math.MaxInt64)) // counts as maxObservedNs
	_, count, sum, _, _ := h.snapshot()
	if count != n+1 {
		t.Fatalf("count %d, want %d", count, n+1)
	}
	want := float64(n+1) * time.Duration(maxObservedNs).Seconds()
	if math.Abs(sum-want) > 1e-9*want {
		t.Fatalf("sum %g, want %g", sum, want)
	}
}
