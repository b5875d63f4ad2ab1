package coalesce

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Result says what Add did with a value.
type Result uint8

const (
	// Leading: the value opened a window for its key. Send it now; what
	// comes for the key until the window ends waits for the trailing edge.
	Leading Result = iota + 1
	// Pending: the value waits for the end of its key's window, when emit
	// gets it. Nothing was waiting before it.
	Pending
	// Coalesced: the value replaced the one waiting for the end of its key's
	// window (or, WithMerge, was merged into it): one send saved.
	Coalesced
	// Overflow: MaxKeys keys are tracked already. The value was not taken:
	// send it now, uncoalesced.
	Overflow
	// Closed: the Coalescer is closed. The value was not taken: send it now.
	Closed
)

// Send reports whether the caller must send the value itself: true for
// Leading, Overflow and Closed, false when the Coalescer holds it.
func (r Result) Send() bool { return r == Leading || r == Overflow || r == Closed }

func (r Result) String() string {
	switch r {
	case Leading:
		return "leading"
	case Pending:
		return "pending"
	case Coalesced:
		return "coalesced"
	case Overflow:
		return "overflow"
	case Closed:
		return "closed"
	}
	return fmt.Sprintf("Result(%d)", uint8(r))
}

// Coalescer is a per-key throttle with a leading and a trailing edge. The
// first value added for a key opens a window and is the caller's to send
// (Leading); the values added until the window ends replace one another
// (latest wins, or WithMerge), and the one left when the window ends goes to
// emit, which opens the next window of the key: a key that keeps changing
// emits once per window. A window that ends with nothing pending forgets its
// key.
//
// One goroutine, started by the first window and ended by Close, ends the
// windows and calls emit, never with a lock held.
//
// A Coalescer is safe for concurrent use. Close it to flush what is pending
// and end its goroutine.
type Coalescer[T any] struct {
	emit  func(key string, v T)
	merge func(pending, next T) T
	epoch time.Time
	tick  int64
	max   int64
	seed  maphash.Seed

	live   atomic.Int64
	closed atomic.Bool
	// next is the earliest window end the goroutine will wake for, idle
	// when it knows of none, scanning while it looks. Add wakes it for an
	// earlier one.
	next atomic.Int64
	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	runMu     sync.Mutex
	running   atomic.Bool
	stopped   bool
	closeOnce sync.Once

	shards [numShards]shard[T]
}

const (
	idle     = math.MaxInt64
	scanning = math.MinInt64
)

// New returns a Coalescer that hands each window's trailing value to emit.
// emit runs on the Coalescer's goroutine, one call at a time, and on the
// goroutine that calls Close; while it runs no other window ends, so it
// should return soon. New starts no goroutine: the first window does.
func New[T any](cfg Config, emit func(key string, v T), opts ...Option[T]) (*Coalescer[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if emit == nil {
		return nil, errors.New("coalesce: emit must not be nil")
	}
	cfg.setDefaults()
	c := &Coalescer[T]{
		emit: emit,
		tick: int64(cfg.Tick),
		max:  int64(cfg.MaxKeys),
		seed: maphash.MakeSeed(),
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for _, opt := range opts {
		opt(c)
	}
	c.epoch = time.Now()
	c.next.Store(idle)
	for i := range c.shards {
		c.shards[i].free = -1
	}
	return c, nil
}

// Add adds v for key. It returns Leading when v opens a window (send v
// now), Pending or Coalesced when the Coalescer holds v for the window's
// end, Overflow or Closed when it did not take v (send it now).
//
// The window given when a key's window opens sets when it ends; the one
// given with the value that ends up pending sets the length of the window
// its emission opens. Add panics if window is not positive and cuts a window
// longer than MaxWindow to it.
func (c *Coalescer[T]) Add(key string, v T, window time.Duration) Result {
	return c.add(key, v, window, true)
}

// AddTrailing is Add without a leading edge: when no window of key is open,
// one opens with v pending instead of v to send at once. Use it to keep a
// value behind an earlier emission of its key still on its way.
func (c *Coalescer[T]) AddTrailing(key string, v T, window time.Duration) Result {
	return c.add(key, v, window, false)
}

func (c *Coalescer[T]) add(key string, v T, window time.Duration, leading bool) Result {
	w := micros(window)
	h := maphash.String(c.seed, key)
	s := &c.shards[h>>(64-shardBits)]
	s.mu.Lock()
	if c.closed.Load() {
		s.mu.Unlock()
		return Closed
	}
	if i := s.find(key, h); i >= 0 {
		sl := &s.slots[i]
		res := Pending
		if sl.window&pendingBit != 0 {
			res = Coalesced
			if c.merge != nil {
				v = c.merge(sl.val, v)
			}
		}
		sl.val = v
		sl.window = w | pendingBit
		s.mu.Unlock()
		return res
	}
	if c.live.Add(1) > c.max {
		c.live.Add(-1)
		s.mu.Unlock()
		return Overflow
	}
	deadline := c.now() + int64(w)*1000
	i := s.insert(c, key, h)
	sl := &s.slots[i]
	sl.key, sl.deadline, sl.window = key, deadline, w
	if !leading {
		sl.val, sl.window = v, w|pendingBit
	}
	s.enqueue(i, int64(w)*1000)
	s.mu.Unlock()

	if n := c.next.Load(); n == scanning || deadline < n {
		c.kick()
	}
	if leading {
		return Leading
	}
	return Pending
}

// Len returns the number of keys tracked: those with a window open.
func (c *Coalescer[T]) Len() int { return int(c.live.Load()) }

// Close ends the goroutine, then hands every pending value to emit, on the
// calling goroutine, and forgets every key: nothing added is lost. Add
// returns Closed from then on. Close is idempotent; a second call returns
// once the first is done.
func (c *Coalescer[T]) Close() {
	c.closeOnce.Do(func() {
		c.runMu.Lock()
		c.stopped = true
		wasRunning := c.running.Load()
		c.runMu.Unlock()
		if wasRunning {
			close(c.stop)
			<-c.done
		}
		c.closed.Store(true)
		var batch []emission[T]
		for i := range c.shards {
			batch = c.shards[i].drain(c, batch)
		}
		c.emitAll(batch)
	})
}

// now is the time since New, monotonic.
func (c *Coalescer[T]) now() int64 { return int64(time.Since(c.epoch)) }

// kick makes the goroutine look at the windows again, starting it if need be.
func (c *Coalescer[T]) kick() {
	if !c.running.Load() {
		c.runMu.Lock()
		if !c.running.Load() && !c.stopped {
			c.running.Store(true)
			go c.run()
		}
		c.runMu.Unlock()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run ends windows as they come due, until Close.
func (c *Coalescer[T]) run() {
	defer close(c.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var batch []emission[T]
	for {
		// Add wakes the goroutine for any window it opens while next says
		// scanning, so none opened during the scan is missed.
		c.next.Store(scanning)
		earliest := int64(idle)
		for i := range c.shards {
			var e int64
			batch, e = c.shards[i].expire(c, batch)
			earliest = min(earliest, e)
		}
		c.next.Store(earliest)
		batch = c.emitAll(batch)

		var fire <-chan time.Time
		if earliest != idle {
			due := (earliest + c.tick - 1) / c.tick * c.tick
			timer.Reset(time.Duration(max(due-c.now(), 0)))
			fire = timer.C
		}
		select {
		case <-fire:
		case <-c.wake:
			timer.Stop()
		case <-c.stop:
			timer.Stop()
			return
		}
	}
}

// emitAll emits batch, outside any lock, and returns it emptied.
func (c *Coalescer[T]) emitAll(batch []emission[T]) []emission[T] {
	for _, e := range batch {
		c.emit(e.key, e.val)
	}
	clear(batch) // hold no value longer than needed
	return batch[:0]
}

type emission[T any] struct {
	key string
	val T
}

const (
	pendingBit = 1 << 31
	maxMicros  = pendingBit - 1
)

// micros is window in whole microseconds, rounded up, at most maxMicros.
func micros(window time.Duration) uint32 {
	if window <= 0 {
		panic(fmt.Sprintf("coalesce: window must be positive, got %s", window))
	}
	us := (window + time.Microsecond - 1) / time.Microsecond
	return uint32(min(us, maxMicros))
}
