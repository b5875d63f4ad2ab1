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
	routerAllocs float64 // % of the allocations made by Watermill's Router handlers
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
	p("How fast the bus is, against what, and whether its targets are met. Every figure is a ratio of the bus against a reference measured in the same run on the same machine; `make bench` measures them all again and rewrites this page.\n\n")
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
	p("\n")
	for _, o := range r.outs {
		if !o.met() {
			p("- **Missed: %s, %s against %s%s.** %s.\n", o.what, r.valueString(o), o.boundString(), r.againstString(o), r.missedBecause(o))
		}
	}
	p("\n%s, Go %s, %s; %s. %s, %s.\n\n", r.env.machine, r.env.goVersion, r.env.deps, r.env.redis, r.env.date, r.env.mode)
	p("**Method.** Each table is one `go test -bench` command (below it), run in rounds, a process each that runs every benchmark of the table once, so that the bus and its reference take turns under the same load; a figure is the median of its rounds (benchstat's center) and a ratio's interval is a 95%% bootstrap interval of the ratio of the two medians. One op is one event; allocations are counted over every goroutine of the process; throughput is events over the wall time until the consumer has the last one. Latencies run from when an event was due on a fixed schedule, not from when it was sent, so a publisher that falls behind counts its delay in every late event (no coordinated omission). Redis is a redis-server the benchmark starts on a free loopback port (no persistence); NATS is a JetStream server inside the benchmark process on a free loopback port (memory streams); the HTTP hub is a loopback server that drains each request and answers 204. The interval of the allocation row is the range of its rounds.\n\n")

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
	p("\nEvents per second, events made with `bus.NewMessage` by the publishers. The Router carries each event through two handlers, as the bus does (its pipeline, then `Handle`).\n\n")
	p("```sh\n%s\n```\n\n", r.commands["inprocess"])

	p("## Redis Streams\n\n")
	p("| events/s | go-redis pipelined | go-redis, one XADD at a time | bus | watermill-redisstream | bus ÷ pipelined |\n|---|---:|---:|---:|---:|---:|\n")
	for _, row := range []string{"Publish/publishers=1", "Publish/publishers=8", "Publish/publishers=64", "Consume", "EndToEnd/publishers=8"} {
		base := "Redis/" + row + "/impl="
		tp := func(impl string) string {
			xs := r.rs.get(base+impl, "msgs/s")
			if len(xs) == 0 {
				return "—"
			}
			return fmtNum(median(xs))
		}
		label := strings.NewReplacer("/publishers=", ", publishers ", "EndToEnd", "end to end", "Consume", "consume a backlog").Replace(row)
		p("| %s | %s | %s | %s | %s | %s |\n", label, tp("goredis-pipelined"), tp("goredis"), tp("bus"), tp("watermill"),
			r.ratioCell(base+"bus", base+"goredis-pipelined", "msgs/s"))
	}
	p("\nConsume: the consumer alone, on a stream filled beforehand. End to end: 8 publishers and one consumer until every ack reached Redis, the saturation throughput. The go-redis consumer reads 256 entries per XREADGROUP and acks each read with one XACK.\n\n")
	p("```sh\n%s\n```\n\n", r.commands["redis"])
	p("| rate | p50 / p99 / p99.9 (ms): go-redis | bus | watermill-redisstream | bus p99 ÷ go-redis |\n|---:|---:|---:|---:|---:|\n")
	for _, rate := range []int{1000, 5000, 20000} {
		base := fmt.Sprintf("Redis/Latency/rate=%d/impl=", rate)
		p("| %s/s | %s | %s | %s | %s |\n", fmtNum(float64(rate)), r.percentiles(base+"goredis"), r.percentiles(base+"bus"), r.percentiles(base+"watermill"),
			r.ratioCell(base+"bus", base+"goredis", "p99-µs"))
	}
	sat := "Redis/EndToEnd/publishers=8/impl="
	p("| saturation | %s | %s | %s | %s |\n", r.percentiles(sat+"goredis-pipelined"), r.percentiles(sat+"bus"), r.percentiles(sat+"watermill"),
		r.ratioCell(sat+"bus", sat+"goredis-pipelined", "p99-µs"))
	p("\nOne publishing goroutine at a fixed rate; go-redis and watermill-redisstream wait for each XADD, the bus's `Publish` returns once its ingress has the event. Saturation: the end-to-end runs above, from each event's making (go-redis pipelined there).\n\n")
	p("```sh\n%s\n```\n\n", r.commands["latency"])

	p("## NATS JetStream\n\n")
	p("| publish, events/s | nats.go async | bus | bus ÷ nats.go async | nats.go sync | transport's `Publish` | transport ÷ nats.go sync | transport ÷ nats.go async | CPU µs/event: nats.go async, bus, nats.go sync, transport |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range []int{1, 8} {
		base := fmt.Sprintf("JetStream/Publish/publishers=%d/impl=", n)
		p("| %d publisher%s | %s | %s | %s | %s | %s | %s | %s | %s, %s, %s, %s |\n", n, plural(n),
			r.figure(base+"raw-async", "msgs/s"), r.figure(base+"bus", "msgs/s"), r.ratioCell(base+"bus", base+"raw-async", "msgs/s"),
			r.figure(base+"raw-sync", "msgs/s"), r.figure(base+"transport", "msgs/s"),
			r.ratioCell(base+"transport", base+"raw-sync", "msgs/s"), r.ratioCell(base+"transport", base+"raw-async", "msgs/s"),
			r.us(base+"raw-async"), r.us(base+"bus"), r.us(base+"raw-sync"), r.us(base+"transport"))
	}
	p("\nAsynchronous: nats.go's `PublishMsgAsync` from as many goroutines on one JetStream context that keeps at most 4,096 publishes unacknowledged (the transport's `max_pending`), until every acknowledgement is in, against the bus's `Publish`, which returns once its ingress has the event (its 64 lanes then call the transport's `Publish`), until the stream holds every event: the two calls an application makes and forgets, timed until the stream has stored everything; the target compares them. Synchronous: nats.go's `PublishMsg` and the transport's `Publish`, one event per call, each call returning once the stream has stored it, so each publisher has one event in flight: bound by round trips more than by CPU, and compared with each other; the transport ÷ async column is the old target's figure. CPU is this process's per event (publishers, bus, nats.go and the NATS server, which runs inside it). Every side sends the same messages (the transport's headers and payload); the bus's carry one header more, the `transport` metadata its route stage sets.\n\n")
	e2e := "JetStream/EndToEnd/publishers=8/impl="
	p("| end to end, 8 publishers | nats.go | bus | bus ÷ nats.go | p50 / p99 / p99.9 (ms): nats.go | bus | CPU µs/event: nats.go, bus |\n|---|---:|---:|---:|---:|---:|---:|\n")
	p("| events/s | %s | %s | %s | %s | %s | %s, %s |\n", r.figure(e2e+"raw-async", "msgs/s"), r.figure(e2e+"bus", "msgs/s"),
		r.ratioCell(e2e+"bus", e2e+"raw-async", "msgs/s"), r.latencies(e2e+"raw-async"), r.latencies(e2e+"bus"), r.us(e2e+"raw-async"), r.us(e2e+"bus"))
	p("\nOne NATS server with JetStream, embedded in the benchmark process on a free loopback port; a memory stream per run. End to end: 8 publishers and one durable pull consumer until every ack reached the server (the consumer's ack floor), the saturation throughput, with latencies from each event's making; nats.go publishes asynchronously as above, fetches 256 messages per pull and acks each; the bus publishes with `Publish` and consumes with `Handle`. The ratios move with the machine's load: nats.go's async publish keeps up to 4,096 events in flight, every other side a bounded few (one per synchronous caller, one per bus lane, 64 by default), so they wait for round trips, which a busy machine lengthens; `make bench-guard` leaves them out.\n\n")
	p("```sh\n%s\n```\n\n", r.commands["jetstream"])

	p("## HTTP\n\n")
	p("| publishers | raw net/http | transport alone | bus | bus ÷ raw | p99 (ms): raw, bus | bus p99 ÷ raw |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range []int{1, 8, 64} {
		base := fmt.Sprintf("HTTP/publishers=%d/client=", n)
		tp := func(c string) string { return fmtNum(median(r.rs.get(base+c, "msgs/s"))) }
		ms := func(c string) string { return fmtNum(median(r.rs.get(base+c, "p99-µs")) / 1000) }
		p("| %d | %s | %s | %s | %s | %s, %s | %s |\n", n, tp("rawrt"), tp("publisher"), tp("bus"),
			r.ratioCell(base+"bus", base+"rawrt", "msgs/s"), ms("rawrt"), ms("bus"), r.ratioCell(base+"bus", base+"rawrt", "p99-µs"))
	}
	p("\nThe bus's `PublishSync` of one event per call against `http.Transport.RoundTrip` of the very requests the transport sends, on a transport configured as the bus's; latency is the call's.\n\n")
	p("```sh\n%s\n```\n\n", r.commands["http"])

	p("## Delivery to the hub, per path\n\n")
	p("| path | p50 | p99 | p99.9 (ms) |\n|---|---:|---:|---:|\n")
	for _, path := range deliveryPaths {
		name := "Delivery/path=" + path.key
		p("| %s | %s | %s | %s |\n", path.label, r.ms(name, "p50-µs"), r.ms(name, "p99-µs"), r.ms(name, "p999-µs"))
	}
	p("\n![delivery latency per path](%s)\n\n", r.chart)
	p("2,000 events/s from one goroutine through the bus's async `Publish` to a hub: in process (`Handle`), over HTTP, over Redis Streams read with go-redis, and with 10%% of keys on Redis.\n\n")
	p("```sh\n%s\n```\n\n", r.commands["delivery"])

	p("## Known costs\n\n")
	bus8 := "InProcess/publishers=8/system="
	p("- The bus carries each event through two in-process queues (the ingress, then the memory transport) and two Watermill Router handlers (the pipeline, then `Handle`): %s allocations per event against the memory transport's %s.\n",
		fmtNum(median(r.rs.get(bus8+"bus", "allocs/op"))), fmtNum(median(r.rs.get(bus8+"memory", "allocs/op"))))
	if r.prof.routerAllocs > 0 {
		p("- Watermill's Router, which runs both of the bus's handlers, starts a goroutine per event in each and gives it a log-field map and context values (handler, subscriber and topic names): %.0f%% of the bus's allocations (profile below).\n", r.prof.routerAllocs)
	}
	p("- A publish that waits for Redis (`PublishSync`, watermill-redisstream, one XADD at a time) is bound by round trips; the bus's async `Publish` lets its 64 lanes pipeline them.\n")
	p("- Fixed-rate latencies include the ingress's wait for a lane; at saturation they are the queue's length over the throughput.\n")
	if len(r.prof.cpu) > 0 && r.missed("") {
		p("\nWhere the bus on memory spends, 8 publishers (`go tool pprof -top` of `-cpuprofile` and `-memprofile` of `InProcess/publishers=8/system=bus`): CPU by cumulative time (switchyard's and Watermill's functions), then allocated objects, by function.\n\n")
		p("```\n%s\n```\n\n```\n%s\n```\n", strings.Join(r.prof.cpu, "\n"), strings.Join(r.prof.allocs, "\n"))
	}
	return w.String()
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

func (r *report) againstString(o outcome) string {
	if o.refName == "" {
		return ""
	}
	return " " + o.reference
}

// missedBecause says what explains a missed target.
func (r *report) missedBecause(o outcome) string {
	if o.err != nil {
		return "Not measured: its benchmark did not run"
	}
	switch o.section {
	case "inprocess":
		return "The profile under Known costs shows where the bus's time and allocations go"
	case "redis", "latency":
		return "The bus's own cost per event (see In process and Known costs) comes on top of the round trips to Redis"
	case "jetstream":
		return "Each event costs this process more CPU through the bus than through nats.go's async publish (NATS JetStream, CPU column): the bus's own stages (see In process), and a transport whose `Publish` waits for each acknowledgement, one event in flight per lane, where nats.go sends thousands before it reads one"
	default:
		return "The bus's own cost per event (see In process and Known costs) comes on top of the request"
	}
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
