// Package delivery provides the context of a delivered message, shared by
// the transports that hand messages to handlers one delivery at a time (the
// ingress and memory's queue, redisstream's and jetstream's subscribers).
package delivery

import (
	"context"
	"sync"
)

// Context is the context of one delivery: the subscription's (the embedded
// Context) until End, then canceled, as Watermill expects of a subscriber
// that does not carry the publisher's context. The zero value with Context
// set is ready to use; a Context must not be copied after first use.
//
// It costs what context.WithCancel costs only when somebody asks for Done
// or AfterFunc: the channel is made, and tied to the subscription's
// context, then. Most handlers never ask, and a WithCancel per delivery (an
// allocation, plus an insertion into and a removal from the subscription
// context's children under its lock, which every lane contends for) was a
// sixth of a delivery's cost.
//
// context.Cause of a delivery that ended while its subscription goes on is
// nil, not context.Canceled (Cause finds the subscription's context
// underneath); Err is context.Canceled.
type Context struct {
	context.Context // the subscription's

	mu    sync.Mutex
	err   error
	done  chan struct{}
	stop  func() bool             // unties done from the subscription's context
	after map[*afterFunc]struct{} // AfterFunc's functions not yet run nor stopped
}

type afterFunc struct{ f func() }

// Done returns a channel closed when the delivery ends.
func (c *Context) Done() <-chan struct{} {
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
			c.stop = context.AfterFunc(c.Context, func() { c.End(c.Context.Err()) })
		}
	}
	return c.done
}

// AfterFunc arranges for f to run in its own goroutine once the delivery
// ends, as context.AfterFunc does. context.WithCancel and WithTimeout look
// for this method on a parent they do not know: without it, each context
// derived from a delivered message's would start a goroutine to wait for
// Done.
func (c *Context) AfterFunc(f func()) (stop func() bool) {
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
func (c *Context) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.done != nil {
		return c.err
	}
	// Nobody holds Done: the subscription's end shows at once.
	return c.Context.Err()
}

// End ends the delivery with err; only the first End counts. End of a nil
// *Context does nothing.
func (c *Context) End(err error) {
	if c == nil {
		return
	}
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
var _ interface{ AfterFunc(func()) func() bool } = (*Context)(nil)
