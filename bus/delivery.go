package bus

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

type deliveryKey struct{}

// delivery travels with a message through the ingress as its context: it
// carries the destination topic and, for PublishSync, the caller waiting for
// the outcome. It is a context.Context itself so that carrying it costs one
// allocation per message.
//
// An async Publish detaches the message from its caller's cancellation (an
// HTTP request's context ends when the handler returns, long before the event
// is delivered) but keeps its values, for tracing. PublishSync keeps the
// caller's deadline: the caller is waiting.
type delivery struct {
	parent context.Context
	topic  string
	sync   bool
	// accepted is the monotime.Now of Publish, for the ingress wait.
	accepted time.Duration
	// waitObserved: the ingress wait was observed, on the first pass. Read
	// and written by one pipeline pass at a time.
	waitObserved bool
	// held: the coalesce stage kept the event as its window's trailing
	// event on this pass; it settles later. Read and written by one
	// pipeline pass at a time.
	held bool
	// msgs is dispatch's argument to Publish. Used by one pipeline pass at
	// a time.
	msgs [1]*message.Message

	mu      sync.Mutex
	lastErr error
	result  chan error // PublishSync only; buffered, written once
	settled bool
}

func newDelivery(parent context.Context, topic string, sync bool) *delivery {
	d := &delivery{parent: parent, topic: topic, sync: sync}
	if sync {
		d.result = make(chan error, 1)
	}
	return d
}

func deliveryFrom(ctx context.Context) *delivery {
	d, _ := ctx.Value(deliveryKey{}).(*delivery)
	return d
}

func (d *delivery) Deadline() (time.Time, bool) {
	if d.sync {
		return d.parent.Deadline()
	}
	return time.Time{}, false
}

func (d *delivery) Done() <-chan struct{} {
	if d.sync {
		return d.parent.Done()
	}
	return nil
}

func (d *delivery) Err() error {
	if d.sync {
		return d.parent.Err()
	}
	return nil
}

func (d *delivery) Value(key any) any {
	if key == (deliveryKey{}) {
		return d
	}
	return d.parent.Value(key)
}

func (d *delivery) failed(err error) {
	d.mu.Lock()
	d.lastErr = err
	d.mu.Unlock()
}

func (d *delivery) err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr
}

// settle reports the final outcome to a PublishSync caller, once.
func (d *delivery) settle(err error) {
	if !d.sync {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settled {
		return
	}
	d.settled = true
	d.result <- err
}
