package benchmarks

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// keyCount is how many distinct event keys the publishers draw from.
const keyCount = 1000

// keys are the event keys; their values pick the memory transport's lanes.
var keys = func() []string {
	ks := make([]string, keyCount)
	for i := range ks {
		ks[i] = "conversation-" + strconv.Itoa(i)
	}
	return ks
}()

// payload is a small chat event, the size the bus is built for. Both
// transports share payload bytes between copies, so its size does not change
// allocations.
var payload = []byte(`{"conversation_id":"c-123","sender":"u-42","text":"hello, world","sent_at":"2026-01-02T03:04:05Z"}`)

// drainTimeout bounds every wait for a consumer, so a lost message fails the
// benchmark instead of hanging it.
const drainTimeout = 2 * time.Minute

// goroutinePeak samples runtime.NumGoroutine about every millisecond until
// stopped and keeps the highest value seen. The count includes the sampler,
// the benchmark's own goroutines and the test framework's, a handful in all.
type goroutinePeak struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func sampleGoroutines() *goroutinePeak {
	p := &goroutinePeak{stop: make(chan struct{}), done: make(chan struct{})}
	p.sample()
	go func() {
		defer close(p.done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.sample()
			case <-p.stop:
				return
			}
		}
	}()
	return p
}

func (p *goroutinePeak) sample() {
	n := int64(runtime.NumGoroutine())
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			return
		}
	}
}

// Stop ends sampling and returns the peak.
func (p *goroutinePeak) Stop() int64 {
	p.sample()
	close(p.stop)
	<-p.done
	return p.peak.Load()
}

// startClean collects garbage left by an earlier benchmark (gochannel leaves
// hundreds of thousands of dead goroutine stacks) so that it is not paid for
// inside the next benchmark's timer. Call it just before b.ResetTimer.
func startClean() { runtime.GC() }

// reportThroughput reports msgs/s over the timed part of the run and the
// goroutine peak. Call it after b.StopTimer.
func reportThroughput(b *testing.B, peak int64) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(peak), "peak-goroutines")
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
