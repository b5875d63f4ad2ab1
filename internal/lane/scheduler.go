package lane

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/internal/backoff"
	"github.com/switchyard-go/switchyard/internal/delivery"
)

// Source is what a Scheduler asks of the subscription whose items it
// delivers.
type Source[T any] interface {
	// Message returns the message of item's next delivery, attempts
	// deliveries after its first, and a delivery context for it, not yet
	// used: the Scheduler ties it to its own context and ends it with the
	// delivery.
	Message(item T, attempts int) (*message.Message, *delivery.Context)
	// Acked is told that the handler acked item; also after the
	// Scheduler's context ended, if the ack came first.
	Acked(item T)
	// Nacked is told that the handler nacked item, delivered attempts
	// times. It returns true when item is done with (it dead-lettered it):
	// the lane moves on. Otherwise item is delivered again after a
	// backoff, ahead of the rest of its lane.
	Nacked(item T, attempts int) (done bool)
}

// Config sets a Scheduler up.
type Config struct {
	Lanes                         int
	RetryBackoff, MaxRetryBackoff time.Duration
	// HandOff makes Push hand an idle lane's new head to the handler
	// itself when the handler is waiting, rather than through a worker,
	// whose wake-up is one more goroutine switch before the handler's.
	HandOff bool
}

// Scheduler delivers items per key in order: the items of a lane are handed
// to the handler one at a time, the next once the previous is acked, and
// different lanes are handed out concurrently, by one worker per lane at
// most. Items are kept until the Source is done with them; a subscription
// that ends leaves those it holds to its Source.
type Scheduler[T any] struct {
	ctx context.Context
	out chan<- *message.Message
	src Source[T]
	cfg Config

	mu    sync.Mutex
	lanes []queue[T]
	ready chan wake // lanes for a worker to deliver; never more than Lanes
}

type queue[T any] struct {
	q     []slot[T]
	busy  bool // in ready, with a worker, or waiting for a redelivery
	timer *time.Timer
}

type slot[T any] struct {
	item     T
	attempts int
}

// wake hands lane l to a worker, with its head's message when Push made it
// (and whether Push handed it over too, leaving the worker only to wait
// for the ack).
type wake struct {
	l      int
	m      *message.Message
	dc     *delivery.Context
	handed bool
}

// NewScheduler returns a scheduler handing the items of src to out until
// ctx ends.
func NewScheduler[T any](ctx context.Context, out chan<- *message.Message, src Source[T], cfg Config) *Scheduler[T] {
	cfg.Lanes = max(cfg.Lanes, 1)
	return &Scheduler[T]{
		ctx: ctx, out: out, src: src, cfg: cfg,
		lanes: make([]queue[T], cfg.Lanes),
		ready: make(chan wake, cfg.Lanes),
	}
}

// Start starts the workers, one per lane, in wg; they end with the
// Scheduler's context.
func (s *Scheduler[T]) Start(wg *sync.WaitGroup) {
	for range s.cfg.Lanes {
		wg.Go(s.work)
	}
}

// Push queues item in the lane of key. handed is whether, with HandOff, it
// was handed to the handler at once.
func (s *Scheduler[T]) Push(key string, item T) (handed bool) {
	l := Of(key, len(s.lanes))
	s.mu.Lock()
	ln := &s.lanes[l]
	ln.q = append(ln.q, slot[T]{item: item})
	idle := !ln.busy
	ln.busy = true
	s.mu.Unlock()
	if !idle {
		return false
	}
	// item is the head, and until ready has the lane nobody else touches it.
	w := wake{l: l}
	if s.cfg.HandOff {
		w.m, w.dc = s.message(item, 0)
		select {
		case s.out <- w.m:
			w.handed = true
		default:
		}
	}
	s.ready <- w
	return w.handed
}

// Stop stops the redelivery timers, once the workers have ended.
func (s *Scheduler[T]) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.lanes {
		if t := s.lanes[i].timer; t != nil {
			t.Stop()
		}
	}
}

func (s *Scheduler[T]) message(item T, attempts int) (*message.Message, *delivery.Context) {
	m, dc := s.src.Message(item, attempts)
	dc.Context = s.ctx
	m.SetContext(dc)
	return m, dc
}

// work delivers the lanes it is handed, one at a time until the lane is
// empty or waits for a redelivery.
func (s *Scheduler[T]) work() {
	for {
		var w wake
		select {
		case w = <-s.ready:
		case <-s.ctx.Done():
			return
		}
		for {
			more, ok := s.deliver(w)
			if !ok {
				return
			}
			if !more {
				break
			}
			w = wake{l: w.l}
		}
	}
}

// deliver hands lane w.l's head to the handler and waits for its ack or
// nack. more is whether the lane has a next item for this worker to
// deliver at once; ok is false when the Scheduler's context has ended.
func (s *Scheduler[T]) deliver(w wake) (more, ok bool) {
	s.mu.Lock()
	head := s.lanes[w.l].q[0]
	s.mu.Unlock()
	m, dc := w.m, w.dc
	if m == nil {
		m, dc = s.message(head.item, head.attempts)
	}
	if !w.handed {
		select {
		case s.out <- m:
		case <-s.ctx.Done():
			dc.End(s.ctx.Err())
			return false, false
		}
	}
	attempts := head.attempts + 1
	select {
	case <-m.Acked():
		dc.End(context.Canceled)
		s.src.Acked(head.item)
		return s.next(w.l), true
	case <-m.Nacked():
		dc.End(context.Canceled)
	case <-s.ctx.Done():
		dc.End(s.ctx.Err())
		select {
		case <-m.Acked():
			s.src.Acked(head.item)
		default: // the Source's to hand back
		}
		return false, false
	}
	if s.src.Nacked(head.item, attempts) {
		return s.next(w.l), true
	}
	d := backoff.Exp(s.cfg.RetryBackoff, s.cfg.MaxRetryBackoff, min(attempts-1, 20))
	s.mu.Lock()
	ln := &s.lanes[w.l]
	ln.q[0].attempts = attempts
	if ln.timer == nil {
		l := w.l
		ln.timer = time.AfterFunc(d, func() { s.ready <- wake{l: l} })
	} else {
		ln.timer.Reset(d)
	}
	s.mu.Unlock()
	return false, true
}

// next drops lane l's head and reports whether the lane has more; the lane
// stays busy then, for the caller to deliver.
func (s *Scheduler[T]) next(l int) bool {
	s.mu.Lock()
	ln := &s.lanes[l]
	var zero slot[T]
	ln.q[0] = zero
	ln.q = ln.q[1:]
	more := len(ln.q) > 0
	ln.busy = more
	s.mu.Unlock()
	return more
}
