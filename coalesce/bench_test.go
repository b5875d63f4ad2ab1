package coalesce_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/coalesce"
)

// BenchmarkAdd measures Add on keys with a window open (hit), on keys
// that open one in a new Coalescer (open), on keys that come and go
// (churn), and from parallel goroutines:
// go test -run '^$' -bench 'BenchmarkAdd' -benchmem ./coalesce/
func BenchmarkAdd(b *testing.B) {
	const n = 1 << 14
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "events:chat/typing/conversation-" + strconv.Itoa(i)
	}
	v := new(int)
	newCoalescer := func(b *testing.B) *coalesce.Coalescer[*int] {
		c, err := coalesce.New(coalesce.Config{}, func(string, *int) {})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		return c
	}
	b.Run("hit", func(b *testing.B) {
		c := newCoalescer(b)
		for _, k := range keys {
			c.Add(k, v, time.Hour)
		}
		i := 0
		for b.Loop() {
			c.Add(keys[i%n], v, time.Hour)
			i++
		}
	})
	b.Run("open", func(b *testing.B) {
		var c *coalesce.Coalescer[*int]
		i := 0
		for b.Loop() {
			if i%n == 0 {
				b.StopTimer()
				if c != nil {
					c.Close()
				}
				c = newCoalescer(b)
				b.StartTimer()
			}
			c.Add(keys[i%n], v, time.Hour)
			i++
		}
	})
	// churn: keys whose windows end and are forgotten before they come
	// back, as in a steady stream of typing in many conversations: each Add
	// mostly opens a window in a slot (or map entry) that a forgotten key
	// freed.
	b.Run("churn", func(b *testing.B) {
		const m = 1 << 16
		churn := make([]string, m)
		for i := range churn {
			churn[i] = "events:chat/typing/conversation-" + strconv.Itoa(i)
		}
		c := newCoalescer(b)
		i := 0
		for b.Loop() {
			c.Add(churn[i%m], v, time.Microsecond)
			i++
		}
	})
	b.Run("hit-parallel", func(b *testing.B) {
		c := newCoalescer(b)
		for _, k := range keys {
			c.Add(k, v, time.Hour)
		}
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				c.Add(keys[i%n], v, time.Hour)
				i += 7
			}
		})
	})
}

// BenchmarkMemory reports the heap that a Coalescer holds per key tracked,
// its key string excluded: go test -run '^$' -bench Memory -benchtime 3x
// ./coalesce/
func BenchmarkMemory(b *testing.B) {
	const n = coalesce.DefaultMaxKeys
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "conversation-" + strconv.Itoa(i)
	}
	v := new(int)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c, _ := coalesce.New(coalesce.Config{}, func(string, *int) {})
		for _, k := range keys {
			c.Add(k, v, time.Hour)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if c.Len() != n {
			b.Fatalf("tracked %d keys, want %d", c.Len(), n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/key")
		c.Close()
	}
}
