package benchmarks

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/bus"
)

// watermill-redisstream's reader outlives its Subscriber's Close by up to
// its block time plus a 500 ms sleep after its closed client's error (see
// settleGoroutines): it is the library's own and ends by itself.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream.(*Subscriber).read"))
}

// topic is the one topic (and Redis stream) every benchmark publishes to.
const topic = "events:chat"

// eventType is not coalesced by the default configuration (typing is), so
// every published event reaches its consumer.
const eventType = "chat_message"

// keyCount is how many distinct event keys the publishers draw from.
const keyCount = 1000

// keys are the event keys; their values pick the lanes.
var keys = func() []string {
	ks := make([]string, keyCount)
	for i := range ks {
		ks[i] = "conversation-" + strconv.Itoa(i)
	}
	return ks
}()

// payload is a small chat event, the size the bus is built for.
var payload = []byte(`{"conversation_id":"c-123","sender":"u-42","text":"hello, world","sent_at":"2026-01-02T03:04:05Z"}`)

// publisherCounts are the concurrent publishers of every throughput
// benchmark: the cost's growth with load.
var publisherCounts = []int{1, 8, 64}

// drainTimeout bounds every wait for a consumer, so a lost message fails the
// benchmark instead of hanging it.
const drainTimeout = 2 * time.Minute

// startClean collects garbage left by an earlier run so that it is not paid
// for inside the next run's timer. Call it just before b.ResetTimer.
func startClean() { runtime.GC() }

// reportThroughput reports msgs/s over the timed part of the run. Call it
// after b.StopTimer.
func reportThroughput(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// countdown waits for n messages to be consumed, or for a first failure.
type countdown struct {
	n       int64
	count   atomic.Int64
	reached chan struct{} // closed by the done call that makes count reach n
	failed  chan error
}

func newCountdown(n int) *countdown {
	return &countdown{n: int64(n), reached: make(chan struct{}), failed: make(chan error, 1)}
}

// fail ends wait with err; only the first failure is kept.
func (c *countdown) fail(err error) {
	select {
	case c.failed <- err:
	default:
	}
}

func (c *countdown) done() {
	if c.count.Add(1) == c.n {
		close(c.reached)
	}
}

// wait waits for the count, failing b after drainTimeout.
func (c *countdown) wait(b *testing.B) {
	b.Helper()
	select {
	case <-c.reached:
	case err := <-c.failed:
		b.Fatalf("after %d of %d messages: %v", c.count.Load(), c.n, err)
	case <-time.After(drainTimeout):
		b.Fatalf("only %d of %d messages consumed after %s", c.count.Load(), c.n, drainTimeout)
	}
}

// inBatches calls send from publishers goroutines with consecutive batches
// of at most batch of the numbers 0 to n-1 (first, count) until all are
// sent or one call fails, and returns the first error.
func inBatches(n, publishers, batch int, send func(first, count int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for {
				i := int(next.Add(int64(batch))) - batch
				if i >= n {
					return
				}
				if err := send(i, min(batch, n-i)); err != nil {
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

// newEvent is an event as an application makes it: bus.NewMessage sets its
// UUID, event_type, event_key and published_at (now).
func newEvent(key int) *message.Message {
	return bus.NewMessage(eventType, keys[key%keyCount], payload)
}

// scheduledEvent is newEvent with published_at set to when it was due,
// rather than when it was made: the latency benchmarks measure from there,
// so a publisher that falls behind its schedule counts its delay in every
// late message (no coordinated omission).
func scheduledEvent(key int, due time.Time) *message.Message {
	m := newEvent(key)
	m.Metadata.Set(bus.MetaPublishedAt, due.UTC().Format(time.RFC3339Nano))
	return m
}

// paced calls publish(i, due) for i from 0 to n-1, the call for i due at
// i × interval after the first. A late call goes at once; its due time
// stays the scheduled one.
func paced(n int, interval time.Duration, publish func(i int, due time.Time) error) error {
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if err := publish(i, due); err != nil {
			return err
		}
	}
	return nil
}

// latencyWarmup messages go through each latency run, paced, before its
// timer starts: connections are dialled and the consumer is waiting.
const latencyWarmup = 200

// latencies records each received message's latency, from its published_at
// (its due time) to its receipt, in arrival order.
type latencies struct {
	mu      sync.Mutex
	d       []time.Duration
	handled *countdown
}

func newLatencies(n int) *latencies {
	return &latencies{d: make([]time.Duration, 0, n), handled: newCountdown(n)}
}

// record counts one message published at published (or a failure).
func (l *latencies) record(published time.Time, err error) {
	if err != nil {
		l.handled.fail(err)
		return
	}
	d := time.Since(published)
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
	l.handled.done()
}

// receivedMessage records a Watermill message's latency.
func (l *latencies) receivedMessage(m *message.Message) {
	l.record(time.Parse(time.RFC3339Nano, m.Metadata.Get(bus.MetaPublishedAt)))
}

// count is how many messages have been received.
func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// waitFor waits until n messages have been received.
func (l *latencies) waitFor(b *testing.B, n int) {
	b.Helper()
	deadline := time.Now().Add(drainTimeout)
	for l.count() < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d warm-up messages received after %s", l.count(), n, drainTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// report reports the 50th, 99th and 99.9th percentiles of the latencies
// after the first skip, in microseconds.
func (l *latencies) report(b *testing.B, skip int) {
	l.mu.Lock()
	d := slices.Clone(l.d[skip:])
	l.mu.Unlock()
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		return float64(d[min(len(d)-1, int(q*float64(len(d))))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	b.ReportMetric(at(0.999), "p999-µs")
}

// pacedLatency runs a latency benchmark at rate messages per second: a
// warm-up, then b.N messages timed, published by publish and received
// into lat; it reports msgs/s and the percentiles.
func pacedLatency(b *testing.B, rate int, lat *latencies, publish func(i int, due time.Time) error) {
	b.Helper()
	interval := time.Second / time.Duration(rate)
	if err := paced(latencyWarmup, interval, publish); err != nil {
		b.Fatal(err)
	}
	lat.waitFor(b, latencyWarmup)
	startClean()
	b.ResetTimer()
	if err := paced(b.N, interval, func(i int, due time.Time) error { return publish(latencyWarmup+i, due) }); err != nil {
		b.Fatal(err)
	}
	lat.handled.wait(b)
	b.StopTimer()
	reportThroughput(b)
	lat.report(b, latencyWarmup)
}

// runningBus builds a bus from cfg, registers handler (when not nil) with
// Handle on topic, runs it until b's run ends and returns it.
func runningBus(b *testing.B, cfg bus.Config, topic string, handler message.NoPublishHandlerFunc) *bus.Bus {
	b.Helper()
	bs, err := bus.New(cfg, bus.WithLoggerAdapter(watermill.NopLogger{}))
	if err != nil {
		b.Fatal(err)
	}
	if handler != nil {
		if err := bs.Handle("bench", topic, handler); err != nil {
			b.Fatal(err)
		}
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

// publishersName is the sub-benchmark key of a publisher count.
func publishersName(n int) string { return fmt.Sprintf("publishers=%d", n) }
