package redisstream

import (
	"context"
	"sync"
)

// deliveryCtx is the context of a delivered message: the subscription's
// context until the delivery ends (the handler acks or nacks, or the
// subscription ends), then canceled, as Watermill expects of a subscriber
// that does not carry the publisher's context.
//
// It costs what context.WithCancel costs only when somebody asks for Done:
// the channel is made, and tied to the subscription's context, then. Most
// handlers never ask, and a WithCancel per delivery (an allocation, and an
// insertion into and a removal from the subscription context's children
// under its lock, which every lane worker contends for) was a sixth of the
// delivery's cost.
//
// One difference remains: context.Cause of a delivery that ended while its
// subscription goes on is nil, not context.Canceled (Cause finds the
// subscription's context underneath). Err is context.Canceled then.
type deliveryCtx struct {
	context.Context // the subscription's

	mu    sync.Mutex
	err   error
	done  chan struct{}
	stop  func() bool             // unties done from the subscription's context
	after map[*afterFunc]struct{} // AfterFunc's functions not yet run nor stopped
}

// afterFunc is one AfterFunc call's function.
type afterFunc struct{ f func() }

// Done returns a channel closed when the delivery ends.
func (c *deliveryCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err == nil {
			c.err = c.Context.Err()
		}
		if c.err != nil {
			close(c.done)
		} else {
			c.stop = context.AfterFunc(c.Context, func() { c.end(c.Context.Err()) })
		}
	}
	return c.done
}

// AfterFunc arranges for f to run in its own goroutine once the delivery
// ends (at once if it has), as context.AfterFunc does; stop reports whether
// it kept f from running. context.WithCancel and WithTimeout look for this
// method on a parent they do not know: without it, each context derived
// from a delivered message's would start a goroutine that waits for Done.
func (c *deliveryCtx) AfterFunc(f func()) (stop func() bool) {
	c.Done() // ties the delivery to the subscription's context
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	if c.after == nil {
		c.after = make(map[*afterFunc]struct{})
	}
	c.after[a] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, pending := c.after[a]
		delete(c.after, a)
		return pending
	}
}

// Err is nil until Done is closed, then why: context.Canceled when the
// delivery ended, the subscription context's error when that ended first.
func (c *deliveryCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.done != nil {
		return c.err
	}
	// Nobody holds Done: the subscription's end shows at once.
	return c.Context.Err()
}

// end ends the delivery with err; only the first end counts.
func (c *deliveryCtx) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	if c.done == nil {
		if perr := c.Context.Err(); perr != nil {
			err = perr // what Err has been saying
		}
	}
	c.err = err
	if c.done != nil {
		close(c.done)
		c.stop()
	}
	for a := range c.after {
		go a.f()
	}
	c.after = nil
}

// context.WithCancel and WithTimeout find this method by its shape.
var _ interface{ AfterFunc(func()) func() bool } = (*deliveryCtx)(nil)
