package benchmarks

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/coalesce"
)

// The coalescing benchmarks compare package coalesce (impl=coalesce) with
// the coalescer anyone would write first (impl=naive, the reference of each
// target): a map under one mutex and a time.AfterFunc timer per key, with
// the same leading+trailing throttle semantics. Read them with benchstat
// -col /impl. docs/performance.md has the command and the figures.

// coalesceEvent stands for a pending value: both impls hold a pointer.
type coalesceEvent struct{ payload []byte }

var coalesceValue = &coalesceEvent{payload: payload}

// coalesceStayOpen is a window no benchmark outlives: keys stay live.
const coalesceStayOpen = 30 * time.Minute

type coalescer interface {
	Add(key string, v *coalesceEvent, window time.Duration) coalesce.Result
	Len() int
	Close()
}

var coalesceImpls = []struct {
	name string
	make func(emit func(string, *coalesceEvent)) coalescer
}{
	{"naive", func(emit func(string, *coalesceEvent)) coalescer { return newNaiveCoalescer(emit) }},
	{"coalesce", func(emit func(string, *coalesceEvent)) coalescer {
		c, err := coalesce.New(coalesce.Config{MaxKeys: 10_000_000}, emit)
		if err != nil {
			panic(err)
		}
		return c
	}},
}

// coalesceKeys returns n distinct keys shaped like the bus's coalescing keys
// (event type, topic and event key), made once.
var coalesceKeys = func() func(n int) []string {
	var (
		mu   sync.Mutex
		made []string
	)
	return func(n int) []string {
		mu.Lock()
		defer mu.Unlock()
		for i := len(made); i < n; i++ {
			made = append(made, "typing\x00events:chat\x00request-"+strconv.Itoa(i))
		}
		return made[:n:n]
	}
}()

// BenchmarkCoalesceAdd is the steady state of a typing storm: Add on keys
// whose window is open, from GOMAXPROCS goroutines as the ingress's lanes
// call it. One op is one Add.
func BenchmarkCoalesceAdd(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		keys := coalesceKeys(n)
		for _, impl := range coalesceImpls {
			b.Run(fmt.Sprintf("keys=%d/impl=%s", n, impl.name), func(b *testing.B) {
				c := impl.make(func(string, *coalesceEvent) {})
				for _, k := range keys {
					c.Add(k, coalesceValue, coalesceStayOpen)
				}
				var worker atomic.Uint64
				startClean()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					// Each goroutine walks the keys from its own place, with
					// a stride that visits them all.
					i := int(worker.Add(1)) * 7919
					for pb.Next() {
						i += 104729
						c.Add(keys[i%n], coalesceValue, coalesceStayOpen)
					}
				})
				b.StopTimer()
				c.Close()
			})
		}
	}
}

// BenchmarkCoalesceWindows is the whole life of a key's windows, as fast as
// they come: the leading Add, an Add that waits, the trailing emission at
// the end of a 1ms window, the next window ending empty and the key
// forgotten. One op is one key; the timer runs until every key is
// forgotten, so the work of ending windows counts. emitted/op is below 1
// when a window ended between a key's two Adds.
func BenchmarkCoalesceWindows(b *testing.B) {
	const window = time.Millisecond
	for _, impl := range coalesceImpls {
		b.Run("impl="+impl.name, func(b *testing.B) {
			keys := coalesceKeys(b.N)
			var emitted atomic.Int64
			c := impl.make(func(string, *coalesceEvent) { emitted.Add(1) })
			var next atomic.Int64
			startClean()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := keys[next.Add(1)-1]
					c.Add(k, coalesceValue, window)
					c.Add(k, coalesceValue, window)
				}
			})
			waitForgotten(b, c)
			b.StopTimer()
			c.Close()
			b.ReportMetric(float64(emitted.Load())/float64(b.N), "emitted/op")
		})
	}
}

func waitForgotten(b *testing.B, c coalescer) {
	b.Helper()
	deadline := time.Now().Add(drainTimeout)
	for c.Len() > 0 {
		if time.Now().After(deadline) {
			b.Fatalf("%d keys live after %s", c.Len(), drainTimeout)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// BenchmarkCoalesceStorm is the typing pattern ten times faster:
// typists add an event every 5ms (20/s, sped up), 20 events each (a second
// of typing, sped up) before a new typist takes their place, with a 10ms
// window; 4,000 type at once, 800,000 events/s. One op is one event. The
// pace is fixed, so ns/op is the pace (1.25µs); what the impls cost is
// cpu-ns/op, the CPU time the whole process spent per event, from the first
// event until every key is forgotten (the drivers' share, the same for
// both impls, included), and B/op and allocs/op. emitted/op is the share of
// events that went out at a window's end.
func BenchmarkCoalesceStorm(b *testing.B) {
	const (
		typists = 4000
		every   = 5 // ticks between a typist's events
		session = 20
		window  = 10 * time.Millisecond
		tick    = time.Millisecond
	)
	for _, impl := range coalesceImpls {
		b.Run("impl="+impl.name, func(b *testing.B) {
			workers := runtime.GOMAXPROCS(0)
			keys := coalesceKeys(b.N/session + typists + 1)
			var (
				emitted  atomic.Int64
				nextKey  atomic.Int64
				remained atomic.Int64 // events left to add
			)
			remained.Store(int64(b.N))
			c := impl.make(func(string, *coalesceEvent) { emitted.Add(1) })
			startClean()
			cpu0, cpuOK := processCPU()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					type typist struct {
						key  string
						left int
					}
					mine := make([]typist, typists/workers)
					for i := range mine {
						mine[i] = typist{key: keys[nextKey.Add(1)-1], left: session}
					}
					for t := 0; ; t++ {
						time.Sleep(time.Until(start.Add(time.Duration(t) * tick)))
						for i := (t + w) % every; i < len(mine); i += every {
							if remained.Add(-1) < 0 {
								return
							}
							ty := &mine[i]
							c.Add(ty.key, coalesceValue, window)
							if ty.left--; ty.left == 0 {
								*ty = typist{key: keys[nextKey.Add(1)-1], left: session}
							}
						}
					}
				})
			}
			wg.Wait()
			waitForgotten(b, c)
			b.StopTimer()
			if cpu1, ok := processCPU(); ok && cpuOK {
				b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
			b.ReportMetric(float64(emitted.Load())/float64(b.N), "emitted/op")
			c.Close()
		})
	}
}

// BenchmarkCoalesceLiveKeys measures the memory of live keys: the heap in
// use after a GC, before and after adding keys= keys whose windows stay
// open, divided by keys= (B/key). The key strings are made beforehand and
// not counted: both impls keep the caller's string. It measures once per
// run, whatever b.N: ns/op, B/op and allocs/op are per key added.
func BenchmarkCoalesceLiveKeys(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		keys := coalesceKeys(n)
		for _, impl := range coalesceImpls {
			b.Run(fmt.Sprintf("keys=%d/impl=%s", n, impl.name), func(b *testing.B) {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&before)
				start := time.Now()
				c := impl.make(func(string, *coalesceEvent) {})
				for _, k := range keys {
					c.Add(k, coalesceValue, coalesceStayOpen)
				}
				took := time.Since(start)
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&after)
				if c.Len() != n {
					b.Fatalf("%d keys live, want %d", c.Len(), n)
				}
				runtime.KeepAlive(c)
				b.StopTimer()
				c.Close()
				perKey := func(v uint64) float64 { return float64(v) / float64(n) }
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "B/key")
				b.ReportMetric(float64(took.Nanoseconds())/float64(n), "ns/op")
				b.ReportMetric(perKey(after.TotalAlloc-before.TotalAlloc), "B/op")
				b.ReportMetric(perKey(after.Mallocs-before.Mallocs), "allocs/op")
			})
		}
	}
}

// naiveCoalescer is the reference: one mutex, a map of entries, and a
// time.AfterFunc per key whose function emits what is pending and resets
// the timer for the next window, or forgets the key.
type naiveCoalescer struct {
	mu   sync.Mutex
	keys map[string]*naiveEntry
	emit func(string, *coalesceEvent)
}

type naiveEntry struct {
	pending *coalesceEvent
	has     bool
	window  time.Duration
	timer   *time.Timer
}

func newNaiveCoalescer(emit func(string, *coalesceEvent)) *naiveCoalescer {
	return &naiveCoalescer{keys: make(map[string]*naiveEntry), emit: emit}
}

func (n *naiveCoalescer) Add(key string, v *coalesceEvent, window time.Duration) coalesce.Result {
	n.mu.Lock()
	e, ok := n.keys[key]
	if !ok {
		e = &naiveEntry{window: window}
		e.timer = time.AfterFunc(window, func() { n.fire(key, e) })
		n.keys[key] = e
		n.mu.Unlock()
		return coalesce.Leading
	}
	res := coalesce.Pending
	if e.has {
		res = coalesce.Coalesced
	}
	e.pending, e.has, e.window = v, true, window
	n.mu.Unlock()
	return res
}

func (n *naiveCoalescer) fire(key string, e *naiveEntry) {
	n.mu.Lock()
	if n.keys[key] != e {
		n.mu.Unlock() // closed
		return
	}
	if !e.has {
		delete(n.keys, key)
		n.mu.Unlock()
		return
	}
	v := e.pending
	e.pending, e.has = nil, false
	e.timer.Reset(e.window)
	n.mu.Unlock()
	n.emit(key, v)
}

func (n *naiveCoalescer) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.keys)
}

func (n *naiveCoalescer) Close() {
	n.mu.Lock()
	keys := n.keys
	n.keys = map[string]*naiveEntry{}
	n.mu.Unlock()
	for k, e := range keys {
		e.timer.Stop()
		if e.has {
			n.emit(k, e.pending)
		}
	}
}

// The two impls agree on what a storm sends: same results, same emissions.
func TestNaiveCoalescerAgrees(t *testing.T) {
	type out struct{ sent, emitted, coalesced int }
	run := func(c coalescer, emitted *atomic.Int64) out {
		var o out
		for i := range 100 {
			for _, k := range []string{"a", "b", "c"} {
				switch res := c.Add(k+strconv.Itoa(i%10), coalesceValue, time.Hour); {
				case res.Send():
					o.sent++
				case res == coalesce.Coalesced:
					o.coalesced++
				}
			}
		}
		c.Close()
		o.emitted = int(emitted.Load())
		return o
	}
	var results []out
	for _, impl := range coalesceImpls {
		var emitted atomic.Int64
		results = append(results, run(impl.make(func(string, *coalesceEvent) { emitted.Add(1) }), &emitted))
	}
	if results[0] != results[1] {
		t.Fatalf("naive %+v, coalesce %+v", results[0], results[1])
	}
	if want := (out{sent: 30, emitted: 30, coalesced: 240}); results[0] != want {
		t.Fatalf("got %+v, want %+v", results[0], want)
	}
}
