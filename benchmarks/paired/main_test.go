package main

import (
	"strings"
	"testing"
)

// Rounds pair up in file order, whatever the order within a round, and the
// ratio is variant ÷ reference per round.
func TestPairsRoundsInOrder(t *testing.T) {
	in := `goos: linux
BenchmarkBusMetrics/handler=reads/metrics=on-2   200000  7000 ns/op  90.0 msgs/s
BenchmarkBusMetrics/handler=reads/metrics=off-2  200000  6000 ns/op  100.0 msgs/s
BenchmarkBusMetrics/handler=reads/metrics=off-2  200000  5000 ns/op  200.0 msgs/s
BenchmarkBusMetrics/handler=reads/metrics=on-2   200000  6000 ns/op  190.0 msgs/s
BenchmarkBusMetrics/handler=reads/metrics=off-2  200000  4000 ns/op  100.0 msgs/s
BenchmarkBusMetrics/handler=reads/metrics=on-2   200000  4400 ns/op  80.0 msgs/s
`
	s := newSamples("metrics")
	if err := s.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	s.report(&out, "off", []string{"msgs/s"})
	want := "BenchmarkBusMetrics/handler=reads metrics=on÷off msgs/s: median 0.9000 [0.8000–0.9500] IQR 0.8500–0.9250"
	if !strings.HasPrefix(out.String(), want) {
		t.Fatalf("got  %q\nwant %q…", out.String(), want)
	}
	if strings.Contains(out.String(), "ns/op") {
		t.Fatalf("-unit msgs/s printed another unit: %q", out.String())
	}
}

func TestSummarize(t *testing.T) {
	st := summarize([]float64{1, 1, 1, 1})
	if st.median != 1 || st.lo != 1 || st.hi != 1 {
		t.Fatalf("constant ratios: %+v", st)
	}
	st = summarize([]float64{0.9, 1.0, 1.1, 1.2, 1.3})
	if st.median != 1.1 || st.min != 0.9 || st.max != 1.3 || st.lo > st.median || st.hi < st.median {
		t.Fatalf("%+v", st)
	}
}
