package benchmarks

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/bus"
)

// The ways of moving an event through a Redis stream that BenchmarkRedis
// compares. Every one writes the same entry: watermill-redisstream's layout
// (the message UUID, a MessagePack map of event_type, event_key and
// published_at, the ~100-byte payload), with XADD without MAXLEN.
const (
	// implGoRedis is go-redis used directly, one XADD round trip at a time
	// per publisher; its consumer reads with XREADGROUP COUNT 256 and acks
	// each read with one XACK.
	implGoRedis = "goredis"
	// implGoRedisPipelined is go-redis with each publisher sending
	// pipelines of 64 XADDs: as fast as a publisher goes with no transport
	// around it, the reference of the publish and end-to-end targets.
	implGoRedisPipelined = "goredis-pipelined"
	// implBus is a whole bus on the redisstream transport: async Publish,
	// and Handle consuming from Redis.
	implBus = "bus"
	// implWatermill is github.com/ThreeDotsLabs/watermill-redisstream's
	// Publisher (one XADD round trip per message) and Subscriber.
	implWatermill = "watermill"
)

// redisLatencyRates are the fixed publish rates of the latency benchmark.
var redisLatencyRates = []int{1000, 5000, 20000}

// BenchmarkRedis compares the bus on Redis Streams with
// watermill-redisstream and with go-redis used directly, all against one
// redis-server the benchmark starts on a free port (redistest.Start:
// --save "" --appendonly no). Every run uses a stream of its own, deleted
// when it ends. One op is one message; msgs/s is b.N over the timed wall
// time; cpu-ns/op and redis-cpu-ns/op are the CPU time of this process and
// of the redis-server per message. Run it with a time -benchtime (1s):
// the impls differ by an order of magnitude.
//
//   - Publish/publishers=…: b.N messages from that many goroutines, until
//     Redis has them all (XLEN). goredis and watermill hand over one message
//     per call and wait for its reply; goredis-pipelined 64 per pipeline;
//     the bus's Publish returns once its ingress has the message and the
//     bus's 64 lanes send them on.
//   - Consume: b.N entries are XADDed with the timer stopped; the timer runs
//     from starting the consumer until it has every message and every ack
//     has reached Redis (XPENDING empty): the consumer alone.
//   - EndToEnd: 8 publishers as in Publish and one consumer, from an empty
//     stream, until the consumer has every message and every ack has
//     reached Redis: the saturation throughput, with the latencies (from
//     each message's making) at saturation. The reference is
//     goredis-pipelined publishers with the batched go-redis consumer.
//   - Latency/rate=…: one goroutine publishes b.N messages at a fixed rate;
//     each message's latency runs from when it was due (its published_at)
//     to its consumer receiving it, so a publisher that falls behind counts
//     the delay of every late message (no coordinated omission).
func BenchmarkRedis(b *testing.B) {
	env := newRedisEnv(b)
	for _, publishers := range publisherCounts {
		for _, impl := range []string{implGoRedisPipelined, implGoRedis, implBus, implWatermill} {
			b.Run(fmt.Sprintf("Publish/%s/impl=%s", publishersName(publishers), impl), func(b *testing.B) {
				benchRedisPublish(b, env, impl, publishers)
			})
		}
	}
	for _, impl := range []string{implGoRedisPipelined, implBus, implWatermill} {
		b.Run("Consume/impl="+impl, func(b *testing.B) { benchRedisConsume(b, env, impl) })
	}
	for _, impl := range []string{implGoRedisPipelined, implBus, implWatermill} {
		b.Run("EndToEnd/"+publishersName(8)+"/impl="+impl, func(b *testing.B) {
			benchRedisEndToEnd(b, env, impl, 8)
		})
	}
	for _, rate := range redisLatencyRates {
		for _, impl := range []string{implGoRedis, implBus, implWatermill} {
			b.Run(fmt.Sprintf("Latency/rate=%d/impl=%s", rate, impl), func(b *testing.B) {
				benchRedisLatency(b, env, impl, rate)
			})
		}
	}
}

// redisPublisher returns how impl publishes message i on stream.
func (env *redisEnv) redisPublisher(b *testing.B, impl, stream string, consume message.NoPublishHandlerFunc) func(first, count int) error {
	b.Helper()
	switch impl {
	case implBus:
		bs := runningBus(b, env.busConfig(consume != nil), stream, consume)
		return func(first, count int) error {
			for i := range count {
				if err := bs.Publish(stream, newEvent(first+i)); err != nil {
					return err
				}
			}
			return nil
		}
	case implWatermill:
		pub := env.openWatermillPublisher(b)
		return func(first, count int) error {
			for i := range count {
				if err := pub.Publish(stream, newEvent(first+i)); err != nil {
					return err
				}
			}
			return nil
		}
	default:
		c := env.client(b)
		ctx := context.Background()
		return func(first, count int) error {
			if count == 1 {
				return c.XAdd(ctx, rawEntry(stream, first, time.Now())).Err()
			}
			pipe := c.Pipeline()
			for i := range count {
				pipe.XAdd(ctx, rawEntry(stream, first+i, time.Now()))
			}
			_, err := pipe.Exec(ctx)
			return err
		}
	}
}

// batchOf is how many messages impl's publishers hand over per call.
func batchOf(impl string) int {
	if impl == implGoRedisPipelined {
		return redisPipelineBatch
	}
	return 1
}

func benchRedisPublish(b *testing.B, env *redisEnv, impl string, publishers int) {
	stream := env.newStream(b)
	send := env.redisPublisher(b, impl, stream, nil)
	startClean()
	cpu := env.cpuMark(b)
	b.ReportAllocs()
	b.ResetTimer()
	if err := inBatches(b.N, publishers, batchOf(impl), send); err != nil {
		b.Fatal(err)
	}
	env.waitLen(b, stream, int64(b.N))
	b.StopTimer()
	reportThroughput(b)
	env.reportCPU(b, cpu)
}

// consumeInto starts impl's consumer of stream, which records each
// message's latency into lat; for the bus, the bus is returned, to publish
// with.
func (env *redisEnv) consumeInto(b *testing.B, impl, stream string, lat *latencies) func(first, count int) error {
	switch impl {
	case implBus:
		return env.redisPublisher(b, impl, stream, func(m *message.Message) error {
			lat.receivedMessage(m)
			return nil
		})
	case implWatermill:
		env.consumeWatermill(b, stream, lat.receivedMessage)
	default:
		env.rawConsumer(b, env.client(b), stream, func(x redis.XMessage) { lat.record(rawPublishedAt(x.Values)) }, lat.handled.fail)
	}
	return nil
}

func benchRedisConsume(b *testing.B, env *redisEnv, impl string) {
	stream := env.newStream(b)
	lat := newLatencies(b.N)
	fill := env.redisPublisher(b, implGoRedisPipelined, stream, nil)
	if err := inBatches(b.N, 1, redisPipelineBatch, fill); err != nil {
		b.Fatal(err)
	}
	startClean()
	cpu := env.cpuMark(b)
	b.ReportAllocs()
	b.ResetTimer()
	env.consumeInto(b, impl, stream, lat)
	lat.handled.wait(b)
	env.waitAcked(b, stream)
	b.StopTimer()
	reportThroughput(b)
	env.reportCPU(b, cpu)
}

func benchRedisEndToEnd(b *testing.B, env *redisEnv, impl string, publishers int) {
	stream := env.newStream(b)
	lat := newLatencies(b.N)
	send := env.consumeInto(b, impl, stream, lat)
	if send == nil {
		send = env.redisPublisher(b, impl, stream, nil)
	}
	startClean()
	cpu := env.cpuMark(b)
	b.ReportAllocs()
	b.ResetTimer()
	if err := inBatches(b.N, publishers, batchOf(impl), send); err != nil {
		b.Fatal(err)
	}
	lat.handled.wait(b)
	env.waitAcked(b, stream)
	b.StopTimer()
	reportThroughput(b)
	env.reportCPU(b, cpu)
	lat.report(b, 0)
}

func benchRedisLatency(b *testing.B, env *redisEnv, impl string, rate int) {
	stream := env.newStream(b)
	lat := newLatencies(latencyWarmup + b.N)
	var publish func(i int, due time.Time) error
	switch impl {
	case implBus:
		bs := runningBus(b, env.busConfig(true), stream, func(m *message.Message) error {
			lat.receivedMessage(m)
			return nil
		})
		publish = func(i int, due time.Time) error { return bs.Publish(stream, scheduledEvent(i, due)) }
	case implWatermill:
		env.consumeWatermill(b, stream, lat.receivedMessage)
		pub := env.openWatermillPublisher(b)
		publish = func(i int, due time.Time) error { return pub.Publish(stream, scheduledEvent(i, due)) }
	default:
		c := env.client(b)
		env.rawConsumer(b, c, stream, func(x redis.XMessage) { lat.record(rawPublishedAt(x.Values)) }, lat.handled.fail)
		ctx := context.Background()
		publish = func(i int, due time.Time) error { return c.XAdd(ctx, rawEntry(stream, i, due)).Err() }
	}
	pacedLatency(b, rate, lat, publish)
}

// busConfig is the bus of the Redis benchmarks: the default configuration
// with a redisstream transport "redis" on env's server as the baseline, and
// consuming from it when consume is true. Streams are not trimmed, so that
// XLEN counts every entry.
func (env *redisEnv) busConfig(consume bool) bus.Config {
	cfg := bus.DefaultConfig()
	cfg.Transports["redis"] = map[string]any{
		"type":           "redisstream",
		"url":            env.srv.URL(),
		"maxlen":         int64(1) << 40,
		"consumer_group": redisGroup,
		"start_id":       "0",
	}
	cfg.Routing.Baseline = "redis"
	cfg.Consume.From = []string{}
	if consume {
		cfg.Consume.From = []string{"redis"}
	}
	return cfg
}
