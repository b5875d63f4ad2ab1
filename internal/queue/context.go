package queue

import (
	"context"
	"sync"
)

// deliveryContext is the context of a delivered message when contexts are
// not preserved: the subscription's, canceled also once the message is acked
// or nacked. The cancelable context behind Done and AfterFunc is made only
// if someone asks for one, so a handler that never looks costs one small
// allocation. AfterFunc lets context.WithTimeout and the like, derived from
// a delivered message's context, register with it instead of starting a
// goroutine each to watch Done.
type deliveryContext struct {
	context.Context // the subscription's
	mu              sync.Mutex
	canceled        bool
	inner           context.Context // made on demand, a child of the subscription's
	stop            context.CancelFunc
}

// watched returns the cancelable context behind Done and AfterFunc.
func (c *deliveryContext) watched() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner == nil {
		c.inner, c.stop = context.WithCancel(c.Context)
		if c.canceled {
			c.stop()
		}
	}
	return c.inner
}

func (c *deliveryContext) Done() <-chan struct{} { return c.watched().Done() }

// AfterFunc arranges for f to run in its own goroutine once the delivery
// ends, as context.AfterFunc does.
func (c *deliveryContext) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.watched(), f)
}

func (c *deliveryContext) Err() error {
	c.mu.Lock()
	canceled := c.canceled
	c.mu.Unlock()
	if canceled {
		return context.Canceled
	}
	return c.Context.Err()
}

func (c *deliveryContext) cancel() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.canceled {
		return
	}
	c.canceled = true
	if c.stop != nil {
		c.stop()
	}
}
