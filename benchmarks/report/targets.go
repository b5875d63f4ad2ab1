package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
)

// A target is one line of the report's first table: a ratio of the bus
// against a reference measured in the same run (or, with no reference, a
// figure of the bus alone), and the bound it must meet.
type target struct {
	id        string // key of the baseline file
	what      string // what is measured, as the report says it
	reference string // against what
	variant   string // benchmark name of the bus
	refName   string // benchmark name of the reference; empty for an absolute figure
	unit      string
	bound     float64
	atMost    bool   // the figure must be ≤ bound (else ≥)
	section   string // the suite that measures it
}

var targets = []target{
	{"memory-router", "bus on memory, throughput (8 publishers)", "Watermill Router over gochannel, same shape",
		"InProcess/publishers=8/system=bus", "InProcess/publishers=8/system=router", "msgs/s", 3, false, "inprocess"},
	{"memory-transport", "bus on memory, throughput (8 publishers)", "memory transport alone",
		"InProcess/publishers=8/system=bus", "InProcess/publishers=8/system=memory", "msgs/s", 0.6, false, "inprocess"},
	{"memory-allocs", "bus on memory, allocations per event", "—",
		"InProcess/publishers=8/system=bus", "", "allocs/op", 25, true, "inprocess"},
	{"redis-publish", "Redis publish, 8 publishers", "go-redis, pipelines of 64",
		"Redis/Publish/publishers=8/impl=bus", "Redis/Publish/publishers=8/impl=goredis-pipelined", "msgs/s", 0.5, false, "redis"},
	{"redis-e2e", "Redis end to end, max throughput", "go-redis pipelined, batched consumer",
		"Redis/EndToEnd/publishers=8/impl=bus", "Redis/EndToEnd/publishers=8/impl=goredis-pipelined", "msgs/s", 0.5, false, "redis"},
	{"redis-p99", "Redis p99 latency at 5k msg/s", "go-redis, one XADD at a time",
		"Redis/Latency/rate=5000/impl=bus", "Redis/Latency/rate=5000/impl=goredis", "p99-µs", 1.5, true, "latency"},
	// The bus's Publish, as applications call it: async, as nats.go's
	// PublishMsgAsync is, both timed until the stream has stored every
	// event. The transport's synchronous Publish is in the JetStream
	// table, against nats.go's synchronous PublishMsg.
	{"jetstream-publish", "JetStream publish, 8 publishers (bus's `Publish`)", "nats.go async publish, ≤ 4,096 in flight",
		"JetStream/Publish/publishers=8/impl=bus", "JetStream/Publish/publishers=8/impl=raw-async", "msgs/s", 0.5, false, "jetstream"},
	{"http-throughput-1", "HTTP throughput, 1 publisher", "raw net/http, same requests",
		"HTTP/publishers=1/client=bus", "HTTP/publishers=1/client=rawrt", "msgs/s", 0.95, false, "http"},
	{"http-p99-1", "HTTP p99 latency, 1 publisher", "raw net/http, same requests",
		"HTTP/publishers=1/client=bus", "HTTP/publishers=1/client=rawrt", "p99-µs", 1.1, true, "http"},
	{"http-throughput", "HTTP throughput, 8 publishers", "raw net/http, same requests",
		"HTTP/publishers=8/client=bus", "HTTP/publishers=8/client=rawrt", "msgs/s", 0.95, false, "http"},
	{"http-p99", "HTTP p99 latency, 8 publishers", "raw net/http, same requests",
		"HTTP/publishers=8/client=bus", "HTTP/publishers=8/client=rawrt", "p99-µs", 1.1, true, "http"},
}

// outcome is a target as measured.
type outcome struct {
	target
	ratio
	err error
}

func (o outcome) met() bool {
	if o.err != nil || math.IsNaN(o.value) {
		return false
	}
	if o.atMost {
		return o.value <= o.bound
	}
	return o.value >= o.bound
}

func (o outcome) boundString() string {
	op := "≥"
	if o.atMost {
		op = "≤"
	}
	if o.refName == "" {
		return fmt.Sprintf("%s %s", op, fmtNum(o.bound))
	}
	return fmt.Sprintf("%s %s×", op, fmtNum(o.bound))
}

func measure(rs *results) []outcome {
	out := make([]outcome, len(targets))
	for i, t := range targets {
		o := outcome{target: t}
		if t.refName == "" {
			xs := rs.get(t.variant, t.unit)
			if len(xs) == 0 {
				o.ratio, o.err = ratio{value: math.NaN()}, errNoSamples
			} else {
				m := median(xs)
				o.ratio = ratio{value: m, lo: minOf(xs), hi: maxOf(xs), n: len(xs)}
			}
		} else {
			o.ratio, o.err = ratioOf(rs.get(t.variant, t.unit), rs.get(t.refName, t.unit))
		}
		out[i] = o
	}
	return out
}

// baseline is what the guard compares with: each target's figure as the
// report gave it.
type baseline map[string]float64

func writeBaseline(path string, outs []outcome) error {
	b := baseline{}
	for _, o := range outs {
		if o.err == nil {
			b[o.id] = o.value
		}
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func readBaseline(path string) (baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b baseline
	return b, json.Unmarshal(data, &b)
}

// guardFactor is how far a figure may move from the report's before the
// guard fails: to half a ratio that must be high, to twice one that must be
// low (or twice its target's bound, if higher: tail latencies of short runs
// on a shared machine move more than throughputs). Generous, so that a
// noisy CI machine passes and a change that halves throughput does not.
const guardFactor = 2.0

// tailGuardFactor is guardFactor for p99 ratios, which short runs on two
// cores move most: the 1-publisher HTTP p99 ratio read 1.6 to 5.9 on one
// machine as its load changed, with nothing else changed.
const tailGuardFactor = 4.0

// guard compares outs with b and returns one line per target of a guarded
// suite and whether every one is within guardFactor of its reported figure.
func guard(outs []outcome, b baseline) ([]string, bool) {
	var lines []string
	ok := true
	for _, o := range outs {
		want, known := b[o.id]
		if !known || !guarded(o.section) {
			continue
		}
		limit, pass := want/guardFactor, o.err == nil && o.value >= want/guardFactor
		op := "≥"
		if o.atMost {
			factor := guardFactor
			if o.unit == "p99-µs" {
				factor = tailGuardFactor
			}
			limit, op = factor*math.Max(want, o.bound), "≤"
			pass = o.err == nil && o.value <= limit
		}
		verdict := "ok"
		if !pass {
			verdict, ok = "FAIL", false
		}
		lines = append(lines, fmt.Sprintf("%-4s %-17s %8s (reported %s, limit %s %s)", verdict, o.id, fmtNum(o.value), fmtNum(want), op, fmtNum(limit)))
	}
	return lines, ok
}

func minOf(xs []float64) float64 {
	m := math.Inf(1)
	for _, x := range xs {
		m = math.Min(m, x)
	}
	return m
}

func maxOf(xs []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = math.Max(m, x)
	}
	return m
}

// fmtNum prints x with three significant digits, or as k/M.
func fmtNum(x float64) string {
	switch a := math.Abs(x); {
	case math.IsNaN(x):
		return "n/a"
	case a >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.1fk", x/1e3)
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 10:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", x), ".0")
	case a > 0 && a < 0.01:
		return fmt.Sprintf("%.1g", x) // a ratio far below 1, not 0.00
	default:
		return fmt.Sprintf("%.2f", x)
	}
}
