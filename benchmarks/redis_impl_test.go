package benchmarks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// The three ways of moving a message through a Redis stream that the Redis
// benchmarks compare. Every one writes the same entry: watermill-redisstream's
// layout (the message UUID, a MessagePack map of event_type, event_key and
// published_at, and the payload), with XADD without MAXLEN.
const (
	// implGoRedis is the reference: go-redis used directly, as fast as it
	// goes with no transport around it.
	implGoRedis = "goredis"
	// implSwitchyard is transports/redisstream.
	implSwitchyard = "switchyard"
	// implWatermill is github.com/ThreeDotsLabs/watermill-redisstream v1.4.5.
	implWatermill = "watermill"
)

// redisGroup is the consumer group of every benchmark subscription.
const redisGroup = "bench"

// redisPipelineBatch is how many XADDs the reference sends per pipeline.
const redisPipelineBatch = 64

// redisReadCount is the COUNT of the reference consumer's XREADGROUP, the
// same as redisstream.DefaultReadCount.
const redisReadCount = 256

// redisEnv is the one redis-server of a BenchmarkRedis run.
type redisEnv struct {
	srv   *redistest.Server
	admin *redis.Client // for checks and clean-up, never measured
	seq   atomic.Int64
}

func newRedisEnv(b *testing.B) *redisEnv {
	b.Helper()
	srv := redistest.Start(b) // a free port, --save "" --appendonly no
	env := &redisEnv{srv: srv}
	env.admin = env.client(b)
	return env
}

// client returns a new go-redis client of the server, closed when b's run
// ends; as the transport's own clients, it honours context deadlines.
func (env *redisEnv) client(b *testing.B) *redis.Client {
	b.Helper()
	opt, err := redis.ParseURL(env.srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	if err := c.Ping(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// newStream returns a stream name no other run uses. When b's run ends the
// stream is deleted and the run's goroutines are given time to end, so that
// the next run starts on an idle process and an empty server.
func (env *redisEnv) newStream(b *testing.B) string {
	b.Helper()
	goroutines := runtime.NumGoroutine()
	stream := fmt.Sprintf("bench:%d", env.seq.Add(1))
	b.Cleanup(func() {
		if err := env.admin.Unlink(context.Background(), stream).Err(); err != nil {
			b.Errorf("unlink %s: %v", stream, err)
		}
		settleGoroutines(goroutines)
	})
	return stream
}

// settleGoroutines waits, up to two seconds, until no more goroutines run
// than n. watermill-redisstream's reader outlives its Subscriber's Close by
// up to its block time plus a 500 ms sleep after the error of its closed
// client; goleak would count it at the end of the package.
func settleGoroutines(n int) {
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// waitAcked polls until the group has no pending entry: every XACK has
// reached Redis.
func (env *redisEnv) waitAcked(b *testing.B, stream string) {
	b.Helper()
	deadline := time.Now().Add(drainTimeout)
	for {
		p, err := env.admin.XPending(context.Background(), stream, redisGroup).Result()
		if err != nil {
			b.Fatal(err)
		}
		if p.Count == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d entries still pending after %s", p.Count, drainTimeout)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// cpuMark is the CPU time used so far by this process and by the
// redis-server.
type cpuMark struct {
	self   time.Duration
	selfOK bool
	redis  time.Duration
}

// cpuMark reads the CPU times: getrusage for this process, INFO cpu
// (used_cpu_user + used_cpu_sys, every thread of the server) for Redis.
func (env *redisEnv) cpuMark(b *testing.B) cpuMark {
	b.Helper()
	var m cpuMark
	m.self, m.selfOK = processCPU()
	info, err := env.admin.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			sec, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu: %s: %v", line, err)
			}
			m.redis += time.Duration(sec * float64(time.Second))
		}
	}
	return m
}

// reportCPU reports the CPU time per message since start, of this process
// (cpu-ns/op: publishers, transport, consumer, go-redis, GC) and of the
// redis-server (redis-cpu-ns/op). Call it after b.StopTimer.
func (env *redisEnv) reportCPU(b *testing.B, start cpuMark) {
	b.Helper()
	end := env.cpuMark(b)
	if start.selfOK && end.selfOK {
		b.ReportMetric(float64(end.self-start.self)/float64(b.N), "cpu-ns/op")
	}
	b.ReportMetric(float64(end.redis-start.redis)/float64(b.N), "redis-cpu-ns/op")
}

// switchyardConfig is the transport's configuration in every benchmark: the
// defaults (pipelines of up to 64 XADDs, 4 in flight, no linger; XREADGROUP
// COUNT 256 BLOCK 100ms, 64 lanes, batched XACKs; MaxLen 100000 kept by the
// background trimmer, so XADD carries no MAXLEN), with a consumer name of
// its own and the group started at the beginning of the (new) stream.
func switchyardConfig(consumer string) redisstream.Config {
	return redisstream.Config{
		ConsumerGroup: redisGroup,
		Consumer:      consumer,
		StartID:       "0",
	}
}

// openSwitchyard returns our transport's publisher and subscriber on one
// client, as redisstream.Factory builds them; both close with b's run.
func (env *redisEnv) openSwitchyard(b *testing.B, cfg redisstream.Config) (*redisstream.Publisher, *redisstream.Subscriber) {
	b.Helper()
	client := env.client(b)
	pub, err := redisstream.NewPublisher(cfg, client, nil)
	if err != nil {
		b.Fatal(err)
	}
	sub, err := redisstream.NewSubscriber(cfg, client, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := sub.Close(); err != nil {
			b.Error(err)
		}
		if err := pub.Close(); err != nil {
			b.Error(err)
		}
	})
	return pub, sub
}

// openWatermill returns watermill-redisstream's publisher and subscriber.
// Each closes its own client, so each gets one. Configuration: defaults
// (XADD without MAXLEN; XREADGROUP COUNT 1 BLOCK 100ms, one XACK per
// message), but that the first read blocks 100 ms rather than forever
// (DisableIndefiniteInitialBlock), so that Close ends its reader.
func (env *redisEnv) openWatermill(b *testing.B, consumer string) (*wmredis.Publisher, *wmredis.Subscriber) {
	b.Helper()
	pub, err := wmredis.NewPublisher(wmredis.PublisherConfig{Client: env.client(b)}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	sub, err := wmredis.NewSubscriber(wmredis.SubscriberConfig{
		Client:                        env.client(b),
		ConsumerGroup:                 redisGroup,
		Consumer:                      consumer,
		OldestId:                      "0",
		DisableIndefiniteInitialBlock: true,
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		// Both Close their client, which env.client's clean-up then
		// closes again: that error is expected and ignored there.
		if err := sub.Close(); err != nil {
			b.Error(err)
		}
		if err := pub.Close(); err != nil {
			b.Error(err)
		}
	})
	return pub, sub
}

// redisMessage is the message every Watermill publisher sends:
// bus.NewMessage sets its UUID, event_type, event_key and published_at (now).
func redisMessage(key int) *message.Message {
	return bus.NewMessage(eventType, keys[key], payload)
}

// rawEntry is what the reference XADDs: redisMessage's entry as both
// transports write it, built the same way (a new UUID, published_at now).
func rawEntry(stream string, key int) *redis.XAddArgs {
	md := make([]byte, 0, 96)
	md = append(md, 0x83) // a map of three strings
	md = appendMsgpackStr(md, bus.MetaEventType)
	md = appendMsgpackStr(md, eventType)
	md = appendMsgpackStr(md, bus.MetaEventKey)
	md = appendMsgpackStr(md, keys[key])
	md = appendMsgpackStr(md, bus.MetaPublishedAt)
	md = appendMsgpackStr(md, time.Now().UTC().Format(time.RFC3339Nano))
	return &redis.XAddArgs{Stream: stream, Values: []any{
		redisstream.FieldWatermillUUID, watermill.NewUUID(),
		redisstream.FieldMetadata, md,
		redisstream.FieldPayload, payload,
	}}
}

func appendMsgpackStr(b []byte, s string) []byte {
	if len(s) <= 31 {
		b = append(b, 0xa0|byte(len(s)))
	} else {
		b = append(b, 0xd9, byte(len(s)))
	}
	return append(b, s...)
}

// rawPublishedAt reads published_at from an entry's MessagePack metadata:
// the reference consumer's whole decoding.
func rawPublishedAt(values map[string]any) (time.Time, error) {
	md, _ := values[redisstream.FieldMetadata].(string)
	if len(md) == 0 || md[0]&0xf0 != 0x80 {
		return time.Time{}, errors.New("metadata is not a small map")
	}
	n, rest := int(md[0]&0x0f), md[1:]
	for range 2 * n {
		var s string
		var err error
		if s, rest, err = readMsgpackStr(rest); err != nil {
			return time.Time{}, err
		}
		if s == bus.MetaPublishedAt {
			v, _, err := readMsgpackStr(rest)
			if err != nil {
				return time.Time{}, err
			}
			return time.Parse(time.RFC3339Nano, v)
		}
	}
	return time.Time{}, errors.New("no published_at")
}

func readMsgpackStr(b string) (string, string, error) {
	var n, h int
	switch {
	case len(b) >= 1 && b[0]&0xe0 == 0xa0:
		n, h = int(b[0]&0x1f), 1
	case len(b) >= 2 && b[0] == 0xd9:
		n, h = int(b[1]), 2
	case len(b) >= 3 && b[0] == 0xda:
		n, h = int(binary.BigEndian.Uint16([]byte(b[1:3]))), 3
	default:
		return "", "", errors.New("not a MessagePack string")
	}
	if len(b) < h+n {
		return "", "", errors.New("truncated MessagePack string")
	}
	return b[h : h+n], b[h+n:], nil
}

// publishedAt reads a delivered message's published_at.
func publishedAt(m *message.Message) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, m.Metadata.Get(bus.MetaPublishedAt))
}

// rawPublishPipelined XADDs n entries from the calling goroutine, in
// pipelines of redisPipelineBatch.
func rawPublishPipelined(c *redis.Client, stream string, n int) error {
	return rawPublishConcurrently(c, stream, n, redisShape{publishers: 1, batch: redisPipelineBatch})
}

// rawPublishConcurrently XADDs n entries from shape.publishers goroutines,
// each sending shape.batch XADDs per pipeline and waiting for their replies
// before it makes the next, and returns the first error.
func rawPublishConcurrently(c *redis.Client, stream string, n int, shape redisShape) error {
	ctx := context.Background()
	return inBatches(n, shape, func(first, count int) error {
		pipe := c.Pipeline()
		for i := range count {
			pipe.XAdd(ctx, rawEntry(stream, (first+i)%keyCount))
		}
		_, err := pipe.Exec(ctx)
		return err
	})
}

// publishConcurrently publishes n messages made by redisMessage from
// shape.publishers goroutines, each passing shape.batch messages to one
// pub.Publish call at a time, and returns the first error.
func publishConcurrently(pub message.Publisher, stream string, n int, shape redisShape) error {
	return inBatches(n, shape, func(first, count int) error {
		msgs := make([]*message.Message, count)
		for i := range msgs {
			msgs[i] = redisMessage((first + i) % keyCount)
		}
		return pub.Publish(stream, msgs...)
	})
}

// inBatches calls send from shape.publishers goroutines with consecutive
// batches of at most shape.batch of the numbers 0 to n-1 (first, count)
// until all are sent or one call fails, and returns the first error.
func inBatches(n int, shape redisShape, send func(first, count int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range shape.publishers {
		wg.Go(func() {
			for {
				i := int(next.Add(int64(shape.batch))) - shape.batch
				if i >= n {
					return
				}
				if err := send(i, min(shape.batch, n-i)); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n)) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// rawConsumer is the reference consumer: one goroutine that reads up to 256
// entries per XREADGROUP (BLOCK 100ms), calls handle on each and acks them
// all with one XACK before it reads again. It runs until b's run ends.
func (env *redisEnv) rawConsumer(b *testing.B, c *redis.Client, stream string, handle func(redis.XMessage), failed func(error)) {
	b.Helper()
	ctx := context.Background()
	if err := c.XGroupCreateMkStream(ctx, stream, redisGroup, "0").Err(); err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ids := make([]string, 0, redisReadCount)
		args := &redis.XReadGroupArgs{
			Group: redisGroup, Consumer: "raw", Streams: []string{stream, ">"},
			Count: redisReadCount, Block: 100 * time.Millisecond,
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			res, err := c.XReadGroup(ctx, args).Result()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				failed(err)
				return
			}
			ids = ids[:0]
			for _, x := range res[0].Messages {
				handle(x)
				ids = append(ids, x.ID)
			}
			if err := c.XAck(ctx, stream, redisGroup, ids...).Err(); err != nil {
				failed(err)
				return
			}
		}
	}()
	b.Cleanup(func() {
		close(stop)
		<-done
	})
}

// consume subscribes to stream and reads the subscription in one goroutine,
// calling handle on each message and acking it: one handler that never
// fails. When b's run ends the subscription's context is cancelled and the
// goroutine waited for (this clean-up runs before the subscriber's Close).
func consume(b *testing.B, sub message.Subscriber, stream string, handle func(*message.Message)) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := sub.Subscribe(ctx, stream)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ch {
			handle(m)
			m.Ack()
		}
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
}
