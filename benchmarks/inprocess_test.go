package benchmarks

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports/memory"
)

// The in-process systems, the floor first. Each carries b.N events made with
// bus.NewMessage in the timed loop, from publishers= goroutines, to one
// consumer; the timer runs until the consumer has the last one, so msgs/s
// is the sustained throughput and allocs/op the whole cost of an event
// (the caller's message included), counted over every goroutine.
//
//   - system=chan: a bare buffered Go channel (10,000 slots) read by one
//     goroutine. The floor: nothing can carry a message for less.
//   - system=memory: the memory transport alone (64 lanes, 10,000-message
//     queue), consumed by one goroutine that acks each message.
//   - system=router: Watermill's Router over gochannel in the bus's shape:
//     publish to gochannel, a Router handler that publishes each message
//     on, and a second Router handler as the consumer (as Bus.Handle is).
//   - system=bus: a whole bus on its default configuration (memory
//     transport, routing and coalescing stages, metrics): Publish, the
//     ingress, the Router pipeline, the memory transport and Handle.
var inProcessSystems = []struct {
	name string
	open func(b *testing.B, consumed func()) func(*message.Message) error
}{
	{"chan", openChan},
	{"memory", openMemory},
	{"router", openRouter},
	{"bus", openBus},
}

// BenchmarkInProcess measures the in-process systems side by side, with 1,
// 8 and 64 publishers; benchstat -col /system compares them.
func BenchmarkInProcess(b *testing.B) {
	for _, publishers := range publisherCounts {
		for _, sys := range inProcessSystems {
			b.Run(publishersName(publishers)+"/system="+sys.name, func(b *testing.B) {
				consumed := newCountdown(b.N)
				publish := sys.open(b, consumed.done)
				startClean()
				b.ReportAllocs()
				b.ResetTimer()
				err := inBatches(b.N, publishers, 1, func(i, _ int) error { return publish(newEvent(i)) })
				if err != nil {
					b.Fatal(err)
				}
				consumed.wait(b)
				b.StopTimer()
				reportThroughput(b)
			})
		}
	}
}

func openChan(b *testing.B, consumed func()) func(*message.Message) error {
	ch := make(chan *message.Message, 10000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
			consumed()
		}
	}()
	b.Cleanup(func() {
		close(ch)
		<-done
	})
	return func(m *message.Message) error {
		ch <- m
		return nil
	}
}

func openMemory(b *testing.B, consumed func()) func(*message.Message) error {
	m, err := memory.NewBroker(memory.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := m.Subscribe(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range ch {
			msg.Ack()
			consumed()
		}
	}()
	b.Cleanup(func() {
		cancel()
		if err := m.Close(); err != nil {
			b.Error(err)
		}
		<-done
	})
	return func(msg *message.Message) error { return m.Publish(topic, msg) }
}

func openRouter(b *testing.B, consumed func()) func(*message.Message) error {
	logger := watermill.NopLogger{}
	// Watermill's in-process Pub/Sub as most users run it: non-blocking
	// Publish and an unbuffered output channel.
	g := gochannel.NewGoChannel(gochannel.Config{}, logger)
	r, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		b.Fatal(err)
	}
	const inTopic = "ingress"
	r.AddHandler("pipeline", inTopic, g, topic, g, func(m *message.Message) ([]*message.Message, error) {
		return []*message.Message{m}, nil
	})
	r.AddConsumerHandler("consumer", topic, g, func(*message.Message) error {
		consumed()
		return nil
	})
	ran := make(chan error, 1)
	go func() { ran <- r.Run(context.Background()) }()
	<-r.Running()
	b.Cleanup(func() {
		if err := r.Close(); err != nil {
			b.Error(err)
		}
		if err := <-ran; err != nil && !errors.Is(err, context.Canceled) {
			b.Error(err)
		}
		if err := g.Close(); err != nil {
			b.Error(err)
		}
	})
	return func(m *message.Message) error { return g.Publish(inTopic, m) }
}

func openBus(b *testing.B, consumed func()) func(*message.Message) error {
	bs := runningBus(b, bus.DefaultConfig(), topic, func(*message.Message) error {
		consumed()
		return nil
	})
	return func(m *message.Message) error { return bs.Publish(topic, m) }
}
