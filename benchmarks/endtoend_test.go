package benchmarks

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/switchyard-go/switchyard/transports/memory"
)

// topic is the one topic every end-to-end benchmark publishes to.
const topic = "events:chat"

// pubSub is a transport under test: both ends and how to close them.
type pubSub struct {
	pub   message.Publisher
	sub   message.Subscriber
	close func() error
}

// transportsUnderTest, the reference first: benchstat -col /transport shows
// the memory column as a change from gochannel.
var transportsUnderTest = []struct {
	name string
	open func() (pubSub, error)
}{
	{"gochannel", func() (pubSub, error) {
		// Watermill's own in-process Pub/Sub as most users run it:
		// non-blocking Publish (each message is handed over by two fresh
		// goroutines that live until it is acked) and an unbuffered output
		// channel.
		g := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: false}, watermill.NopLogger{})
		return pubSub{pub: g, sub: g, close: g.Close}, nil
	}},
	{"memory", func() (pubSub, error) {
		// Defaults: 64 lanes, a 10,000-message queue that blocks when full.
		m, err := memory.NewBroker(memory.Config{}, nil)
		if err != nil {
			return pubSub{}, err
		}
		return pubSub{pub: m, sub: m, close: m.Close}, nil
	}},
}

// messageSources say where the published messages come from.
//
//   - msg=new: each message is made in the timed loop with
//     message.NewMessage(watermill.NewUUID(), payload) and its event_key set,
//     as an application does, so allocs/op and B/op are the whole cost of an
//     event, the caller's message included (BenchmarkNewMessage measures
//     that share alone: 7 allocs, 720 B).
//   - msg=premade: one message per key is made before the timer starts and
//     published again and again. Both transports copy what they are given
//     and never change the original, so reuse is legal, and allocs/op and
//     B/op are the transport's own, plus the one 8-byte allocation of the
//     variadic []*message.Message that any call through message.Publisher
//     makes; the consumers allocate nothing (consume=goroutine: one
//     goroutine). The reference figures for gochannel (26 allocs,
//     ~2 KB per message) are this variant's, so its 8-allocs target is read
//     here.
var messageSources = []struct {
	name string
	make func() func(key int) *message.Message
}{
	{"new", func() func(int) *message.Message {
		return newKeyedMessage
	}},
	{"premade", func() func(int) *message.Message {
		pool := make([]*message.Message, keyCount)
		for k := range pool {
			pool[k] = newKeyedMessage(k)
		}
		return func(k int) *message.Message { return pool[k] }
	}},
}

func newKeyedMessage(key int) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), payload)
	m.Metadata.Set(memory.KeyMetadata, keys[key])
	return m
}

// consumers say how the one subscription handles what it receives.
//
//   - consume=loop: one goroutine reads the channel and acks each message
//     before reading the next: the fair comparison of the transports alone.
//   - consume=goroutine: each message is acked in a goroutine of its own, as
//     Watermill's Router runs a handler (router.go: go h.handleMessage), so
//     a transport that delivers several messages at once may use it.
var consumers = []struct {
	name string
	run  func(ch <-chan *message.Message, n int, c *countdown)
}{
	{"loop", consumeInLoop},
	{"goroutine", consumeInGoroutines},
}

func consumeInLoop(ch <-chan *message.Message, n int, c *countdown) {
	for range n {
		m, ok := <-ch
		if !ok {
			c.fail(errors.New("subscription closed early"))
			return
		}
		m.Ack()
		c.done()
	}
}

func consumeInGoroutines(ch <-chan *message.Message, n int, c *countdown) {
	for range n {
		m, ok := <-ch
		if !ok {
			c.fail(errors.New("subscription closed early"))
			return
		}
		go func() {
			m.Ack()
			c.done()
		}()
	}
}

// BenchmarkEndToEnd measures publish→ack throughput of one topic on an
// in-process transport: b.N messages, each keyed with one of 1,000
// event_keys, published from GOMAXPROCS goroutines (b.RunParallel) and
// consumed by one subscription. The timer runs from the first Publish until
// the last message is acked, so ns/op is the inverse of the sustained
// throughput, reported also as msgs/s; peak-goroutines is the highest
// runtime.NumGoroutine seen meanwhile, sampled every millisecond.
//
// transport=gochannel is the reference, measured in the same run. The
// issue's targets for transport=memory: at least 3× gochannel's msgs/s, at
// most 8 allocs per message (read at msg=premade, see messageSources), and a
// goroutine count that does not grow with the backlog (gochannel's does: two
// goroutines per message not yet acked, so its peak depends on b.N).
func BenchmarkEndToEnd(b *testing.B) {
	// The transport is the innermost level so that, with -count, each
	// reference's runs come right before the memory transport's: the two are
	// measured seconds apart, under the same load.
	for _, src := range messageSources {
		for _, c := range consumers {
			for _, tr := range transportsUnderTest {
				b.Run("msg="+src.name+"/consume="+c.name+"/transport="+tr.name, func(b *testing.B) {
					ps, err := tr.open()
					if err != nil {
						b.Fatal(err)
					}
					endToEnd(b, ps, src.make(), c.run)
				})
			}
		}
	}
}

// endToEnd publishes b.N messages made by next on ps from GOMAXPROCS
// goroutines and waits until consume has acked them all, timing just that.
// It closes ps.
func endToEnd(b *testing.B, ps pubSub, next func(key int) *message.Message, consume func(<-chan *message.Message, int, *countdown)) {
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		if err := ps.close(); err != nil {
			b.Error(err)
		}
	}()
	ch, err := ps.sub.Subscribe(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	acked := newCountdown(b.N)
	go consume(ch, b.N, acked)
	startClean()
	peak := sampleGoroutines()

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := ps.pub.Publish(topic, next(rand.IntN(keyCount))); err != nil {
				acked.fail(err)
				return
			}
		}
	})
	acked.wait(b)
	b.StopTimer()
	reportThroughput(b, peak.Stop())
}
