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
// the outcome. Being a context.Context itself, it costs one allocation per
// message.
//
// An async Publish detaches the message from its caller's cancellation (an
// HTTP request's context ends long before the event is delivered) but keeps
// its values, for tracing. PublishSync keeps the caller's deadline: the
// caller is waiting.
type delivery struct {
	parent context.Context // values
	life   context.Context // deadline and cancellation: none for Publish
	topic  string
	// The fields below but mu's are used by one pipeline pass at a time.
	accepted     time.Duration // monotime.Now of Publish, for the ingress wait
	waitObserved bool          // on the first pass
	// held: the coalesce stage kept the event as its window's trailing
	// event on this pass; it settles later.
	held bool
	msgs [1]*message.Message // dispatch's argument to Publish

	mu      sync.Mutex
	lastErr error
	result  chan error // PublishSync only; buffered, written once
	settled bool
}

func newDelivery(parent context.Context, topic string, sync bool) *delivery {
	d := &delivery{parent: parent, life: context.Background(), topic: topic}
	if sync {
		d.life, d.result = parent, make(chan error, 1)
	}
	return d
}

func deliveryFrom(ctx context.Context) *delivery {
	d, _ := ctx.Value(deliveryKey{}).(*delivery)
	return d
}

func (d *delivery) Deadline() (time.Time, bool) { return d.life.Deadline() }
func (d *delivery) Done() <-chan struct{}       { return d.life.Done() }
func (d *delivery) Err() error                  { return d.life.Err() }

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
	if d.result == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.settled {
		d.settled = true
		d.result <- err
	}
}

// settle settles m's delivery, if it has one.
func settle(m *message.Message, err error) {
	if d := deliveryFrom(m.Context()); d != nil {
		d.settle(err)
	}
}
