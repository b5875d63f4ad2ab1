package coalesce

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/internal/metakey"
)

// MiddlewareConfig configures Middleware.
type MiddlewareConfig struct {
	// Windows maps each event type to coalesce to its window. Messages of
	// other types pass through untouched. It must not be empty.
	Windows map[string]time.Duration `koanf:"windows"`
	// MaxKeys bounds the keys tracked at once; past it messages pass
	// through uncoalesced and are counted. Default 100,000.
	MaxKeys int `koanf:"max_keys"`
}

// Middleware coalesces messages in a Watermill handler: per event type and
// key, the first message of a window goes on at once, the later ones are
// acked at once and replace one another, and the last is republished when
// the window ends. Add it with its Middleware method.
//
// Stages before it see a trailing message twice: when it arrives, and when
// it comes back republished (IsRepublished tells). Stages after it see each
// message that is published once, and none of those coalesced away.
type Middleware struct {
	c          *Coalescer[*message.Message]
	types      map[string]*eventType // read-only after NewMiddleware
	eventType  func(*message.Message) string
	key        func(*message.Message) string
	republish  func(*message.Message) error
	superseded func(*message.Message)
	inFlight   inFlight
	// retries holds the UUIDs of the messages that went on and failed,
	// until they are redelivered. One never redelivered (dead-lettered)
	// stays until MaxKeys others push it out; if it came back after all, it
	// would be coalesced like a new message: held, not lost.
	retries    *lru.Cache[string, struct{}]
	lost       atomic.Int64
	lastErr    atomic.Pointer[error]
	closeOnce  sync.Once
	closeErr   error
	registerer prometheus.Registerer // NewMiddleware's
}

type eventType struct {
	window    atomic.Int64 // nanoseconds
	coalesced prometheus.Counter
	overflow  prometheus.Counter
}

// NewMiddleware returns a Middleware that sends each window's trailing
// message to republish, back to the head of the pipeline, where the
// middleware lets it through. A bus gives its ingress, so that the message
// is retried and dead-lettered like any other and stays in order with its
// key. republish is called on the Coalescer's goroutine (and by Close): it
// may wait for room, which delays the other windows' ends meanwhile. An
// error loses the message; Close reports how many were lost.
//
// WithRegisterer registers its metrics: events_coalesced_total{event_type}
// (publishes saved), switchyard_coalesce_overflow_total{event_type}
// (messages passed through uncoalesced because MaxKeys keys were tracked)
// and switchyard_coalesce_keys (keys tracked now). Close it to flush the
// pending messages.
func NewMiddleware(cfg MiddlewareConfig, republish func(*message.Message) error, opts ...MiddlewareOption) (*Middleware, error) {
	var errs []error
	if len(cfg.Windows) == 0 {
		errs = append(errs, errors.New("coalesce: windows: must name at least one event type"))
	}
	for _, typ := range slices.Sorted(maps.Keys(cfg.Windows)) {
		if err := checkWindow(cfg.Windows[typ]); err != nil {
			errs = append(errs, fmt.Errorf("coalesce: windows.%s: %w", typ, err))
		}
	}
	if republish == nil {
		errs = append(errs, errors.New("coalesce: republish must not be nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	mw := &Middleware{
		types:     make(map[string]*eventType, len(cfg.Windows)),
		republish: republish,
		inFlight:  inFlight{keys: make(map[string]int32)},
	}
	for _, opt := range opts {
		opt(mw)
	}
	if mw.eventType == nil {
		mw.eventType = func(m *message.Message) string { return m.Metadata.Get(metakey.EventType) }
	}
	if mw.key == nil {
		mw.key = defaultKey
	}
	merge := func(pending, next *message.Message) *message.Message {
		if mw.superseded != nil {
			mw.superseded(pending)
		}
		return next
	}
	c, err := New(Config{MaxKeys: cfg.MaxKeys}, mw.emit, WithMerge(merge))
	if err != nil {
		return nil, err
	}
	mw.c = c
	mw.retries, _ = lru.New[string, struct{}](cmp.Or(cfg.MaxKeys, DefaultMaxKeys)) // New checked the size

	coalesced := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "events_coalesced_total",
		Help: "Events coalesced away: publishes saved by coalescing.",
	}, []string{"event_type"})
	overflow := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_coalesce_overflow_total",
		Help: "Events passed through uncoalesced because coalescing tracked its maximum of keys.",
	}, []string{"event_type"})
	for typ, w := range cfg.Windows {
		t := &eventType{coalesced: coalesced.WithLabelValues(typ), overflow: overflow.WithLabelValues(typ)}
		t.window.Store(int64(w))
		mw.types[typ] = t
	}
	if mw.registerer != nil {
		keys := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchyard_coalesce_keys",
			Help: "Keys with a coalescing window open.",
		}, func() float64 { return float64(c.Len()) })
		for _, col := range []prometheus.Collector{coalesced, overflow, keys} {
			if err := mw.registerer.Register(col); err != nil {
				return nil, fmt.Errorf("coalesce: register metrics: %w", err)
			}
		}
	}
	return mw, nil
}

func defaultKey(m *message.Message) string {
	k := m.Metadata.Get(metakey.EventKey)
	if k == "" {
		return ""
	}
	return message.SubscribeTopicFromCtx(m.Context()) + "\x00" + k
}

// Middleware is the message.HandlerMiddleware. A message coalesced away, or
// held for its window's end, returns no error, so the handler acks it; a
// message that goes on returns what the rest of the handler returns.
func (mw *Middleware) Middleware(next message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) ([]*message.Message, error) {
		if r, ok := m.Context().Value(republishedKey{}).(*republished); ok {
			mw.inFlight.landed(r)
			return next(m)
		}
		typ := mw.eventType(m)
		t, ok := mw.types[typ]
		if !ok {
			return next(m)
		}
		if mw.retries.Remove(m.UUID) {
			// Redelivered after the rest of the handler failed on it: it
			// went on once, it goes on again, with its attempts counted.
			return mw.pass(next, m)
		}
		key := mw.key(m)
		if key == "" {
			return next(m)
		}
		// Types are coalesced apart: their windows differ.
		key = typ + "\x00" + key
		window := time.Duration(t.window.Load())
		var res Result
		if mw.inFlight.has(key) {
			// An emission of the key is still on its way back: what comes
			// after it must not overtake it as a new leading edge.
			res = mw.c.AddTrailing(key, m, window)
		} else {
			res = mw.c.Add(key, m, window)
		}
		switch res {
		case Pending:
			return nil, nil
		case Coalesced:
			t.coalesced.Inc()
			return nil, nil
		case Overflow:
			t.overflow.Inc()
		}
		return mw.pass(next, m)
	}
}

// pass hands a coalesced type's message to the rest of the handler and, if
// that fails, remembers it, for its redelivery to go on too.
func (mw *Middleware) pass(next message.HandlerFunc, m *message.Message) ([]*message.Message, error) {
	out, err := next(m)
	if err != nil {
		mw.retries.Add(m.UUID, struct{}{})
	}
	return out, err
}

// SetWindow sets the window of a coalesced event type. Windows that open
// from now on take it, and so do the next windows of keys that keep
// emitting, from their next message on.
func (mw *Middleware) SetWindow(eventType string, window time.Duration) error {
	t, ok := mw.types[eventType]
	if !ok {
		return fmt.Errorf("coalesce: event type %q is not coalesced", eventType)
	}
	if err := checkWindow(window); err != nil {
		return fmt.Errorf("coalesce: window %w", err)
	}
	t.window.Store(int64(window))
	return nil
}

func checkWindow(w time.Duration) error {
	if w <= 0 || w > MaxWindow {
		return fmt.Errorf("must be positive and at most %s, got %s", MaxWindow, w)
	}
	return nil
}

// Len returns the number of keys with a window open.
func (mw *Middleware) Len() int { return mw.c.Len() }

// Close republishes every pending message, then lets every message through
// uncoalesced. It returns an error if republish failed for any trailing
// message since NewMiddleware. Close is idempotent.
func (mw *Middleware) Close() error {
	mw.closeOnce.Do(func() {
		mw.c.Close()
		if n := mw.lost.Load(); n > 0 {
			mw.closeErr = fmt.Errorf("coalesce: %d trailing messages could not be republished, the last: %w", n, *mw.lastErr.Load())
		}
	})
	return mw.closeErr
}

// emit republishes a window's trailing message, marked so that the
// middleware lets it through when it comes back.
func (mw *Middleware) emit(key string, m *message.Message) {
	r := &republished{key: key}
	mw.inFlight.add(key)
	out := m.Copy()
	out.SetContext(context.WithValue(m.Context(), republishedKey{}, r))
	if err := mw.republish(out); err != nil {
		mw.inFlight.landed(r)
		mw.lost.Add(1)
		mw.lastErr.Store(&err)
	}
}

// IsRepublished reports whether m is a trailing message that a Middleware
// republished.
func IsRepublished(m *message.Message) bool {
	_, ok := m.Context().Value(republishedKey{}).(*republished)
	return ok
}

type republishedKey struct{}

// republished marks a trailing message on its way back to the middleware.
type republished struct {
	key    string
	landed atomic.Bool // redeliveries land only once
}

// inFlight counts, per key, the trailing messages republished and not yet
// back at the middleware.
type inFlight struct {
	n    atomic.Int64
	mu   sync.Mutex
	keys map[string]int32
}

func (f *inFlight) add(key string) {
	f.mu.Lock()
	f.keys[key]++
	f.n.Add(1)
	f.mu.Unlock()
}

func (f *inFlight) landed(r *republished) {
	if !r.landed.CompareAndSwap(false, true) {
		return
	}
	f.mu.Lock()
	if f.keys[r.key]--; f.keys[r.key] <= 0 {
		delete(f.keys, r.key)
	}
	f.n.Add(-1)
	f.mu.Unlock()
}

func (f *inFlight) has(key string) bool {
	if f.n.Load() == 0 {
		return false
	}
	f.mu.Lock()
	_, ok := f.keys[key]
	f.mu.Unlock()
	return ok
}

var _ message.HandlerMiddleware = (*Middleware)(nil).Middleware
