package benchmarks

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/transports/redisstream"
)

// BenchmarkRedis compares transports/redisstream (impl=switchyard) with
// go-redis used directly (impl=goredis, the reference of each target) and
// with watermill-redisstream v1.4.5 (impl=watermill), all against one
// redis-server that the benchmark starts on a free port (redistest.Start:
// --save "" --appendonly no) and stops at its end. It is skipped when
// redis-server is missing, except in CI. Read it with benchstat -col /impl.
//
// Every impl writes the same entry (watermill-redisstream's layout: UUID,
// MessagePack metadata with event_type, event_key and published_at, the
// ~100-byte payload) with XADD without MAXLEN, and every run uses a stream
// of its own, deleted when the run ends. One op is one message; msgs/s is
// b.N over the timed wall time; cpu-ns/op and redis-cpu-ns/op are the CPU
// time this process and the redis-server spent per message meanwhile. Run
// it with a time -benchtime (1s): the impls differ by 25×, so a fixed b.N
// would not fit them all (make bench's 200000x would take over 20 minutes
// here). docs/performance.md has the command and the figures.
func BenchmarkRedis(b *testing.B) {
	env := newRedisEnv(b)
	b.Run("Publish", func(b *testing.B) { benchRedisPublish(b, env) })
	b.Run("EndToEnd", func(b *testing.B) { benchRedisEndToEnd(b, env) })
	b.Run("Latency5k", func(b *testing.B) { benchRedisLatency(b, env) })
}

// redisShape is how the publishers of a Publish or EndToEnd run publish:
// how many goroutines, and how many messages each hands over per call
// (switchyard and watermill: messages per Publish call; goredis: XADDs per
// pipeline), waiting for the call to return before it makes the next.
type redisShape struct{ publishers, batch int }

func (s redisShape) String() string {
	return fmt.Sprintf("publishers=%d/batch=%d", s.publishers, s.batch)
}

// oldReference reports whether the goredis reference of a run with this
// shape is the one the targets were first measured against (one
// goroutine, pipelines of 64, whatever the shape says) rather than the
// shape itself. It is for batch=1: a goredis user does not XADD one entry
// per round trip when throughput matters, and these rows keep their
// earlier meaning.
func (s redisShape) oldReference() bool { return s.batch == 1 }

// rawPublish publishes n entries as the goredis reference of shape does.
func (s redisShape) rawPublish(c *redis.Client, stream string, n int) error {
	if s.oldReference() {
		return rawPublishPipelined(c, stream, n)
	}
	return rawPublishConcurrently(c, stream, n, s)
}

// The publish shapes. publishers=8/batch=64 is the fair form of the
// issue's "8 concurrent publishers against go-redis pipelined 64 at a
// time": each impl's 8 goroutines hand over 64 messages at a time, as a
// user with many messages at hand would (goredis: a pipeline of 64 XADDs;
// switchyard: a Publish of 64 messages, which it sends in one pipeline;
// watermill: a Publish of 64 messages, which it XADDs one at a time). The batch=1 shapes are the first form, one
// message per Publish call against the one-goroutine reference, kept for
// comparison; publishers=64/batch=1 is what the bus does with its 64
// lanes, one message per call.
var (
	redisPublishShapes  = []redisShape{{1, 1}, {8, 1}, {64, 1}, {8, 64}}
	redisEndToEndShapes = []redisShape{{8, 1}, {8, 64}}
)

// benchRedisPublish measures publish throughput: b.N messages, each made
// in the timed loop (a new UUID and published_at), until Redis has them
// all.
//
//   - impl=goredis, the reference: with batch=1, one goroutine XADDs in
//     pipelines of 64 (go-redis Pipeline, Exec), whatever publishers=
//     says; otherwise publishers= goroutines each XADD in pipelines of
//     batch=.
//   - impl=switchyard: publishers= goroutines call Publisher.Publish with
//     batch= messages each time; Publish returns once Redis has them.
//   - impl=watermill: the same with watermill-redisstream's Publisher (one
//     XADD round trip per message).
func benchRedisPublish(b *testing.B, env *redisEnv) {
	for _, shape := range redisPublishShapes {
		for _, impl := range []string{implGoRedis, implSwitchyard, implWatermill} {
			b.Run(fmt.Sprintf("%s/impl=%s", shape, impl), func(b *testing.B) {
				stream := env.newStream(b)
				var publish func() error
				switch impl {
				case implSwitchyard:
					pub, _ := env.openSwitchyard(b, switchyardConfig("bench"))
					publish = func() error { return publishConcurrently(pub, stream, b.N, shape) }
				case implWatermill:
					pub, _ := env.openWatermill(b, "bench")
					publish = func() error { return publishConcurrently(pub, stream, b.N, shape) }
				default:
					c := env.client(b)
					publish = func() error { return shape.rawPublish(c, stream, b.N) }
				}
				startClean()
				cpu := env.cpuMark(b)
				b.ReportAllocs()
				b.ResetTimer()
				if err := publish(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
				env.reportCPU(b, cpu)
				// Every entry landed (unless our trimmer may have cut the
				// stream to its maxlen).
				trimmed := impl == implSwitchyard && b.N > redisstream.DefaultMaxLen
				if n := env.admin.XLen(b.Context(), stream).Val(); n != int64(b.N) && !trimmed {
					b.Fatalf("XLEN = %d, want %d", n, b.N)
				}
			})
		}
	}
}

// benchRedisEndToEnd measures publish→ack throughput: the timer runs until
// the handler has received all b.N messages and XPENDING shows every one
// acked in Redis. The consumer is one subscription with one handler that
// acks at once (or, for goredis, one loop).
//
//   - load=live/publishers=8/batch=…: publishing and consuming run
//     together, from an empty stream, with the publishers of
//     benchRedisPublish of that shape.
//   - load=backlog: b.N entries are XADDed (pipelines of 64) with the timer
//     stopped; the timer runs from Subscribe to the last ack: the consumer
//     alone.
//
// The consumers: goredis, the reference, reads with XREADGROUP COUNT 256
// BLOCK 100ms and acks each read's entries with one XACK before the next
// read; switchyard is Subscriber with switchyardConfig; watermill is
// watermill-redisstream's Subscriber (XREADGROUP COUNT 1, one XACK per
// message).
func benchRedisEndToEnd(b *testing.B, env *redisEnv) {
	type load struct {
		name  string
		shape redisShape // of the publishers, for a live load
	}
	var loads []load
	for _, shape := range redisEndToEndShapes {
		loads = append(loads, load{"live/" + shape.String(), shape})
	}
	loads = append(loads, load{name: "backlog"})
	for _, load := range loads {
		live, shape := load.name != "backlog", load.shape
		for _, impl := range []string{implGoRedis, implSwitchyard, implWatermill} {
			b.Run("load="+load.name+"/impl="+impl, func(b *testing.B) {
				stream := env.newStream(b)
				handled := newCountdown(b.N)
				if !live {
					if err := rawPublishPipelined(env.client(b), stream, b.N); err != nil {
						b.Fatal(err)
					}
				}
				var subscribe func()
				publish := func() error { return nil }
				switch impl {
				case implSwitchyard:
					pub, sub := env.openSwitchyard(b, switchyardConfig("bench"))
					subscribe = func() { consume(b, sub, stream, func(*message.Message) { handled.done() }) }
					if live {
						publish = func() error { return publishConcurrently(pub, stream, b.N, shape) }
					}
				case implWatermill:
					pub, sub := env.openWatermill(b, "bench")
					subscribe = func() { consume(b, sub, stream, func(*message.Message) { handled.done() }) }
					if live {
						publish = func() error { return publishConcurrently(pub, stream, b.N, shape) }
					}
				default:
					c := env.client(b)
					subscribe = func() { env.rawConsumer(b, c, stream, func(redis.XMessage) { handled.done() }, handled.fail) }
					if live {
						publish = func() error { return shape.rawPublish(c, stream, b.N) }
					}
				}
				if live {
					subscribe()
				}
				startClean()
				cpu := env.cpuMark(b)
				b.ReportAllocs()
				b.ResetTimer()
				if !live {
					subscribe()
				}
				if err := publish(); err != nil {
					b.Fatal(err)
				}
				handled.wait(b)
				env.waitAcked(b, stream)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
				env.reportCPU(b, cpu)
			})
		}
	}
}

// redisLatencyRate is the fixed publish rate of the latency benchmark.
const redisLatencyRate = 5000

// redisWarmup messages go through each run, paced, before its timer
// starts: connections are dialled and the consumer is blocked in its read.
const redisWarmup = 100

// benchRedisLatency measures end-to-end latency at a fixed 5,000 msg/s: one
// goroutine publishes b.N messages one at a time, message i due at start +
// i × 200 µs (it sleeps until the next is due; when it is late it publishes
// at once). A message's latency runs from its published_at, set just before
// its publish call, to its handler receiving it (wall clock, one process).
// p50-µs and p99-µs are over the b.N messages of the run; ns/op is the pace
// (200 µs) and msgs/s checks it.
//
//   - impl=goredis, the reference: one XADD per message; the consumer of
//     benchRedisEndToEnd (XREADGROUP COUNT 256 BLOCK 100ms, then XACK), which
//     parses published_at out of the entry's MessagePack metadata.
//   - impl=switchyard, impl=watermill: Publisher.Publish of one message and
//     a Subscriber with one handler, configured as in benchRedisEndToEnd.
func benchRedisLatency(b *testing.B, env *redisEnv) {
	for _, impl := range []string{implGoRedis, implSwitchyard, implWatermill} {
		b.Run("impl="+impl, func(b *testing.B) {
			stream := env.newStream(b)
			lat := newLatencies(redisWarmup + b.N)
			var publish func(i int) error
			switch impl {
			case implSwitchyard:
				pub, sub := env.openSwitchyard(b, switchyardConfig("bench"))
				consume(b, sub, stream, lat.receivedMessage)
				publish = func(i int) error { return pub.Publish(stream, redisMessage(i%keyCount)) }
			case implWatermill:
				pub, sub := env.openWatermill(b, "bench")
				consume(b, sub, stream, lat.receivedMessage)
				publish = func(i int) error { return pub.Publish(stream, redisMessage(i%keyCount)) }
			default:
				c := env.client(b)
				env.rawConsumer(b, c, stream, lat.receivedEntry, lat.handled.fail)
				ctx := b.Context()
				publish = func(i int) error { return c.XAdd(ctx, rawEntry(stream, i%keyCount)).Err() }
			}
			interval := time.Second / redisLatencyRate
			if err := paced(redisWarmup, interval, publish); err != nil {
				b.Fatal(err)
			}
			lat.waitFor(b, redisWarmup)
			startClean()
			cpu := env.cpuMark(b)
			b.ResetTimer()
			if err := paced(b.N, interval, publish); err != nil {
				b.Fatal(err)
			}
			lat.handled.wait(b)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			env.reportCPU(b, cpu)
			lat.report(b, redisWarmup)
		})
	}
}

// paced calls publish(i) for i from 0 to n-1, the call for i due at
// i × interval after the first.
func paced(n int, interval time.Duration, publish func(i int) error) error {
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		if err := publish(i); err != nil {
			return err
		}
	}
	return nil
}

// latencies records each received message's latency in arrival order.
type latencies struct {
	d       []time.Duration
	n       atomic.Int64
	handled *countdown
}

func newLatencies(n int) *latencies {
	return &latencies{d: make([]time.Duration, n), handled: newCountdown(n)}
}

func (l *latencies) record(published time.Time, err error) {
	if err != nil {
		l.handled.fail(err)
		return
	}
	now := time.Now()
	if i := l.n.Add(1) - 1; i < int64(len(l.d)) {
		l.d[i] = now.Sub(published)
	}
	l.handled.done()
}

func (l *latencies) receivedMessage(m *message.Message) { l.record(publishedAt(m)) }
func (l *latencies) receivedEntry(x redis.XMessage)     { l.record(rawPublishedAt(x.Values)) }

// waitFor waits until n messages have been received.
func (l *latencies) waitFor(b *testing.B, n int64) {
	b.Helper()
	deadline := time.Now().Add(drainTimeout)
	for l.n.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d warm-up messages received after %s", l.n.Load(), n, drainTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// report reports the median and the 99th percentile of the latencies
// after the first skip, in microseconds.
func (l *latencies) report(b *testing.B, skip int) {
	d := slices.Clone(l.d[skip:])
	slices.Sort(d)
	at := func(q float64) float64 {
		return float64(d[min(len(d)-1, int(q*float64(len(d))))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}
