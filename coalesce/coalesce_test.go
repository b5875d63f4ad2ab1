package coalesce_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/coalesce"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sent is one value that left a Coalescer: sent by the caller on Add's
// word (leading, overflow, closed) or emitted at a window's end.
type sent struct {
	at    time.Duration // since the test began
	key   string
	val   int
	edge  string // "leading", "trailing", "overflow", "closed"
	state coalesce.Result
}

// recorder runs a Coalescer[int] and records what leaves it, in order.
type recorder struct {
	t     *testing.T
	c     *coalesce.Coalescer[int]
	start time.Time
	mu    sync.Mutex
	out   []sent
}

func newRecorder(t *testing.T, cfg coalesce.Config, opts ...coalesce.Option[int]) *recorder {
	t.Helper()
	r := &recorder{t: t, start: time.Now()}
	c, err := coalesce.New(cfg, func(key string, v int) {
		r.mu.Lock()
		r.out = append(r.out, sent{at: time.Since(r.start), key: key, val: v, edge: "trailing"})
		r.mu.Unlock()
	}, opts...)
	require.NoError(t, err)
	r.c = c
	t.Cleanup(c.Close)
	return r
}

// add adds v for key and, if the caller must send it, records that.
func (r *recorder) add(key string, v int, window time.Duration) coalesce.Result {
	res := r.c.Add(key, v, window)
	if res.Send() {
		r.mu.Lock()
		r.out = append(r.out, sent{at: time.Since(r.start), key: key, val: v, edge: res.String(), state: res})
		r.mu.Unlock()
	}
	return res
}

func (r *recorder) sent() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.out...)
}

func (r *recorder) values(key string) []int {
	var vs []int
	for _, s := range r.sent() {
		if s.key == key {
			vs = append(vs, s.val)
		}
	}
	return vs
}

const window = 100 * time.Millisecond

// The cases, each in a bubble: the fake clock makes every window end
// exactly on time.
func TestThrottle(t *testing.T) {
	tests := []struct {
		name string
		// events: at each offset, a value for a key.
		events []event
		// want: per key, the values sent, in order.
		want map[string][]int
		// wantCount, if set, bounds the number sent for key "k" instead.
		wantCount [2]int
	}{
		{
			name:   "10 events in 50ms: the leading one, then the 10th at the window's end",
			events: burst("k", 10, 50*time.Millisecond/9),
			want:   map[string][]int{"k": {0, 9}},
		},
		{
			name:   "1 event: 1",
			events: []event{{at: 0, key: "k", val: 0}},
			want:   map[string][]int{"k": {0}},
		},
		{
			name:   "2 events: both, the second at the window's end",
			events: []event{{at: 0, key: "k", val: 0}, {at: 10 * time.Millisecond, key: "k", val: 1}},
			want:   map[string][]int{"k": {0, 1}},
		},
		{
			name:      "typing at 20/s for 1s, 100ms window: 10 or 11",
			events:    burst("k", 20, 50*time.Millisecond),
			wantCount: [2]int{10, 11},
		},
		{
			name: "keys never coalesce with each other",
			events: interleave(
				burst("a", 5, 10*time.Millisecond),
				burst("b", 5, 10*time.Millisecond),
				[]event{{at: 5 * time.Millisecond, key: "c", val: 7}},
			),
			want: map[string][]int{"a": {0, 4}, "b": {0, 4}, "c": {7}},
		},
		{
			name: "after a quiet window the key starts over with a leading edge",
			events: []event{
				{at: 0, key: "k", val: 0},
				{at: 250 * time.Millisecond, key: "k", val: 1},
				{at: 260 * time.Millisecond, key: "k", val: 2},
			},
			want: map[string][]int{"k": {0, 1, 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRecorder(t, coalesce.Config{})
				play(r, tt.events)
				time.Sleep(3 * window) // every window ends
				synctest.Wait()
				if tt.want != nil {
					for key, want := range tt.want {
						assert.Equal(t, want, r.values(key), "key %s", key)
					}
				} else {
					n := len(r.values("k"))
					assert.True(t, n >= tt.wantCount[0] && n <= tt.wantCount[1], "sent %d, want %d to %d", n, tt.wantCount[0], tt.wantCount[1])
					assert.Equal(t, 19, r.values("k")[n-1], "the last state goes last")
				}
				assert.Zero(t, r.c.Len(), "quiet keys are forgotten")
			})
		})
	}
}

type event struct {
	at  time.Duration
	key string
	val int
}

// burst is n events for key, every gap, valued 0 to n-1.
func burst(key string, n int, gap time.Duration) []event {
	es := make([]event, n)
	for i := range es {
		es[i] = event{at: time.Duration(i) * gap, key: key, val: i}
	}
	return es
}

// interleave merges event lists by time (stable).
func interleave(lists ...[]event) []event {
	var all []event
	for _, l := range lists {
		all = append(all, l...)
	}
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j].at < all[j-1].at; j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	return all
}

// play adds each event at its time, from a bubble's goroutine.
func play(r *recorder, events []event) {
	began := time.Now()
	for _, e := range events {
		time.Sleep(e.at - time.Since(began))
		r.add(e.key, e.val, window)
	}
}

// The edges fall where a leading+trailing throttle puts them: the leading
// one at once, each trailing one at the end of its window, and a key that
// keeps changing emits once per window (not a debounce, which would wait
// for quiet).
func TestEdgesAreOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder(t, coalesce.Config{})
		play(r, burst("k", 20, 50*time.Millisecond)) // 0 … 950ms
		time.Sleep(time.Second)
		synctest.Wait()
		out := r.sent()
		require.NotEmpty(t, out)
		assert.Equal(t, sent{at: 0, key: "k", val: 0, edge: "leading", state: coalesce.Leading}, out[0])
		for i, s := range out[1:] {
			assert.Equal(t, "trailing", s.edge)
			assert.Equal(t, time.Duration(i+1)*window, s.at, "trailing edge %d ends window %d", i+1, i+1)
		}
		assert.Len(t, out, 11, "one per window: the leading edge and ten trailing")
	})
}

func TestResults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := coalesce.New(coalesce.Config{MaxKeys: 2}, func(string, int) {})
		require.NoError(t, err)
		assert.Equal(t, coalesce.Leading, c.Add("a", 1, window))
		assert.Equal(t, coalesce.Pending, c.Add("a", 2, window))
		assert.Equal(t, coalesce.Coalesced, c.Add("a", 3, window))
		assert.Equal(t, coalesce.Coalesced, c.Add("a", 4, window))
		assert.Equal(t, coalesce.Leading, c.Add("b", 1, window))
		assert.Equal(t, coalesce.Overflow, c.Add("c", 1, window), "MaxKeys: 2")
		assert.Equal(t, coalesce.Overflow, c.Add("c", 2, window), "an overflowing key is not tracked")
		assert.Equal(t, 2, c.Len())

		time.Sleep(window) // a emits and opens its next window; b is quiet and forgotten
		synctest.Wait()
		assert.Equal(t, 1, c.Len())
		assert.Equal(t, coalesce.Leading, c.Add("c", 3, window), "room again")
		assert.Equal(t, coalesce.Pending, c.Add("a", 5, window), "a's next window is open")

		c.Close()
		assert.Equal(t, coalesce.Closed, c.Add("a", 6, window))
		assert.Zero(t, c.Len())
		c.Close() // idempotent
	})
}

func TestResultSend(t *testing.T) {
	tests := []struct {
		r    coalesce.Result
		send bool
		name string
	}{
		{coalesce.Leading, true, "leading"},
		{coalesce.Pending, false, "pending"},
		{coalesce.Coalesced, false, "coalesced"},
		{coalesce.Overflow, true, "overflow"},
		{coalesce.Closed, true, "closed"},
		{coalesce.Result(0), false, "Result(0)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.send, tt.r.Send(), tt.name)
		assert.Equal(t, tt.name, tt.r.String())
	}
}

// Close hands every pending value to emit and forgets every key; nothing
// is lost, nothing sent twice.
func TestCloseFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder(t, coalesce.Config{})
		const keys = 1000
		for k := range keys {
			key := strconv.Itoa(k)
			r.add(key, 0, window)
			r.add(key, 1, window)
			if k%2 == 0 {
				r.add(key, 2, window)
			}
		}
		time.Sleep(window / 2)
		r.c.Close()
		assert.Zero(t, r.c.Len())
		byKey := map[string][]int{}
		for _, s := range r.sent() {
			byKey[s.key] = append(byKey[s.key], s.val)
		}
		require.Len(t, byKey, keys)
		for k := range keys {
			want := []int{0, 1}
			if k%2 == 0 {
				want = []int{0, 2}
			}
			assert.Equal(t, want, byKey[strconv.Itoa(k)], "key %d", k)
		}
		for _, s := range r.sent()[keys:] {
			assert.Equal(t, window/2, s.at, "flushed by Close, not at the window's end")
		}
	})
}

func TestMerge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []string
		c, err := coalesce.New(coalesce.Config{}, func(key string, v string) { got = append(got, key+"="+v) },
			coalesce.WithMerge(func(pending, next string) string { return pending + "+" + next }))
		require.NoError(t, err)
		defer c.Close()
		for _, v := range []string{"a", "b", "c", "d"} {
			c.Add("k", v, window)
		}
		time.Sleep(window)
		synctest.Wait()
		assert.Equal(t, []string{"k=b+c+d"}, got, "the leading a is the caller's; the rest merged")
	})
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		cfg  coalesce.Config
		want string
	}{
		{coalesce.Config{MaxKeys: -1}, "max_keys"},
		{coalesce.Config{MaxKeys: 1 << 31}, "max_keys"},
		{coalesce.Config{Tick: -time.Second}, "tick"},
	}
	for _, tt := range tests {
		_, err := coalesce.New(tt.cfg, func(string, int) {})
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
	}
	_, err := coalesce.New[int](coalesce.Config{}, nil)
	assert.ErrorContains(t, err, "emit")
}

func TestWindowBounds(t *testing.T) {
	c, err := coalesce.New(coalesce.Config{}, func(string, int) {})
	require.NoError(t, err)
	defer c.Close()
	assert.Panics(t, func() { c.Add("k", 1, 0) })
	assert.Panics(t, func() { c.Add("k", 1, -time.Second) })
}

// AddTrailing opens a window without a leading edge.
func TestAddTrailing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder(t, coalesce.Config{})
		assert.Equal(t, coalesce.Pending, r.c.AddTrailing("k", 1, window))
		assert.Equal(t, coalesce.Coalesced, r.c.AddTrailing("k", 2, window))
		time.Sleep(window)
		synctest.Wait()
		assert.Equal(t, []sent{{at: window, key: "k", val: 2, edge: "trailing"}}, r.sent())
	})
}

// The window of a key's next window is the one its pending value came
// with, so a new window length reaches keys that never go quiet.
func TestWindowChangesForKeysThatKeepEmitting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder(t, coalesce.Config{})
		r.add("k", 0, window)
		r.add("k", 1, 300*time.Millisecond) // pending, with the new length
		time.Sleep(window)                  // window 1 ends: 1 goes, window 2 is 300ms
		synctest.Wait()
		r.add("k", 2, 300*time.Millisecond)
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		out := r.sent()
		require.Len(t, out, 3)
		assert.Equal(t, window, out[1].at)
		assert.Equal(t, window+300*time.Millisecond, out[2].at)
	})
}

// Tick rounds window ends up to its multiples.
func TestTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder(t, coalesce.Config{Tick: 40 * time.Millisecond})
		r.add("k", 0, window)
		r.add("k", 1, window)
		time.Sleep(time.Second)
		synctest.Wait()
		out := r.sent()
		require.Len(t, out, 2)
		assert.Equal(t, 120*time.Millisecond, out[1].at, "100ms rounded up to a 40ms tick")
	})
}

// No goroutine until the first window; Close ends it.
func TestGoroutineLifecycle(t *testing.T) {
	c, err := coalesce.New(coalesce.Config{}, func(string, int) {})
	require.NoError(t, err)
	// An earlier test's loop may be returning still.
	require.Eventually(t, func() bool { return loops() == 0 }, 5*time.Second, time.Millisecond)
	require.Zero(t, loops(), "New starts nothing")
	c.Add("k", 1, time.Hour)
	require.Equal(t, 1, loops(), "the first window starts the goroutine")
	c.Add("j", 1, time.Minute)
	require.Equal(t, 1, loops(), "one for every window")
	c.Close()
	require.Eventually(t, func() bool { return loops() == 0 }, 5*time.Second, time.Millisecond, "Close ends it")
	require.NoError(t, goleak.Find())
}

// loops counts the goroutines that a Coalescer started.
func loops() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "created by github.com/switchyard-go/switchyard/coalesce.(*Coalescer[...]).kick")
}

// An Add on a key that exists, and the opening of a window in a slot that
// an earlier key freed, allocate nothing.
func TestAddDoesNotAllocate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := coalesce.New(coalesce.Config{}, func(string, *int) {})
		require.NoError(t, err)
		defer c.Close()
		v := new(int)
		keys := make([]string, 1000)
		for i := range keys {
			keys[i] = "conversation-" + strconv.Itoa(i)
			c.Add(keys[i], v, window)
		}
		i := 0
		allocs := testing.AllocsPerRun(10000, func() {
			c.Add(keys[i%len(keys)], v, window)
			i++
		})
		assert.Zero(t, allocs, "existing keys")

		time.Sleep(3 * window) // every key emits, then goes quiet and is forgotten
		synctest.Wait()
		require.Zero(t, c.Len())
		i = 0
		allocs = testing.AllocsPerRun(len(keys)-1, func() {
			c.Add(keys[i], v, window)
			i++
		})
		assert.Zero(t, allocs, "new windows in freed slots")
	})
}

// Many goroutines add on overlapping keys while windows end: every value
// added is sent by the caller, emitted, or replaced, exactly once; no
// window is emitted for a key twice at once.
func TestConcurrentAccounting(t *testing.T) {
	const (
		workers = 8
		perW    = 20000
		keys    = 500
	)
	var (
		emitted  atomic.Int64
		replaced atomic.Int64
		direct   atomic.Int64
	)
	c, err := coalesce.New(coalesce.Config{MaxKeys: keys / 2, Tick: 100 * time.Microsecond},
		func(string, int) { emitted.Add(1) })
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range perW {
				key := "k" + strconv.Itoa(rng.IntN(keys))
				var res coalesce.Result
				if i%7 == 0 {
					res = c.AddTrailing(key, i, time.Millisecond)
				} else {
					res = c.Add(key, i, time.Duration(1+rng.IntN(3))*time.Millisecond)
				}
				switch {
				case res == coalesce.Coalesced:
					replaced.Add(1)
				case res.Send():
					direct.Add(1)
				}
				if i == perW/2 && w == 0 {
					time.Sleep(5 * time.Millisecond) // let windows end mid-run
				}
			}
		})
	}
	wg.Wait()
	c.Close()
	assert.EqualValues(t, workers*perW, direct.Load()+emitted.Load()+replaced.Load(),
		"direct %d + emitted %d + replaced %d", direct.Load(), emitted.Load(), replaced.Load())
	assert.Zero(t, c.Len())
}

// Under synctest the bubble's clock drives the windows: nothing is emitted
// a moment before the window's end, the pending value exactly at it.
func TestWindowEndsOnTheBubbleClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		got := make(chan string, 10)
		c, err := coalesce.New(coalesce.Config{}, func(key string, v int) { got <- fmt.Sprint(key, v) })
		require.NoError(t, err)
		defer c.Close()
		require.Equal(t, coalesce.Leading, c.Add("k", 1, window))
		require.Equal(t, coalesce.Pending, c.Add("k", 2, window))
		time.Sleep(window - time.Nanosecond)
		synctest.Wait()
		require.Empty(t, got, "emitted before the window's end")
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		require.Len(t, got, 1)
		assert.Equal(t, "k2", <-got)
	})
}
