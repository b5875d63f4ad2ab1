package middleware

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/switchyard-go/switchyard/internal/monotime"
)

// publishWithin calls h with m's context bounded by dl's timeout.
func publishWithin(h message.HandlerFunc, m *message.Message, dl *deadlines) ([]*message.Message, error) {
	parent := m.Context()
	var ctx context.Context
	if parent.Done() == nil {
		// The message's context never ends (an async publish): share a
		// deadline instead of paying a timer per message.
		ctx = &sharedDeadline{Context: parent, deadline: dl.get()}
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(parent, dl.timeout)
		defer cancel()
	}
	m.SetContext(ctx)
	out, err := h(m)
	m.SetContext(parent)
	if err != nil && ctx.Err() == context.DeadlineExceeded && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return out, err
}

// deadlines hands out deadline contexts shared by every publish that
// starts within one slot of time, so that a publish costs no timer of its
// own. A publish that starts at t gets a deadline between t+timeout and
// t+timeout+slot, never less than timeout.
type deadlines struct {
	timeout, slot time.Duration
	cur           atomic.Pointer[deadlineSlot]
}

type deadlineSlot struct {
	ctx    context.Context
	cancel context.CancelFunc // its timer ends it; kept for vet's sake
	until  time.Duration      // publishes that start before it (monotime.Now) share ctx
}

// newDeadlines takes a positive timeout: Validate refuses others.
func newDeadlines(timeout time.Duration) *deadlines {
	return &deadlines{timeout: timeout, slot: min(max(timeout/20, time.Microsecond), 10*time.Millisecond)}
}

func (d *deadlines) get() context.Context {
	now := monotime.Now()
	cur := d.cur.Load()
	if cur != nil && now < cur.until {
		return cur.ctx
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout+d.slot)
	next := &deadlineSlot{ctx: ctx, cancel: cancel, until: now + d.slot}
	if d.cur.CompareAndSwap(cur, next) {
		return ctx
	}
	cancel() // another publish made the slot first
	return d.cur.Load().ctx
}

// sharedDeadline is a message's context, for its values, bounded by a
// shared deadline.
type sharedDeadline struct {
	context.Context
	deadline context.Context
}

func (c *sharedDeadline) Deadline() (time.Time, bool) { return c.deadline.Deadline() }
func (c *sharedDeadline) Done() <-chan struct{}       { return c.deadline.Done() }
func (c *sharedDeadline) Err() error                  { return c.deadline.Err() }

// AfterFunc lets contexts derived from a publish's context (a transport's
// context.WithTimeout) register with the shared deadline instead of each
// starting a goroutine to watch Done.
func (c *sharedDeadline) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.deadline, f)
}
