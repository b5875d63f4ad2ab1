package middleware

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults applied to the zero fields of DedupeConfig.
const (
	defaultDedupeTTL     = 10 * time.Minute
	defaultDedupeMaxKeys = 100000
)

// ErrDuplicateInFlight is returned for a message whose key another delivery
// was still handling when the message's context ended: its fate was not
// known, so the message is nacked, to be redelivered and judged again.
var ErrDuplicateInFlight = errors.New("middleware: dedupe: a message with the same key is still being handled")

// DedupeConfig configures a Dedupe. The zero value is usable: every zero
// field takes its default.
type DedupeConfig struct {
	// TTL is how long a message that was handled successfully is
	// remembered: a duplicate that comes later is handled again. Make it
	// longer than the time a duplicate can take to arrive (a transport's
	// redelivery delay, a fallback's publish timeout). Default 10m.
	TTL time.Duration `koanf:"ttl"`
	// MaxKeys bounds the keys remembered at once, and so the memory used.
	// When it is reached the oldest are forgotten first, before their TTL:
	// a duplicate of one of those is handled again. Default 100,000.
	MaxKeys int `koanf:"max_keys"`
}

func (c *DedupeConfig) setDefaults() {
	c.TTL = cmp.Or(c.TTL, defaultDedupeTTL)
	c.MaxKeys = cmp.Or(c.MaxKeys, defaultDedupeMaxKeys)
}

// Validate reports every invalid field, each error naming its key.
func (c DedupeConfig) Validate() error {
	var errs []error
	if c.TTL < 0 {
		errs = append(errs, fmt.Errorf("middleware: dedupe: ttl: must not be negative, got %s", c.TTL))
	}
	if c.MaxKeys < 0 {
		errs = append(errs, fmt.Errorf("middleware: dedupe: max_keys: must not be negative, got %d", c.MaxKeys))
	}
	return errors.Join(errs...)
}

// Dedupe drops the duplicates of messages already handled, on the consumer
// side: delivery is at least once, and a message that a fallback published
// twice, or that a transport redelivered after its ack was lost, comes back
// with the same UUID. Wrap a handler with Middleware (a Watermill router's
// handler) or Handler (bus.Handle's).
//
// A message is remembered once its handler returned no error. A duplicate
// of a remembered message, within TTL, is acked without reaching the
// handler, and counted. A message whose handler failed (or panicked) is not
// remembered: its redelivery is handled again.
//
// A duplicate that arrives while a message with its key is still in the
// handler waits for that outcome: acked if the handler succeeded, handled
// itself if it failed. Two messages with one key never run at once, and
// neither is lost. If the waiting message's context ends first, it returns
// ErrDuplicateInFlight, a nack, for redelivery to decide later.
//
// In a chain, put Dedupe innermost, right before the handler, so that what
// it remembers is the handler's own outcome. Use one Dedupe per handler:
// two handlers that share one would take each other's messages for
// duplicates.
//
// Memory is bounded by MaxKeys, whatever the TTL; expired and evicted keys
// go oldest first, dropped when a new one is remembered, so a Dedupe owns
// no goroutine and needs no Close. It is safe for concurrent use.
type Dedupe struct {
	ttl   int64 // nanoseconds
	key   func(*message.Message) string
	clock func() time.Time
	epoch time.Time

	mu sync.Mutex
	// seen maps each key remembered to when; queue holds them in that
	// order, so that the ones to expire or evict are at its head. A key is
	// in the queue once: it is remembered again only once it has expired,
	// and remember takes the expired ones off the queue first. Hand-written
	// because it pays: against golang-lru's simplelru, a same-run benchmark
	// found a key a third smaller (BenchmarkDedupeMemory) and no allocation
	// per new message (BenchmarkDedupe/miss), at the same speed.
	seen    map[string]int64
	running map[string]chan struct{} // keys in the handler
	queue   dedupeQueue
	max     int
	last    int64 // the latest time read; see clamp

	deduplicated prometheus.Counter
	evictions    prometheus.Counter
}

// NewDedupe returns a Dedupe configured by cfg. It reads WithKey (default:
// the message's UUID), WithNow and WithRegisterer.
func NewDedupe(cfg DedupeConfig, opts ...Option) (*Dedupe, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	o := buildOptions(opts, func(m *message.Message) string { return m.UUID })
	d := &Dedupe{
		ttl:     int64(cfg.TTL),
		key:     o.key,
		clock:   o.now,
		seen:    make(map[string]int64),
		running: make(map[string]chan struct{}),
		max:     cfg.MaxKeys,
		deduplicated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "events_deduplicated_total",
			Help: "Messages dropped as duplicates of one already handled.",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_dedupe_evictions_total",
			Help: "Keys forgotten before their TTL because dedupe remembered its maximum of keys.",
		}),
	}
	d.epoch = d.clock()
	if r := o.registerer; r != nil {
		keys := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchyard_dedupe_keys",
			Help: "Keys that dedupe remembers.",
		}, func() float64 { return float64(d.Len()) })
		for _, c := range []prometheus.Collector{d.deduplicated, d.evictions, keys} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("middleware: dedupe: register metrics: %w", err)
			}
		}
	}
	return d, nil
}

// Middleware wraps h so that it never sees a duplicate of a message it
// handled successfully within the TTL.
func (d *Dedupe) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) ([]*message.Message, error) {
		key := d.key(m)
		if key == "" {
			return h(m)
		}
		if dup, err := d.begin(m, key); dup || err != nil {
			return nil, err
		}
		handled := false // stays false if h panics
		defer func() { d.end(key, handled) }()
		out, err := h(m)
		handled = err == nil
		return out, err
	}
}

// Handler is Middleware for a handler that publishes nothing, such as the
// one bus.Handle takes.
func (d *Dedupe) Handler(h message.NoPublishHandlerFunc) message.NoPublishHandlerFunc {
	mw := d.Middleware(func(m *message.Message) ([]*message.Message, error) { return nil, h(m) })
	return func(m *message.Message) error {
		_, err := mw(m)
		return err
	}
}

// Len returns the number of keys remembered: at most MaxKeys. It forgets
// the expired ones first.
func (d *Dedupe) Len() int {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(d.clamp(now))
	return len(d.seen)
}

// begin decides the fate of a message: a duplicate (dup), or one to wait
// for (err, if its context ended first), or one to handle, which then holds
// its key until end.
func (d *Dedupe) begin(m *message.Message, key string) (dup bool, err error) {
	for {
		d.mu.Lock()
		// The clock is read only for a key seen before: a new one, the
		// common case, needs no time until end.
		if at, ok := d.seen[key]; ok && d.clamp(d.now())-at < d.ttl {
			d.mu.Unlock()
			d.deduplicated.Inc()
			return true, nil
		}
		done, running := d.running[key]
		if !running {
			d.running[key] = nil // a channel only once someone waits
			d.mu.Unlock()
			return false, nil
		}
		if done == nil {
			done = make(chan struct{})
			d.running[key] = done
		}
		d.mu.Unlock()

		ctx := m.Context()
		select {
		case <-done:
			// Remembered, or failed and free for this one: look again.
		case <-ctx.Done():
			return false, fmt.Errorf("%w: %w", ErrDuplicateInFlight, context.Cause(ctx))
		}
	}
}

// end releases the key that begin gave a message, remembering it if its
// handler succeeded, and wakes whoever waits for it.
func (d *Dedupe) end(key string, ok bool) {
	now := d.now()
	d.mu.Lock()
	done := d.running[key]
	delete(d.running, key)
	if ok {
		if d.remember(key, d.clamp(now)) {
			d.evictions.Inc()
		}
	}
	d.mu.Unlock()
	if done != nil {
		close(done)
	}
}

// now is the time since NewDedupe, in nanoseconds.
func (d *Dedupe) now() int64 { return int64(d.clock().Sub(d.epoch)) }

// clamp makes the time monotonic, even if the clock steps back, so that
// the queue stays in time order and a key judged expired is expired.
func (d *Dedupe) clamp(now int64) int64 {
	d.last = max(d.last, now)
	return d.last
}

// remember records key at now and reports whether a key had to be evicted
// to make room.
func (d *Dedupe) remember(key string, now int64) (evicted bool) {
	d.expire(now)
	if d.queue.n >= d.max {
		delete(d.seen, d.queue.pop().key)
		evicted = true
	}
	d.queue.push(dedupeEntry{key: key, at: now}, d.max)
	d.seen[key] = now
	return evicted
}

// expire forgets the keys remembered a TTL or more before now.
func (d *Dedupe) expire(now int64) {
	for d.queue.n > 0 {
		if now-d.queue.peek().at < d.ttl {
			return
		}
		delete(d.seen, d.queue.pop().key)
	}
}

type dedupeEntry struct {
	key string
	at  int64
}

// dedupeQueue is a FIFO in a ring that grows, up to a bound, as it fills.
type dedupeQueue struct {
	ring    []dedupeEntry
	head, n int
}

func (q *dedupeQueue) push(e dedupeEntry, bound int) {
	if q.n == len(q.ring) {
		grown := make([]dedupeEntry, min(max(2*len(q.ring), 16), bound))
		k := copy(grown, q.ring[q.head:])
		copy(grown[k:], q.ring[:q.head])
		q.ring, q.head = grown, 0
	}
	i := q.head + q.n
	if i >= len(q.ring) {
		i -= len(q.ring)
	}
	q.ring[i] = e
	q.n++
}

func (q *dedupeQueue) peek() dedupeEntry { return q.ring[q.head] }

func (q *dedupeQueue) pop() dedupeEntry {
	e := q.ring[q.head]
	q.ring[q.head] = dedupeEntry{} // let the key go
	q.head++
	if q.head == len(q.ring) {
		q.head = 0
	}
	q.n--
	return e
}

var (
	_ message.HandlerMiddleware                                       = (*Dedupe)(nil).Middleware
	_ func(message.NoPublishHandlerFunc) message.NoPublishHandlerFunc = (*Dedupe)(nil).Handler
)
