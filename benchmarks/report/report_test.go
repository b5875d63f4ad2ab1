package main

import (
	"errors"
	"math"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/switchyard-go/switchyard/benchmarks
cpu: Test CPU
BenchmarkInProcess/publishers=8/system=memory-2   100  10 ns/op  200000 msgs/s  16 allocs/op
BenchmarkInProcess/publishers=8/system=memory-2   100  10 ns/op  220000 msgs/s  16 allocs/op
BenchmarkInProcess/publishers=8/system=memory-2   100  10 ns/op  240000 msgs/s  16 allocs/op
BenchmarkInProcess/publishers=8/system=bus-2      100  10 ns/op  100000 msgs/s  30 allocs/op
BenchmarkInProcess/publishers=8/system=bus-2      100  10 ns/op  110000 msgs/s  30 allocs/op
BenchmarkInProcess/publishers=8/system=bus-2      100  10 ns/op  120000 msgs/s  30 allocs/op
BenchmarkRedis/Publish/publishers=8/impl=goredis-pipelined   100  10 ns/op  1000 msgs/s
`

func readSample(t *testing.T) *results {
	t.Helper()
	rs := newResults()
	if err := rs.read(strings.NewReader(sample), "sample"); err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestReadStripsOnlyTheGomaxprocsSuffix(t *testing.T) {
	rs := readSample(t)
	if got := rs.get("InProcess/publishers=8/system=bus", "msgs/s"); len(got) != 3 {
		t.Errorf("bus msgs/s = %v, want 3 samples", got)
	}
	if got := rs.get("Redis/Publish/publishers=8/impl=goredis-pipelined", "msgs/s"); len(got) != 1 {
		t.Errorf("a name without a GOMAXPROCS suffix lost its last part: %v", rs.samples)
	}
	if rs.config["cpu"] != "Test CPU" {
		t.Errorf("cpu = %q", rs.config["cpu"])
	}
}

func TestRatioIsOfMediansWithAnIntervalAroundIt(t *testing.T) {
	rs := readSample(t)
	r, err := ratioOf(rs.get("InProcess/publishers=8/system=bus", "msgs/s"), rs.get("InProcess/publishers=8/system=memory", "msgs/s"))
	if err != nil {
		t.Fatal(err)
	}
	if r.value != 0.5 {
		t.Errorf("ratio = %v, want 110000/220000 = 0.5", r.value)
	}
	if r.lo > r.value || r.hi < r.value || r.lo < 100000.0/240000 || r.hi > 120000.0/200000 {
		t.Errorf("interval [%v, %v] does not hold 0.5 within the samples' extremes", r.lo, r.hi)
	}
}

func TestTargetsMetOrMissed(t *testing.T) {
	outs := measure(readSample(t))
	byID := map[string]outcome{}
	for _, o := range outs {
		byID[o.id] = o
	}
	if o := byID["memory-transport"]; o.met() {
		t.Errorf("bus at 0.5× memory met the ≥ 0.6× target")
	}
	if o := byID["memory-allocs"]; o.value != 30 || o.met() {
		t.Errorf("30 allocations: value %v, met %v; want 30, not met", o.value, o.met())
	}
	if o := byID["http-p99"]; o.err == nil || o.met() {
		t.Errorf("a target without samples must be an error and not met")
	}
}

func TestGuardFailsWhenARatioHalves(t *testing.T) {
	outs := measure(readSample(t)) // memory-transport 0.5, memory-allocs 30
	if _, ok := guard(outs, baseline{"memory-transport": 0.9, "memory-allocs": 20}); !ok {
		t.Errorf("0.5 against a reported 0.9 (limit 0.45) or 30 allocs against 20 (limit 40) failed the guard")
	}
	lines, ok := guard(outs, baseline{"memory-transport": 1.1})
	if ok || !strings.HasPrefix(lines[0], "FAIL") {
		t.Errorf("0.5 against a reported 1.1 (limit 0.55) passed: %v", lines)
	}
	if _, ok := guard(outs, baseline{"memory-allocs": 10}); !ok {
		t.Errorf("30 allocs against a reported 10 failed, within twice the target's bound of 25")
	}
	p99 := outcome{target: target{id: "p99", refName: "ref", unit: "p99-µs", bound: 1.1, atMost: true, section: "latency"}, ratio: ratio{value: 5}}
	if _, ok := guard([]outcome{p99}, baseline{"p99": 1.2}); ok {
		t.Errorf("a p99 ratio of 5 against a reported 1.2 (limit 4.8) passed")
	}
	p99.value = 4
	if _, ok := guard([]outcome{p99}, baseline{"p99": 1.2}); !ok {
		t.Errorf("a p99 ratio of 4 against a reported 1.2 (limit 4.8) failed")
	}
}

// jsSample is one round of the JetStream suite's publish rows.
const jsSample = `BenchmarkJetStream/Publish/publishers=8/impl=raw-async-2   5000  10 ns/op  15000 cpu-ns/op  40000 msgs/s
BenchmarkJetStream/Publish/publishers=8/impl=raw-sync-2    5000  10 ns/op  28000 cpu-ns/op  20000 msgs/s
BenchmarkJetStream/Publish/publishers=8/impl=transport-2   5000  10 ns/op  31000 cpu-ns/op  16000 msgs/s
BenchmarkJetStream/Publish/publishers=8/impl=bus-2         5000  10 ns/op  30000 cpu-ns/op  24000 msgs/s
`

// TestJetStreamPublishTarget: the target is the bus's async Publish
// against nats.go's async publish, not the transport's synchronous one.
func TestJetStreamPublishTarget(t *testing.T) {
	rs := newResults()
	if err := rs.read(strings.NewReader(jsSample), "js"); err != nil {
		t.Fatal(err)
	}
	for _, o := range measure(rs) {
		if o.id != "jetstream-publish" {
			continue
		}
		if o.err != nil || o.value != 0.6 || !o.met() {
			t.Errorf("bus at 24k against raw async at 40k: value %v, err %v, met %v; want 0.6, met", o.value, o.err, o.met())
		}
		return
	}
	t.Fatal("no jetstream-publish target")
}

// TestJetStreamTableKeepsTheTransport: the JetStream table shows the
// transport's synchronous Publish against nats.go's synchronous publish,
// and the CPU per event of each.
func TestJetStreamTableKeepsTheTransport(t *testing.T) {
	rs := newResults()
	if err := rs.read(strings.NewReader(jsSample), "js"); err != nil {
		t.Fatal(err)
	}
	r := &report{rs: rs, outs: measure(rs), commands: map[string]string{}}
	md := r.markdown()
	row := "| publish, 8 publishers | 40.0k (15) | 24.0k (30) | 0.60× | 20.0k (28) | 16.0k (31) | 0.80× |"
	if !strings.Contains(md, row) {
		t.Errorf("no row %q in the JetStream table:\n%s", row, md[strings.Index(md, "## NATS JetStream"):])
	}
}

func TestGuardLeavesOutSuitesItDoesNotRun(t *testing.T) {
	outs := measure(readSample(t)) // no JetStream samples
	lines, ok := guard(outs, baseline{"jetstream-publish": 1, "memory-transport": 0.9})
	if !ok || len(lines) != 1 || strings.Contains(lines[0], "jetstream") {
		t.Errorf("the unguarded JetStream target was checked: ok %v, %v", ok, lines)
	}
}

// TestChartWithoutDeliveryResults: results without the delivery suite
// (a -from file of other suites) draw no chart, and do not panic.
func TestChartWithoutDeliveryResults(t *testing.T) {
	path := t.TempDir() + "/chart.png"
	if err := writeChart(readSample(t), path); !errors.Is(err, errNoSamples) {
		t.Errorf("writeChart = %v, want errNoSamples", err)
	}
}

func TestAllocShareReadsTheColumnAsked(t *testing.T) {
	top := []string{
		"      flat  flat%   sum%        cum   cum%",
		"    196610 20.70% 52.41%     316763 33.35%  github.com/ThreeDotsLabs/watermill/message.(*handler).addHandlerContext",
		"    120153 12.65% 65.06%     120153 12.65%  context.WithValue",
		"     60091  6.33% 87.40%     267637 28.18%  github.com/switchyard-go/switchyard/internal/queue.(*entry).message (inline)",
	}
	router := allocShare(top, 1, func(fn string) bool {
		return strings.Contains(fn, "watermill/message.(*handler)") || strings.HasPrefix(fn, "context.WithValue")
	})
	if math.Abs(router-33.35) > 1e-9 {
		t.Errorf("router flat%% = %v, want 33.35", router)
	}
	copies := allocShare(top, 4, func(fn string) bool { return strings.Contains(fn, "queue.(*entry).message") })
	if copies != 28.18 {
		t.Errorf("copies cum%% = %v, want 28.18", copies)
	}
}
