package benchmarks

import (
	"math/rand/v2"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/bus"
)

// BenchmarkBusRouting measures what the split and fallback stages cost end
// to end, publish→Handle, on in-process transports: two memory transports,
// "memory" (the baseline and the fallback) and "candidate", both consumed
// by one Handle in both variants, so only the routing differs. The queues
// are the default ones (10,000 events).
//
//   - routing=off is the reference: the master switch off and fallback off.
//     The stages are in the pipeline but pass through (the split writes the
//     baseline's name in the transport metadata, as the bus's route stage
//     always did).
//   - routing=on: the switch on at 100%, so every event's key is hashed
//     into its bucket and goes to the candidate, and fallback on, so every
//     publish runs through the candidate's circuit breaker with a deadline
//     on its context.
//
// benchstat -col /routing shows the cost of routing as a change from off.
func BenchmarkBusRouting(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "routing=off"
		if on {
			name = "routing=on"
		}
		b.Run(name, func(b *testing.B) {
			benchBus(b, routedConfig(on), emptyHandler, bus.WithLoggerAdapter(watermill.NopLogger{}))
		})
	}
}

// routedConfig is BusRouting's bus: two memory transports, both consumed,
// with the split at 100% and fallback both on or both off.
func routedConfig(on bool) bus.Config {
	cfg := bus.DefaultConfig()
	cfg.Transports["candidate"] = map[string]any{"type": "memory"}
	cfg.Routing.Baseline = "memory"
	cfg.Routing.Candidate = "candidate"
	cfg.Routing.Enabled = on
	cfg.Routing.Percentage = 100
	cfg.Routing.Fallback.Enabled = on
	cfg.Consume.From = []string{"memory", "candidate"}
	return cfg
}

// metricsConsumers are BusMetrics' two consumers.
var metricsConsumers = []struct {
	name string
	make func(handled func()) message.NoPublishHandlerFunc
}{{"empty", emptyHandler}, {"reads", readingHandler}}

// BenchmarkBusMetrics measures what the per-event metrics cost end to end
// on the default configuration (memory transport): metrics=off is a bus
// built WithoutEventMetrics, the reference; metrics=on, the default,
// observes the ingress wait and the publish duration and outcome of every
// event (the memory transport, in process, does not time deliveries);
// metrics=all times every delivery too (metrics.in_process_delivery_latency).
// benchstat -col /metrics shows their cost.
//
// The consumer is either empty (handler=empty: it reads nothing of the
// event, so the delivery latency's read of published_at is the consumer's
// first touch of the event's metadata, cold from the queue) or reads the
// event's type, key and payload (handler=reads), as any consumer does.
func BenchmarkBusMetrics(b *testing.B) {
	for _, handler := range metricsConsumers {
		for _, level := range metricsLevels {
			opts := append([]bus.Option{bus.WithLoggerAdapter(watermill.NopLogger{})}, level.opts...)
			b.Run("handler="+handler.name+"/metrics="+level.name, func(b *testing.B) {
				benchBus(b, level.config(), handler.make, opts...)
			})
		}
	}
}

// metricsLevels are BusMetrics' buses: the reference first.
var metricsLevels = []struct {
	name   string
	config func() bus.Config
	opts   []bus.Option
}{
	{"off", bus.DefaultConfig, []bus.Option{bus.WithoutEventMetrics()}},
	{"on", bus.DefaultConfig, nil},
	{"all", func() bus.Config {
		cfg := bus.DefaultConfig()
		cfg.Metrics.InProcessDeliveryLatency = true
		return cfg
	}, nil},
}

// benchBus runs a bus built from cfg with one Handle consumer, made by
// consumer around the count of events handled, and measures it with
// publishAndWait.
func benchBus(b *testing.B, cfg bus.Config, consumer func(handled func()) message.NoPublishHandlerFunc, opts ...bus.Option) {
	b.Helper()
	handled := newCountdown(b.N)
	publishAndWait(b, runningBusWith(b, cfg, consumer(handled.done), opts...), handled)
}

// publishAndWait publishes b.N events to bs from GOMAXPROCS goroutines and
// stops the timer once handled counted them all. Besides the throughput it
// reports cpu-ns/op, the CPU time the whole process spent per event.
func publishAndWait(b *testing.B, bs *bus.Bus, handled *countdown) {
	b.Helper()
	startClean()
	peak := sampleGoroutines()
	cpu0, cpuOK := processCPU()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := bus.NewMessage(eventType, keys[rand.IntN(keyCount)], payload)
			if err := bs.Publish(topic, m); err != nil {
				handled.fail(err)
				return
			}
		}
	})
	handled.wait(b)
	b.StopTimer()
	if cpu1, ok := processCPU(); ok && cpuOK {
		// CPU time per event moves far less than wall time with what else
		// runs on the machine.
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	reportThroughput(b, peak.Stop())
}
