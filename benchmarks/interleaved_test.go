package benchmarks

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/bus"
)

// The benchmarks here compare a variant of the bus with its reference in
// one process, taking turns: a turn publishes turnEvents events to one bus
// and waits until its consumer has handled them all, and the turns go
// reference, variant, variant, reference, over and over. A quartet's two
// turns of each bus run seconds apart at most, under the same load from
// whatever else shares the machine, and the order cancels what one turn
// leaves the next (a warmed heap, garbage to collect). On a machine whose
// speed drifts by tens of percent over minutes, a variant per process, in
// random order (BusMetrics and BusRouting), needs hundreds of rounds to
// resolve a few percent; this needs a few runs.
//
// Each run reports the variant's throughput relative to the reference's
// (variant/ref: the median over its quartets of the variant's events per
// second over the reference's, 1 when equal) and the same for CPU time per
// event (variant-cpu/ref), beside both throughputs. -benchtime counts the
// events of both buses together.

// turnEvents is how many events a turn publishes: about a tenth of a
// second of the bus's work, long next to a turn's start and end.
const turnEvents = 10_000

// BenchmarkBusMetricsInterleaved is BusMetrics with turns: the per-event
// metrics' cost as a ratio, against metrics off (the reference), on the
// default configuration (metrics=on) and with the memory transport's
// deliveries timed too (metrics=all).
func BenchmarkBusMetricsInterleaved(b *testing.B) {
	nop := bus.WithLoggerAdapter(watermill.NopLogger{})
	ref := metricsLevels[0]
	for _, handler := range metricsConsumers {
		for _, level := range metricsLevels[1:] {
			b.Run("handler="+handler.name+"/metrics="+level.name, func(b *testing.B) {
				interleave(b,
					newTurnBus(b, ref.config(), handler.make, append([]bus.Option{nop}, ref.opts...)...),
					newTurnBus(b, level.config(), handler.make, append([]bus.Option{nop}, level.opts...)...))
			})
		}
	}
}

// BenchmarkBusRoutingInterleaved is BusRouting (routing off, the
// reference, against on) with turns: the split and fallback stages' cost
// as a ratio.
func BenchmarkBusRoutingInterleaved(b *testing.B) {
	nop := bus.WithLoggerAdapter(watermill.NopLogger{})
	interleave(b,
		newTurnBus(b, routedConfig(false), emptyHandler, nop),
		newTurnBus(b, routedConfig(true), emptyHandler, nop))
}

// turnBus is a running bus whose consumer counts down the current turn's
// events.
type turnBus struct {
	bs   *bus.Bus
	turn atomic.Pointer[countdown]
}

func newTurnBus(b *testing.B, cfg bus.Config, consumer func(handled func()) message.NoPublishHandlerFunc, opts ...bus.Option) *turnBus {
	b.Helper()
	t := &turnBus{}
	t.bs = runningBusWith(b, cfg, consumer(func() { t.turn.Load().done() }), opts...)
	return t
}

// run publishes n events from GOMAXPROCS goroutines, as publishAndWait
// does, and returns the wall time and the process's CPU time until the
// consumer has handled them all.
func (t *turnBus) run(b *testing.B, n int) (wall, cpu time.Duration) {
	b.Helper()
	handled := newCountdown(n)
	t.turn.Store(handled)
	publishers := runtime.GOMAXPROCS(0)
	cpu0, _ := processCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := p; i < n; i += publishers {
				m := bus.NewMessage(eventType, keys[rand.IntN(keyCount)], payload)
				if err := t.bs.Publish(topic, m); err != nil {
					handled.fail(err)
					return
				}
			}
		})
	}
	handled.wait(b)
	wall = time.Since(start)
	cpu1, _ := processCPU()
	wg.Wait()
	return wall, cpu1 - cpu0
}

// interleave runs ref and variant in quartets of turns (ref, variant,
// variant, ref) until both have published b.N events together, after a
// turn of each untimed, and reports the ratios described at the top of the
// file.
func interleave(b *testing.B, ref, variant *turnBus) {
	b.Helper()
	ref.run(b, turnEvents)
	variant.run(b, turnEvents)
	startClean()
	quartets := max(1, b.N/(4*turnEvents))
	buses := [2]*turnBus{ref, variant}
	var (
		speed, cpu       []float64 // per quartet, variant over ref
		refWall, varWall time.Duration
		refCPU, varCPU   time.Duration
	)
	b.ResetTimer()
	for range quartets {
		var w, c [2]time.Duration // ref, variant
		for _, i := range [...]int{0, 1, 1, 0} {
			wall, used := buses[i].run(b, turnEvents)
			w[i] += wall
			c[i] += used
		}
		speed = append(speed, float64(w[0])/float64(w[1]))
		cpu = append(cpu, float64(c[1])/float64(c[0]))
		refWall, varWall = refWall+w[0], varWall+w[1]
		refCPU, varCPU = refCPU+c[0], varCPU+c[1]
	}
	b.StopTimer()
	events := float64(2 * turnEvents * quartets) // per bus
	b.ReportMetric(median(speed), "variant/ref")
	b.ReportMetric(events/refWall.Seconds(), "ref-msgs/s")
	b.ReportMetric(events/varWall.Seconds(), "variant-msgs/s")
	if _, ok := processCPU(); ok { // not on every platform
		b.ReportMetric(median(cpu), "variant-cpu/ref")
		b.ReportMetric(float64(refCPU.Nanoseconds())/events, "ref-cpu-ns/op")
		b.ReportMetric(float64(varCPU.Nanoseconds())/events, "variant-cpu-ns/op")
	}
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkBusInterleavedNull is the method's null: two identical buses
// (BusMetrics' reference, metrics off) in turns. Its ratios should read 1
// within their spread; a bias of the method would show here.
func BenchmarkBusInterleavedNull(b *testing.B) {
	nop := bus.WithLoggerAdapter(watermill.NopLogger{})
	interleave(b,
		newTurnBus(b, bus.DefaultConfig(), readingHandler, nop, bus.WithoutEventMetrics()),
		newTurnBus(b, bus.DefaultConfig(), readingHandler, nop, bus.WithoutEventMetrics()))
}
