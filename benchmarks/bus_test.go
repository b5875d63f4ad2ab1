package benchmarks

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports/memory"
)

// eventType is not coalesced by the default configuration (typing is), so
// every published event reaches the handler.
const eventType = "chat_message"

// bigQueue holds every message a benchmark publishes (with -benchtime up to
// 4M x), so Publish never waits for room: the run measures the pipeline, not
// backpressure.
const bigQueue = 1 << 22

// runningBus is a bus built from bus.DefaultConfig (with queueSize, when not
// zero, as the size of both the ingress and the memory transport's queue),
// with one Handle consumer on topic that calls handled and acks. It runs
// until the benchmark ends.
func runningBus(b *testing.B, queueSize int, handled func()) *bus.Bus {
	b.Helper()
	cfg := bus.DefaultConfig()
	if queueSize != 0 {
		cfg.Bus.QueueSize = queueSize
		cfg.Transports["memory"]["queue_size"] = queueSize
	}
	return runningBusWith(b, cfg, emptyHandler(handled), bus.WithLoggerAdapter(watermill.NopLogger{}))
}

// emptyHandler is a consumer that only counts: it reads nothing of the
// event.
func emptyHandler(handled func()) message.NoPublishHandlerFunc {
	return func(*message.Message) error {
		handled()
		return nil
	}
}

// readingHandler is a consumer that reads what any consumer reads to act
// on an event, its type, key and payload (the chat example's hub reads
// those and more), then counts.
func readingHandler(handled func()) message.NoPublishHandlerFunc {
	return func(m *message.Message) error {
		n := len(m.Metadata.Get(bus.MetaEventType)) + len(m.Metadata.Get(bus.MetaEventKey))
		if len(m.Payload) > 0 {
			n += int(m.Payload[0])
		}
		readSink.Add(int64(n))
		handled()
		return nil
	}
}

var readSink atomic.Int64

// runningBusWith is runningBus for any configuration, consumer and options.
func runningBusWith(b *testing.B, cfg bus.Config, handler message.NoPublishHandlerFunc, opts ...bus.Option) *bus.Bus {
	b.Helper()
	bs, err := bus.New(cfg, opts...)
	if err != nil {
		b.Fatal(err)
	}
	if err := bs.Handle("bench", topic, handler); err != nil {
		b.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- bs.Run(context.Background()) }()
	select {
	case <-bs.Running():
	case err := <-ran:
		b.Fatalf("Run: %v", err)
	}
	b.Cleanup(func() {
		if err := bs.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
		if err := <-ran; err != nil {
			b.Errorf("Run: %v", err)
		}
	})
	return bs
}

func queueName(size int) string {
	if size == 0 {
		return "default"
	}
	return strconv.Itoa(size)
}

// BenchmarkBusPublish measures the async Bus.Publish of one goroutine on a
// running bus with the default configuration; ns/op is the time of one
// Publish call. The target is under 1 µs/op.
//
//   - load=burst: messages are published in bursts of at most 5,000, half
//     the default queue, and between bursts the timer stops until the
//     handler has caught up, so Publish always finds room: its own cost. The
//     pipeline keeps running on the other core meanwhile, so allocs/op counts
//     its allocations during the bursts too; docs/performance.md attributes
//     them from a profile.
//     msg=new makes each message with bus.NewMessage in the timed loop;
//     msg=premade makes each burst's messages with the timer stopped.
//   - load=sustained: one unbroken loop of bus.NewMessage and Publish on the
//     default 10,000-message queue. Once the queue is full Publish waits for
//     room, so ns/op tends to the pipeline's throughput: what a publisher
//     that outruns the bus sees (backpressure).
func BenchmarkBusPublish(b *testing.B) {
	for _, msg := range []string{"new", "premade"} {
		b.Run("load=burst/msg="+msg, func(b *testing.B) {
			benchPublishBursts(b, msg == "premade")
		})
	}
	b.Run("load=sustained/msg=new", func(b *testing.B) {
		var handled atomic.Int64
		bs := runningBus(b, 0, func() { handled.Add(1) })
		startClean()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := bs.Publish(topic, bus.NewMessage(eventType, keys[i%keyCount], payload)); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		waitHandled(b, &handled, int64(b.N))
	})
}

const burstSize = 5000

func benchPublishBursts(b *testing.B, premade bool) {
	var handled atomic.Int64
	bs := runningBus(b, 0, func() { handled.Add(1) })
	batch := make([]*message.Message, burstSize)
	startClean()
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		n := min(burstSize, b.N-sent)
		b.StopTimer()
		waitHandled(b, &handled, int64(sent))
		if premade {
			for i := range n {
				batch[i] = bus.NewMessage(eventType, keys[(sent+i)%keyCount], payload)
			}
		}
		b.StartTimer()
		for i := range n {
			m := batch[i]
			if !premade {
				m = bus.NewMessage(eventType, keys[(sent+i)%keyCount], payload)
			}
			if err := bs.Publish(topic, m); err != nil {
				b.Fatal(err)
			}
		}
		sent += n
	}
	b.StopTimer()
	waitHandled(b, &handled, int64(b.N))
}

// waitHandled polls until handled reaches n; call it with the timer stopped.
func waitHandled(b *testing.B, handled *atomic.Int64, n int64) {
	b.Helper()
	deadline := time.Now().Add(drainTimeout)
	for handled.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d messages handled after %s", handled.Load(), n, drainTimeout)
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// BenchmarkBusEndToEnd measures publish→Handle throughput of a whole bus on
// its default configuration: b.N events made with bus.NewMessage, each with
// one of 1,000 keys, published with Publish from GOMAXPROCS goroutines, and
// handled by one Handle consumer; the timer runs from the first Publish
// until the handler has returned for the last one. Metrics as in
// BenchmarkEndToEnd.
//
//   - system=memory is the reference, measured in the same run: the memory
//     transport alone, with the same queue size, exactly as
//     BenchmarkEndToEnd/msg=new/consume=goroutine/transport=memory (a
//     goroutine per message, as the bus's Router runs handlers). benchstat
//     -col /system shows the bus as a change from it: the whole cost of the
//     bus (ingress, Router, pipeline stages, a second memory broker,
//     bus.NewMessage's extra metadata).
//   - queue=default: the default 10,000-message queues; once the bus's
//     ingress is full the publishers wait for room (backpressure).
//   - queue=4194304: the ingress and the memory transport hold every
//     message, so the publishers never wait; if this differs from the
//     default, backpressure itself costs throughput.
func BenchmarkBusEndToEnd(b *testing.B) {
	for _, queueSize := range []int{0, bigQueue} {
		b.Run("queue="+queueName(queueSize)+"/system=memory", func(b *testing.B) {
			m, err := memory.NewBroker(memory.Config{QueueSize: queueSize}, nil)
			if err != nil {
				b.Fatal(err)
			}
			endToEnd(b, pubSub{pub: m, sub: m, close: m.Close}, newKeyedMessage, consumeInGoroutines)
		})
		b.Run("queue="+queueName(queueSize)+"/system=bus", func(b *testing.B) {
			handled := newCountdown(b.N)
			publishAndWait(b, runningBus(b, queueSize, handled.done), handled)
		})
	}
}

// BenchmarkNewMessage is the caller's share of the other benchmarks' msg=new
// figures: a Watermill message with its event_key, as BenchmarkEndToEnd
// makes it, and bus.NewMessage, which adds an event type and a timestamp.
func BenchmarkNewMessage(b *testing.B) {
	b.Run("kind=watermill", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sink = newKeyedMessage(i % keyCount)
		}
	})
	b.Run("kind=bus", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sink = bus.NewMessage(eventType, keys[i%keyCount], payload)
		}
	})
}

var sink *message.Message
