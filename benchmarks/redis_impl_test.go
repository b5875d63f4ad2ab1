package benchmarks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
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

// waitLen polls until stream holds n entries.
func (env *redisEnv) waitLen(b *testing.B, stream string, n int64) {
	b.Helper()
	deadline := time.Now().Add(drainTimeout)
	for {
		got, err := env.admin.XLen(context.Background(), stream).Result()
		if err != nil {
			b.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("XLEN %d of %d after %s", got, n, drainTimeout)
		}
		time.Sleep(100 * time.Microsecond)
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

// openWatermillPublisher returns watermill-redisstream's publisher on a
// client of its own (it closes it), closed when b's run ends.
func (env *redisEnv) openWatermillPublisher(b *testing.B) *wmredis.Publisher {
	b.Helper()
	pub, err := wmredis.NewPublisher(wmredis.PublisherConfig{Client: env.client(b)}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := pub.Close(); err != nil {
			b.Error(err)
		}
	})
	return pub
}

// consumeWatermill reads stream with watermill-redisstream's Subscriber:
// defaults (XREADGROUP COUNT 1 BLOCK 100ms, one XACK per message), but that
// the first read blocks 100 ms rather than forever, so that Close ends its
// reader.
func (env *redisEnv) consumeWatermill(b *testing.B, stream string, handle func(*message.Message)) {
	b.Helper()
	sub, err := wmredis.NewSubscriber(wmredis.SubscriberConfig{
		Client:                        env.client(b),
		ConsumerGroup:                 redisGroup,
		Consumer:                      "watermill",
		OldestId:                      "0",
		DisableIndefiniteInitialBlock: true,
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := sub.Close(); err != nil {
			b.Error(err)
		}
	})
	consume(b, sub, stream, handle)
}

// rawEntry is what go-redis XADDs: newEvent's entry as the transports write
// it, built the same way (a new UUID), published at published.
func rawEntry(stream string, key int, published time.Time) *redis.XAddArgs {
	md := make([]byte, 0, 96)
	md = append(md, 0x83) // a map of three strings
	md = appendMsgpackStr(md, bus.MetaEventType)
	md = appendMsgpackStr(md, eventType)
	md = appendMsgpackStr(md, bus.MetaEventKey)
	md = appendMsgpackStr(md, keys[key%keyCount])
	md = appendMsgpackStr(md, bus.MetaPublishedAt)
	md = appendMsgpackStr(md, published.UTC().Format(time.RFC3339Nano))
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
