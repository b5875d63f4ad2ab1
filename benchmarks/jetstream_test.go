package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports/jetstream"
	"github.com/switchyard-go/switchyard/transports/jetstream/jstest"
)

// The ways of moving an event through a JetStream stream that
// BenchmarkJetStream compares. Every one sends the same NATS message: the
// transport's layout (the payload as the data, each metadata entry as a
// header, the UUID in _watermill_message_uuid and in Nats-Msg-Id), to a
// memory stream of the run's own; the bus's carries one header more, the
// transport metadata its route stage sets.
const (
	// jsImplRaw is nats.go used directly: PublishMsgAsync from every
	// publisher on one JetStream context that bounds the unacknowledged
	// publishes at jetstream.DefaultMaxPending (the transport's default
	// MaxPending), then PublishAsyncComplete; its consumer fetches up to
	// 256 messages per pull and acks each. The reference of the targets.
	jsImplRaw = "raw-async"
	// jsImplRawSync is nats.go's synchronous PublishMsg, one message per
	// call, which returns once the stream has it: the reference of the
	// transport's Publish, which is the same kind of call.
	jsImplRawSync = "raw-sync"
	// jsImplTransport is the transport's Publisher, one message per
	// Publish, which returns once the stream has it.
	jsImplTransport = "transport"
	// jsImplBus is a whole bus on the jetstream transport: async Publish
	// (the bus's 64 lanes call the transport's Publish), and Handle
	// consuming from the durable pull consumer.
	jsImplBus = "bus"
)

// jsFetchBatch is how many messages the raw consumer pulls per Fetch.
const jsFetchBatch = 256

// jsConsumer is the durable consumer of every end-to-end run.
const jsConsumer = "bench"

// BenchmarkJetStream compares the JetStream transport and the bus on it
// with nats.go used directly, all against one NATS server with JetStream
// embedded in the test process on a free loopback port (jstest.Start).
// Every run uses a memory stream of its own, deleted when it ends. One op
// is one message; msgs/s is b.N over the timed wall time; cpu-ns/op is the
// CPU time of this process per message: publishers, consumer, nats.go and
// the NATS server alike.
//
//   - Publish/publishers=…: b.N messages from that many goroutines, until
//     the stream has stored them all. Asynchronous: raw-async until
//     PublishAsyncComplete has every acknowledgement; the bus's Publish
//     (which returns once its ingress has the event) until the stream
//     holds b.N messages. Synchronous, one message per call that returns
//     once the stream has it: raw-sync and the transport, until every
//     call has returned.
//   - EndToEnd/publishers=8: 8 publishers and one durable pull consumer
//     (created before the timer), from an empty stream, until the consumer
//     has every message and the server has every ack (the consumer's ack
//     floor is the last message): the saturation throughput, with the
//     latencies from each message's making. raw-async publishes as above
//     and fetches and acks; the bus publishes with Publish and consumes
//     with Handle.
func BenchmarkJetStream(b *testing.B) {
	env := &jsEnv{srv: jstest.Start(b)}
	for _, publishers := range []int{1, 8} {
		for _, impl := range []string{jsImplRaw, jsImplRawSync, jsImplTransport, jsImplBus} {
			b.Run(fmt.Sprintf("Publish/%s/impl=%s", publishersName(publishers), impl), func(b *testing.B) {
				benchJetStreamPublish(b, env, impl, publishers)
			})
		}
	}
	for _, impl := range []string{jsImplRaw, jsImplBus} {
		b.Run("EndToEnd/"+publishersName(8)+"/impl="+impl, func(b *testing.B) {
			benchJetStreamEndToEnd(b, env, impl, 8)
		})
	}
}

// jsEnv is the server of BenchmarkJetStream.
type jsEnv struct {
	srv *jstest.Server
	seq atomic.Int64
}

// config is the transport configuration of every run: memory streams.
func (env *jsEnv) config() jetstream.Config {
	return jetstream.Config{URL: env.srv.URL(), Storage: "memory"}
}

// connect opens a connection closed when b's run ends.
func (env *jsEnv) connect(b *testing.B) *nats.Conn {
	b.Helper()
	nc, err := jetstream.Connect(env.config(), "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

// newTopic returns a topic (its subject, and its stream's name) no other
// run uses, with its memory stream created as the transport provisions it.
// When b's run ends the stream is deleted.
func (env *jsEnv) newTopic(b *testing.B) string {
	b.Helper()
	topic := fmt.Sprintf("bench_js_%d", env.seq.Add(1))
	j := env.admin(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := j.CreateStream(ctx, njs.StreamConfig{
		Name: topic, Subjects: []string{topic}, Storage: njs.MemoryStorage,
		Retention: njs.LimitsPolicy, MaxMsgs: -1, MaxBytes: -1,
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := j.DeleteStream(ctx, topic); err != nil {
			b.Errorf("delete stream %s: %v", topic, err)
		}
	})
	return topic
}

// admin is a JetStream context on a connection of its own, for the
// benchmark's bookkeeping.
func (env *jsEnv) admin(b *testing.B) njs.JetStream {
	b.Helper()
	j, err := njs.New(env.connect(b))
	if err != nil {
		b.Fatal(err)
	}
	return j
}

// rawMsg is the NATS message the transport sends for m.
func rawMsg(topic string, m *message.Message) *nats.Msg {
	h := make(nats.Header, len(m.Metadata)+2)
	for k, v := range m.Metadata {
		h[k] = []string{v}
	}
	h[jetstream.UUIDHeader] = []string{m.UUID}
	h[nats.MsgIdHdr] = []string{m.UUID}
	return &nats.Msg{Subject: topic, Data: m.Payload, Header: h}
}

// jsPublisher returns how impl publishes messages first to first+count-1
// on topic, and a wait for every publish to be stored.
func (env *jsEnv) jsPublisher(b *testing.B, impl, topic string, consume message.NoPublishHandlerFunc) (send func(first, count int) error, stored func() error) {
	b.Helper()
	switch impl {
	case jsImplBus:
		bs := runningBus(b, env.busConfig(consume != nil), topic, consume)
		stream := env.stream(b, topic)
		var sent atomic.Int64
		return func(first, count int) error {
				for i := range count {
					if err := bs.Publish(topic, newEvent(first+i)); err != nil {
						return err
					}
				}
				sent.Add(int64(count))
				return nil
			}, func() error {
				return waitStored(stream, uint64(sent.Load()))
			}
	case jsImplRawSync:
		j, err := njs.New(env.connect(b))
		if err != nil {
			b.Fatal(err)
		}
		return func(first, count int) error {
			for i := range count {
				if _, err := j.PublishMsg(context.Background(), rawMsg(topic, newEvent(first+i))); err != nil {
					return err
				}
			}
			return nil
		}, func() error { return nil }
	case jsImplTransport:
		pub, err := jetstream.NewPublisher(env.config(), env.connect(b), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = pub.Close() })
		return func(first, count int) error {
			for i := range count {
				if err := pub.Publish(topic, newEvent(first+i)); err != nil {
					return err
				}
			}
			return nil
		}, func() error { return nil }
	default:
		var once sync.Once
		var failed error
		j, err := njs.New(env.connect(b),
			njs.WithPublishAsyncMaxPending(jetstream.DefaultMaxPending),
			njs.WithPublishAsyncErrHandler(func(_ njs.JetStream, _ *nats.Msg, err error) {
				once.Do(func() { failed = err })
			}))
		if err != nil {
			b.Fatal(err)
		}
		return func(first, count int) error {
				for i := range count {
					if _, err := j.PublishMsgAsync(rawMsg(topic, newEvent(first+i)), njs.WithStallWait(drainTimeout)); err != nil {
						return err
					}
				}
				return nil
			}, func() error {
				select {
				case <-j.PublishAsyncComplete():
				case <-time.After(drainTimeout):
					return fmt.Errorf("%d publishes unacknowledged after %s", j.PublishAsyncPending(), drainTimeout)
				}
				once.Do(func() {})
				return failed
			}
	}
}

// stream is topic's stream, read on a connection of its own.
func (env *jsEnv) stream(b *testing.B, topic string) njs.Stream {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := env.admin(b).Stream(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// waitStored polls s until it holds n messages, for at most
// drainTimeout. A stream's info costs the server and this process about
// 0.1 ms of CPU, so it sleeps for half the time the stream's progress
// since the last poll says the rest will take (1 ms to 50 ms): a few
// polls, the last within about a millisecond of the end.
func waitStored(s njs.Stream, n uint64) error {
	start := time.Now()
	deadline := start.Add(drainTimeout)
	var lastMsgs uint64
	lastAt := start
	for {
		info, err := s.Info(context.Background())
		if err != nil {
			return err
		}
		msgs, now := info.State.Msgs, time.Now()
		if msgs >= n {
			return nil
		}
		if now.After(deadline) {
			return fmt.Errorf("stream %s holds %d of %d messages after %s", info.Config.Name, msgs, n, drainTimeout)
		}
		wait := 10 * time.Millisecond
		if msgs > lastMsgs && lastMsgs > 0 {
			perMsg := now.Sub(lastAt) / time.Duration(msgs-lastMsgs)
			wait = min(max(perMsg*time.Duration(n-msgs)/2, time.Millisecond), 50*time.Millisecond)
		} else if lastMsgs == 0 {
			wait = time.Millisecond
		}
		lastMsgs, lastAt = msgs, now
		time.Sleep(wait)
	}
}

// waitAcked polls until the durable consumer of topic has every one of n
// messages acked on the server.
func (env *jsEnv) waitAcked(b *testing.B, j njs.JetStream, topic string, n uint64) {
	b.Helper()
	deadline := time.Now().Add(drainTimeout)
	for {
		c, err := j.Consumer(context.Background(), topic, jsConsumer)
		if err != nil {
			b.Fatal(err)
		}
		info, err := c.Info(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if info.AckFloor.Stream >= n && info.NumAckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("consumer of %s: ack floor %d of %d after %s", topic, info.AckFloor.Stream, n, drainTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

func benchJetStreamPublish(b *testing.B, env *jsEnv, impl string, publishers int) {
	topic := env.newTopic(b)
	stream := env.stream(b, topic)
	send, stored := env.jsPublisher(b, impl, topic, nil)
	startClean()
	b.ReportAllocs()
	cpu, cpuOK := processCPU()
	b.ResetTimer()
	if err := inBatches(b.N, publishers, 1, send); err != nil {
		b.Fatal(err)
	}
	if err := stored(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	reportThroughput(b)
	reportJSCPU(b, cpu, cpuOK)
	if err := waitStored(stream, uint64(b.N)); err != nil {
		b.Fatal(err)
	}
}

// reportJSCPU reports cpu-ns/op, the CPU time this process (publishers,
// consumer, nats.go and the embedded server) used per message since
// start. Call it after b.StopTimer.
func reportJSCPU(b *testing.B, start time.Duration, ok bool) {
	if end, endOK := processCPU(); ok && endOK {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// rawJSConsumer is the reference consumer: a durable pull consumer as the
// transport creates it, read by one goroutine that fetches up to
// jsFetchBatch messages per pull, calls handle on each and acks it (the
// ack is sent, not waited for, as the transport's). It runs until b's run
// ends.
func (env *jsEnv) rawJSConsumer(b *testing.B, j njs.JetStream, topic string, handle func(njs.Msg), failed func(error)) {
	b.Helper()
	cons, err := j.CreateOrUpdateConsumer(context.Background(), topic, njs.ConsumerConfig{
		Durable: jsConsumer, AckPolicy: njs.AckExplicitPolicy, AckWait: jetstream.DefaultAckWait,
		MaxAckPending: jetstream.DefaultMaxAckPending, MaxDeliver: -1, DeliverPolicy: njs.DeliverAllPolicy,
	})
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			batch, err := cons.Fetch(jsFetchBatch, njs.FetchMaxWait(100*time.Millisecond))
			if err != nil {
				failed(err)
				return
			}
			for m := range batch.Messages() {
				handle(m)
				if err := m.Ack(); err != nil {
					failed(err)
					return
				}
			}
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, njs.ErrNoMessages) {
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

func benchJetStreamEndToEnd(b *testing.B, env *jsEnv, impl string, publishers int) {
	topic := env.newTopic(b)
	admin := env.admin(b)
	lat := newLatencies(b.N)
	var send func(first, count int) error
	var stored func() error
	if impl == jsImplBus {
		send, stored = env.jsPublisher(b, impl, topic, func(m *message.Message) error {
			lat.receivedMessage(m)
			return nil
		})
	} else {
		env.rawJSConsumer(b, env.admin(b), topic, func(m njs.Msg) {
			lat.record(time.Parse(time.RFC3339Nano, m.Headers().Get(bus.MetaPublishedAt)))
		}, lat.handled.fail)
		send, stored = env.jsPublisher(b, impl, topic, nil)
	}
	startClean()
	b.ReportAllocs()
	cpu, cpuOK := processCPU()
	b.ResetTimer()
	if err := inBatches(b.N, publishers, 1, send); err != nil {
		b.Fatal(err)
	}
	if err := stored(); err != nil {
		b.Fatal(err)
	}
	lat.handled.wait(b)
	env.waitAcked(b, admin, topic, uint64(b.N))
	b.StopTimer()
	reportThroughput(b)
	reportJSCPU(b, cpu, cpuOK)
	lat.report(b, 0)
}

// busConfig is the bus of the JetStream benchmarks: the default
// configuration with a jetstream transport "nats" on env's server (memory
// streams) as the baseline, and consuming from it through the durable
// consumer jsConsumer when consume is true.
func (env *jsEnv) busConfig(consume bool) bus.Config {
	cfg := bus.DefaultConfig()
	cfg.Transports["nats"] = map[string]any{
		"type":     jetstream.Name,
		"url":      env.srv.URL(),
		"storage":  "memory",
		"consumer": jsConsumer,
	}
	cfg.Routing.Baseline = "nats"
	cfg.Consume.From = []string{}
	if consume {
		cfg.Consume.From = []string{"nats"}
	}
	return cfg
}
