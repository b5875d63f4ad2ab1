package main

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// env is the machine and software the figures come from.
type env struct {
	date, machine, goVersion, deps, redis, mode string
}

// profile is the top of the bus's CPU and allocation profiles.
type profile struct {
	cpu, allocs  []string
	routerAllocs float64 // % of the allocated objects made by Watermill's Router handlers
	copyAllocs   float64 // % made by the queues' copies of each message
}

type report struct {
	env      env
	rs       *results
	outs     []outcome
	prof     profile
	commands map[string]string // suite → command
	chart    string            // path of the chart, relative to the report
}

func (r *report) markdown() string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	p("# Performance\n\n")
	p("How fast the bus is against what it replaces, and whether its targets are met. Each figure is a ratio against a reference measured in the same run; `make bench` measures them again and rewrites this page.\n\n")
	p("| target | reference | bound | measured (95%% interval) | met |\n|---|---|---|---|---|\n")
	for _, o := range r.outs {
		met := "**yes**"
		if !o.met() {
			met = "**no**"
		}
		val := "n/a"
		if o.err == nil {
			unit := "×"
			if o.refName == "" {
				unit = ""
			}
			val = fmt.Sprintf("%s%s (%s–%s)", fmtNum(o.value), unit, fmtNum(o.lo), fmtNum(o.hi))
		}
		p("| %s | %s | %s | %s | %s |\n", o.what, o.reference, o.boundString(), val, met)
	}
	if r.missed("") {
		p("\n**Why the missed ones are missed**, from this run's figures and the profile at the end:\n\n")
		for _, o := range r.outs {
			if !o.met() {
				p("- %s, %s against %s: %s.\n", o.what, r.valueString(o), o.boundString(), r.missedBecause(o))
			}
		}
	}
	p("\n%s, Go %s, %s; %s. %s, %s.\n\n", r.env.machine, r.env.goVersion, r.env.deps, r.env.redis, r.env.date, r.env.mode)
	p("**Method.** Each table is one `go test -bench` command, run in rounds of one process each, so the bus and its reference take turns under the same load. A figure is the median of its rounds; a ratio's interval is a 95%% bootstrap interval of the ratio of medians. One op is one event; allocations count every goroutine; throughput runs until the consumer has the last event. Latencies run from when an event was due on a fixed schedule (no coordinated omission). Redis, NATS (JetStream, memory streams) and the HTTP hub (drains, answers 204) run on loopback, started by the benchmarks.\n\n")

	p("## In process\n\n")
	p("| publishers | bare channel | memory transport | Router over gochannel | bus | bus ÷ memory | bus ÷ Router | allocs/event: memory, Router, bus |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range []int{1, 8, 64} {
		base := fmt.Sprintf("InProcess/publishers=%d/system=", n)
		tp := func(sys string) string { return fmtNum(median(r.rs.get(base+sys, "msgs/s"))) }
		al := func(sys string) string { return fmtNum(median(r.rs.get(base+sys, "allocs/op"))) }
		p("| %d | %s | %s | %s | %s | %s | %s | %s, %s, %s |\n", n, tp("chan"), tp("memory"), tp("router"), tp("bus"),
			r.ratioCell(base+"bus", base+"memory", "msgs/s"), r.ratioCell(base+"bus", base+"router", "msgs/s"),
			al("memory"), al("router"), al("bus"))
	}
	p("\nEvents/s. The Router reference has the bus's shape: publish → Router handler → publish → consumer handler.\n\n")
	p("```sh\n%s\n```\n\n", r.commands["inprocess"])

	p("## Redis Streams\n\n")
	p("| events/s | go-redis pipelined | go-redis, one XADD at a time | bus | watermill-redisstream | bus ÷ pipelined |\n|---|---:|---:|---:|---:|---:|\n")
	for _, row := range []string{"Publish/publishers=1", "Publish/publishers=8", "Publish/publishers=64", "Consume", "EndToEnd/publishers=8"} {
		base := "Redis/" + row + "/impl="
		label := strings.NewReplacer("/publishers=", ", publishers ", "EndToEnd", "end to end", "Consume", "consume a backlog").Replace(row)
		p("| %s | %s | %s | %s | %s | %s |\n", label, r.figure(base+"goredis-pipelined", "msgs/s"), r.figure(base+"goredis", "msgs/s"),
			r.figure(base+"bus", "msgs/s"), r.figure(base+"watermill", "msgs/s"), r.ratioCell(base+"bus", base+"goredis-pipelined", "msgs/s"))
	}
	p("\nEnd to end: 8 publishers and one consumer until every ack reached Redis; the go-redis consumer reads 256 entries per XREADGROUP.\n\n")
	p("```sh\n%s\n```\n\n", r.commands["redis"])
	p("| rate | p50 / p99 / p99.9 (ms): go-redis | bus | watermill-redisstream | bus p99 ÷ go-redis |\n|---:|---:|---:|---:|---:|\n")
	for _, rate := range []int{1000, 5000, 20000} {
		base := fmt.Sprintf("Redis/Latency/rate=%d/impl=", rate)
		p("| %s/s | %s | %s | %s | %s |\n", fmtNum(float64(rate)), r.percentiles(base+"goredis"), r.percentiles(base+"bus"), r.percentiles(base+"watermill"),
			r.ratioCell(base+"bus", base+"goredis", "p99-µs"))
	}
	p("\nOne goroutine at a fixed rate; go-redis and watermill-redisstream wait for each XADD, the bus's `Publish` for its ingress.\n\n")
	p("```sh\n%s\n```\n\n", r.commands["latency"])

	p("## NATS JetStream\n\n")
	e2e := "JetStream/EndToEnd/publishers=8/impl="
	p("| events/s (CPU µs/event) | nats.go async | bus | bus ÷ nats.go | nats.go sync | transport's `Publish` | transport ÷ nats.go sync |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range []int{1, 8} {
		base := fmt.Sprintf("JetStream/Publish/publishers=%d/impl=", n)
		p("| publish, %d publisher%s | %s | %s | %s | %s | %s | %s |\n", n, plural(n),
			r.withCPU(base+"raw-async"), r.withCPU(base+"bus"), r.ratioCell(base+"bus", base+"raw-async", "msgs/s"),
			r.withCPU(base+"raw-sync"), r.withCPU(base+"transport"), r.ratioCell(base+"transport", base+"raw-sync", "msgs/s"))
	}
	p("| end to end, 8 publishers | %s | %s | %s | — | — | — |\n", r.withCPU(e2e+"raw-async"), r.withCPU(e2e+"bus"), r.ratioCell(e2e+"bus", e2e+"raw-async", "msgs/s"))
	p("\nAsync: nats.go's `PublishMsgAsync` (≤ 4,096 unacknowledged) against the bus's `Publish`, both timed until the stream stored every event. Sync: one event per call, returning once stored. CPU is this process's per event, NATS server included. End to end adds one durable pull consumer (nats.go fetches 256 per pull) until every ack is in; p50 / p99 / p99.9: nats.go %s ms, bus %s ms.\n\n",
		r.latencies(e2e+"raw-async"), r.latencies(e2e+"bus"))
	p("```sh\n%s\n```\n\n", r.commands["jetstream"])

	p("## HTTP\n\n")
	p("| publishers | raw net/http | transport alone | bus | bus ÷ raw | p99 (ms): raw, bus | bus p99 ÷ raw |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range []int{1, 8, 64} {
		base := fmt.Sprintf("HTTP/publishers=%d/client=", n)
		p("| %d | %s | %s | %s | %s | %s, %s | %s |\n", n, r.figure(base+"rawrt", "msgs/s"), r.figure(base+"publisher", "msgs/s"), r.figure(base+"bus", "msgs/s"),
			r.ratioCell(base+"bus", base+"rawrt", "msgs/s"), r.ms(base+"rawrt", "p99-µs"), r.ms(base+"bus", "p99-µs"), r.ratioCell(base+"bus", base+"rawrt", "p99-µs"))
	}
	p("\nThe bus's `PublishSync`, one event per call, against `http.Transport.RoundTrip` of the very requests the transport sends.\n\n")
	p("```sh\n%s\n```\n\n", r.commands["http"])

	p("## Delivery to the hub, per path\n\n")
	p("| path | p50 | p99 | p99.9 (ms) |\n|---|---:|---:|---:|\n")
	for _, path := range deliveryPaths {
		name := "Delivery/path=" + path.key
		p("| %s | %s | %s | %s |\n", path.label, r.ms(name, "p50-µs"), r.ms(name, "p99-µs"), r.ms(name, "p999-µs"))
	}
	p("\n![delivery latency per path](%s)\n\n", r.chart)
	p("2,000 events/s from one goroutine through `Publish` to a hub: in process, over HTTP, over Redis Streams, and with 10%% of keys on Redis.\n\n")
	p("```sh\n%s\n```\n\n", r.commands["delivery"])

	if len(r.prof.cpu) > 0 && r.missed("") {
		p("## Profile\n\nThe bus on memory, 8 publishers (`go tool pprof -top`): CPU by cumulative time, then allocated objects.\n\n")
		p("```\n%s\n```\n\n```\n%s\n```\n", strings.Join(r.prof.cpu, "\n"), strings.Join(r.prof.allocs, "\n"))
	}
	return w.String()
}

// withCPU is name's median throughput with its CPU per event in
// parentheses, when measured.
func (r *report) withCPU(name string) string {
	f := r.figure(name, "msgs/s")
	if c := r.us(name); c != "—" && f != "—" {
		return f + " (" + c + ")"
	}
	return f
}

// busCeiling is what the bus alone carries per second on memory with 8
// publishers in this run: no transport can take it past that.
func (r *report) busCeiling() float64 {
	return median(r.rs.get("InProcess/publishers=8/system=bus", "msgs/s"))
}

func (r *report) valueString(o outcome) string {
	if o.err != nil {
		return "n/a"
	}
	if o.refName == "" {
		return fmtNum(o.value)
	}
	return fmtNum(o.value) + "×"
}

// missedBecause says what explains a missed target.
func (r *report) missedBecause(o outcome) string {
	if o.err != nil {
		return "not measured, its benchmark did not run"
	}
	ceiling := r.busCeiling()
	need := o.bound * median(r.rs.get(o.refName, o.unit))
	bus8 := "InProcess/publishers=8/system="
	switch o.id {
	case "memory-router":
		return fmt.Sprintf("the Router reference ran at %s events/s; see In process", r.figure(o.refName, "msgs/s"))
	case "memory-transport":
		return fmt.Sprintf("the bus passes each event through two queues of the kind the memory transport is one of, and the pipeline's Router handler between them, so it is bound near 0.5× before its own stages (%s allocations per event against %s)",
			r.figure(bus8+"bus", "allocs/op"), r.figure(bus8+"memory", "allocs/op"))
	case "memory-allocs":
		return fmt.Sprintf("Watermill's Router handler makes %.0f%% of them and the queues' copies of each message %.0f%% (profile below)", r.prof.routerAllocs, r.prof.copyAllocs)
	}
	if o.unit == "msgs/s" && !math.IsNaN(need) && !math.IsNaN(ceiling) && ceiling < need {
		return fmt.Sprintf("the target needs %s events/s, but the bus alone, on memory, carries %s in this run (In process, 8 publishers): its own cost per event is the ceiling, before any transport",
			fmtNum(need), fmtNum(ceiling))
	}
	if o.id == "redis-e2e" {
		publish := median(r.rs.get("Redis/Publish/publishers=8/impl=bus", "msgs/s"))
		if publish < need {
			return fmt.Sprintf("the target needs %s events/s end to end, but the bus's publish alone carries %s (Redis Streams table, 8 publishers), and its consumer %s on a backlog",
				fmtNum(need), fmtNum(publish), r.figure("Redis/Consume/impl=bus", "msgs/s"))
		}
	}
	switch o.section {
	case "jetstream":
		return fmt.Sprintf("the bus spends %s µs of CPU per event where nats.go's async publish spends %s (NATS JetStream table), and its 64 lanes keep 64 events in flight where nats.go keeps 4,096",
			r.us(o.variant), r.us(o.refName))
	case "http":
		if o.unit == "p99-µs" {
			return fmt.Sprintf("p99 %s ms against %s: `PublishSync` hands each event to an ingress lane and waits for the pipeline's answer, two goroutine switches that wait for a CPU when the 2 cores are busy with the hub",
				r.ms(o.variant, "p99-µs"), r.ms(o.refName, "p99-µs"))
		}
		return fmt.Sprintf("%s µs per event against %s: each `PublishSync` call adds the ingress and the pipeline (In process) to its request, and a caller waits for both",
			fmtNum(1e6/median(r.rs.get(o.variant, "msgs/s"))), fmtNum(1e6/median(r.rs.get(o.refName, "msgs/s"))))
	}
	return "the bus's own cost per event (In process) comes on top of the transport's"
}

func (r *report) missed(section string) bool {
	for _, o := range r.outs {
		if (section == "" || o.section == section) && !o.met() {
			return true
		}
	}
	return false
}

func (r *report) ratioCell(variant, ref, unit string) string {
	x, err := ratioOf(r.rs.get(variant, unit), r.rs.get(ref, unit))
	if err != nil {
		return "—"
	}
	return fmt.Sprintf("%s×", fmtNum(x.value))
}

// figure is the median of name's samples in unit, or a dash for none.
func (r *report) figure(name, unit string) string {
	xs := r.rs.get(name, unit)
	if len(xs) == 0 {
		return "—"
	}
	return fmtNum(median(xs))
}

// us is the median CPU time per event of name in microseconds, or a dash.
func (r *report) us(name string) string {
	xs := r.rs.get(name, "cpu-ns/op")
	if len(xs) == 0 {
		return "—"
	}
	return fmtNum(median(xs) / 1000)
}

// latencies is percentiles, or a dash for a benchmark without them.
func (r *report) latencies(name string) string {
	if len(r.rs.get(name, "p99-µs")) == 0 {
		return "—"
	}
	return r.percentiles(name)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (r *report) ms(name, unit string) string {
	return fmtNum(median(r.rs.get(name, unit)) / 1000)
}

func (r *report) percentiles(name string) string {
	return fmt.Sprintf("%s / %s / %s", r.ms(name, "p50-µs"), r.ms(name, "p99-µs"), r.ms(name, "p999-µs"))
}

var deliveryPaths = []struct{ key, label string }{
	{"memory", "in process"},
	{"http", "HTTP"},
	{"redis", "Redis Streams"},
	{"split10", "10% on Redis"},
}

// writeChart draws the delivery latency percentiles per path, a marker
// per percentile beside each other, in milliseconds on a logarithmic axis.
func writeChart(rs *results, path string) error {
	p := plot.New()
	p.Title.Text = "Delivery latency to the hub at 2,000 events/s"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	quantiles := []struct {
		unit, label string
		c           color.RGBA
	}{
		{"p50-µs", "p50", color.RGBA{R: 0x4c, G: 0x72, B: 0xb0, A: 0xff}},
		{"p99-µs", "p99", color.RGBA{R: 0xdd, G: 0x84, B: 0x52, A: 0xff}},
		{"p999-µs", "p99.9", color.RGBA{R: 0xc4, G: 0x4e, B: 0x52, A: 0xff}},
	}
	names := make([]string, len(deliveryPaths))
	drawn := false
	for qi, q := range quantiles {
		pts := make(plotter.XYs, 0, len(deliveryPaths))
		for i, dp := range deliveryPaths {
			names[i] = dp.label
			v := median(rs.get("Delivery/path="+dp.key, q.unit)) / 1000
			if math.IsNaN(v) || v <= 0 {
				continue
			}
			pts = append(pts, plotter.XY{X: float64(i) + 0.12*float64(qi-1), Y: v})
		}
		if len(pts) == 0 {
			continue
		}
		points, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		points.Color = q.c
		points.Shape = draw.CircleGlyph{}
		points.Radius = vg.Points(4)
		p.Add(points)
		p.Legend.Add(q.label, points)
		drawn = true
	}
	if !drawn {
		// A log scale with nothing on it panics in gonum.
		return errNoSamples
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(deliveryPaths))-0.5
	// Room above the markers for the legend.
	p.Y.Max *= 8
	p.Y.Min /= 2
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(12)
	p.Legend.YOffs = -vg.Points(24)
	return p.Save(7*vg.Inch, 3.5*vg.Inch, path)
}
