package queue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

type topic struct {
	name   string
	broker *Broker
	mu     sync.Mutex // serialises group creation
	groups atomic.Pointer[[]*group]
}

// group is one consumer group's queue of a topic.
type group struct {
	topic *topic
	name  string
	cfg   *Config
	stats *counters

	// room is a semaphore of QueueSize slots: a slot is taken by publish and
	// given back when the message is acked or dead-lettered.
	room chan struct{}
	// ready holds the indexes of lanes whose head message may be delivered.
	// A lane is in it at most once, so sends never block.
	ready chan int

	mu             sync.Mutex
	implicit       bool // made with the topic, not asked for; guarded by topic.mu
	everSubscribed bool
	lanes          []laneQueue
	held           int // queued messages not yet acked or dead-lettered
	inFlight       int // of those, delivered and not yet acked or nacked
	subs           int
	changed        chan struct{} // closed when held or inFlight falls; made on demand
}

type laneQueue struct {
	q     ring
	busy  bool // in ready, delivered, or waiting for a redelivery
	timer *time.Timer
}

func newGroup(t *topic, name string) *group {
	cfg := &t.broker.cfg
	return &group{
		topic: t,
		name:  name,
		cfg:   cfg,
		stats: &t.broker.stats,
		room:  make(chan struct{}, cfg.QueueSize),
		ready: make(chan int, cfg.Lanes),
		lanes: make([]laneQueue, cfg.Lanes),
	}
}

func (g *group) reserve(ctx context.Context) error {
	select {
	case g.room <- struct{}{}:
		return nil
	default:
	}
	if g.cfg.OnFull == Reject {
		return ErrQueueFull
	}
	select {
	case g.room <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrQueueFull, ctx.Err())
	case <-g.topic.broker.done:
		return ErrClosed
	}
}

func (g *group) release() { <-g.room }

func (g *group) push(l int, e entry) {
	g.mu.Lock()
	ln := &g.lanes[l]
	ln.q.push(e)
	g.held++
	wake := !ln.busy
	ln.busy = true
	g.mu.Unlock()
	if wake {
		g.ready <- l
	}
}

func (g *group) subscribed(delta int) {
	g.mu.Lock()
	g.subs += delta
	if delta > 0 {
		g.everSubscribed = true
	}
	g.notifyLocked() // a Drain waiting on a queue that lost its subscribers stops waiting
	g.mu.Unlock()
}

// left returns how many held messages are not yet in a subscriber's hands
// (settled: not yet acked or dead-lettered), and a channel closed when that
// changes; 0 when no one subscribes.
func (g *group) left(settled bool) (int, chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.held
	if !settled {
		n -= g.inFlight
	}
	if g.subs == 0 || n == 0 {
		return 0, nil
	}
	if g.changed == nil {
		g.changed = make(chan struct{})
	}
	return n, g.changed
}

// notifyLocked wakes Drain and Settle waiters.
func (g *group) notifyLocked() {
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
}

// next builds a delivery of lane l's head, outside the lock every lane and
// publisher shares.
func (g *group) next(l int) *message.Message {
	g.mu.Lock()
	e := *g.lanes[l].q.front()
	g.mu.Unlock()
	return e.message()
}

// handed records that lane l's head reached a subscriber.
func (g *group) handed(l int) {
	g.mu.Lock()
	g.lanes[l].q.front().attempts++
	g.inFlight++
	g.notifyLocked()
	g.mu.Unlock()
	g.stats.delivered.Add(1)
}

// done removes lane l's head (acked or dead-lettered) and moves the lane on.
func (g *group) done(l int) {
	g.mu.Lock()
	ln := &g.lanes[l]
	ln.q.pop()
	g.held--
	g.inFlight--
	next := ln.q.len() > 0
	ln.busy = next
	g.notifyLocked()
	g.mu.Unlock()
	g.release()
	g.stats.queued.Add(-1)
	if next {
		g.ready <- l
	}
}

// putBack makes lane l's head deliverable again after wait (0: at once);
// handed says whether it had reached a subscriber.
func (g *group) putBack(l int, wait time.Duration, handed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if handed {
		g.inFlight--
	}
	if wait <= 0 {
		g.ready <- l
		return
	}
	ln := &g.lanes[l]
	if ln.timer == nil {
		ln.timer = time.AfterFunc(wait, func() { g.ready <- l })
	} else {
		ln.timer.Reset(wait)
	}
}

func (g *group) attempts(l int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lanes[l].q.front().attempts
}

func (g *group) discard() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.held
	for i := range g.lanes {
		if t := g.lanes[i].timer; t != nil {
			t.Stop()
		}
		g.lanes[i].q = ring{}
	}
	g.held, g.inFlight = 0, 0
	return n
}
