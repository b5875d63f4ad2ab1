package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/internal/timerpool"
)

// Publisher publishes each message to the subject named after its topic,
// in the stream that holds it, created on first use (Provision).
//
// Publishes are asynchronous on the wire: the messages of one call, and of
// concurrent calls, are all sent before any acknowledgement is awaited, up
// to MaxPending unacknowledged over the connection (a publish waits for room
// within its deadline). Each Publish returns once the stream has stored
// every one of its messages, or with the first error; the earliest deadline
// of its messages' contexts and PublishTimeout bound the wait. Messages of
// one call are stored in order. A publish that timed out may still be
// stored: a retry of the same message is dropped by the stream within its
// duplicate window (the UUID is the Nats-Msg-Id).
type Publisher struct {
	cfg    Config
	nc     *nats.Conn
	owns   bool
	js     js.JetStream
	logger watermill.LoggerAdapter
	prov   *provisioner
	stall  []js.PublishOpt // WithStallWait(stallStep)

	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

// NewPublisher returns a publisher on nc, which it does not close. A nil nc
// is connected from cfg and closed by Close.
func NewPublisher(cfg Config, nc *nats.Conn, logger watermill.LoggerAdapter) (*Publisher, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("jetstream: config: %w", err)
	}
	owns := nc == nil
	if owns {
		c, err := Connect(cfg, "", logger)
		if err != nil {
			return nil, err
		}
		nc = c
	}
	cfg.setDefaults()
	j, err := js.New(nc,
		js.WithPublishAsyncMaxPending(cfg.MaxPending),
		// A future nobody waits for any more (its publish timed out)
		// still ends, and frees its room.
		js.WithPublishAsyncTimeout(cfg.PublishTimeout),
	)
	if err != nil {
		if owns {
			nc.Close()
		}
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	p := &Publisher{cfg: cfg, nc: nc, owns: owns, js: j, logger: logger}
	p.prov = newProvisioner(&p.cfg, j)
	p.stall = []js.PublishOpt{js.WithStallWait(stallStep)}
	return p, nil
}

// Publish stores messages in the stream of topic, in order, and returns once
// all are stored or with the first error.
func (p *Publisher) Publish(topic string, messages ...*message.Message) error {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrClosed
	}
	p.wg.Add(1)
	p.mu.RUnlock()
	defer p.wg.Done()
	if len(messages) == 0 {
		return nil
	}
	c := p.newCall(messages)
	defer c.end()
	err := p.publish(&c, topic, messages)
	if errors.Is(err, js.ErrNoStreamResponse) && p.cfg.provision() {
		// The stream went away (deleted, or a server that lost its
		// store): make it again and send the lot once more; what was
		// stored already is dropped as a duplicate.
		p.prov.forget(topic)
		err = p.publish(&c, topic, messages)
	}
	return err
}

func (p *Publisher) publish(c *call, topic string, messages []*message.Message) error {
	if err := p.ensure(c, topic); err != nil {
		return err
	}
	// One message per call is the common case (the bus's lanes): its
	// future stays on the stack.
	var one [1]js.PubAckFuture
	futures := one[:0]
	if len(messages) > 1 {
		futures = make([]js.PubAckFuture, 0, len(messages))
	}
	for _, m := range messages {
		nm, err := marshal(topic, m)
		if err != nil {
			return fmt.Errorf("jetstream: publish %s to %q: %w", m.UUID, topic, err)
		}
		f, err := p.send(c, nm)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("jetstream: publish to %q: %w", topic, err)
			}
			return fmt.Errorf("jetstream: publish %s to %q: %w", m.UUID, topic, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("jetstream: publish %s to %q: %w", messages[i].UUID, topic, err)
		case <-c.ctx.Done():
			return fmt.Errorf("jetstream: publish %s to %q: no acknowledgement: %w", messages[i].UUID, topic, context.Cause(c.ctx))
		case <-c.expired():
			return fmt.Errorf("jetstream: publish %s to %q: no acknowledgement: %w", messages[i].UUID, topic, context.DeadlineExceeded)
		}
	}
	return nil
}

// stallStep is how long one attempt to send waits for room under
// MaxPending, at most: while the call's deadline is further away, every
// attempt shares one option instead of making its own.
const stallStep = 100 * time.Millisecond

// send sends nm once there is room for it under MaxPending, waiting no
// longer than the call's deadline.
func (p *Publisher) send(c *call, nm *nats.Msg) (js.PubAckFuture, error) {
	var stalled error
	for {
		wait := time.Until(c.deadline)
		if wait <= 0 {
			if stalled != nil {
				return nil, stalled
			}
			return nil, context.DeadlineExceeded
		}
		opts := p.stall
		if wait < stallStep {
			opts = []js.PublishOpt{js.WithStallWait(wait)}
		}
		f, err := p.js.PublishMsgAsync(nm, opts...)
		if !errors.Is(err, js.ErrTooManyStalledMsgs) {
			return f, err
		}
		stalled = err
	}
}

// ensure has the provisioner make topic's stream, unless it is known to
// exist: a publish then makes no context for it.
func (p *Publisher) ensure(c *call, topic string) error {
	if !p.cfg.provision() || p.prov.known(topic) {
		return nil
	}
	ctx, cancel := context.WithDeadline(c.ctx, c.deadline)
	defer cancel()
	return p.prov.ensure(ctx, topic)
}

// call is the wait of one Publish: until the earliest deadline of its
// messages' contexts, bounded by PublishTimeout, or until the context
// with that deadline (the first message's if none has one) is done. It
// makes no context of its own: unless ctx's Done closes at the deadline,
// a timer from a pool, started once the call waits, ends the wait.
type call struct {
	ctx      context.Context
	deadline time.Time
	timed    bool // the timer ends the wait, not ctx's Done
	timer    *time.Timer
}

func (p *Publisher) newCall(messages []*message.Message) call {
	base := messages[0].Context()
	d, ok := base.Deadline()
	for _, m := range messages[1:] {
		if md, has := m.Context().Deadline(); has && (!ok || md.Before(d)) {
			base, d, ok = m.Context(), md, true
		}
	}
	if limit := time.Now().Add(p.cfg.PublishTimeout); !ok || limit.Before(d) {
		return call{ctx: base, deadline: limit, timed: true}
	}
	// A context with a deadline and no Done (one of the caller's own
	// making) is bounded by the timer too.
	return call{ctx: base, deadline: d, timed: base.Done() == nil}
}

// expired is a channel that receives at the call's deadline, or nil when
// its context's Done closes then (and ends the wait with its cause).
func (c *call) expired() <-chan time.Time {
	if !c.timed {
		return nil
	}
	if c.timer == nil {
		c.timer = timerpool.Get(time.Until(c.deadline))
	}
	return c.timer.C
}

// end returns the call's timer, if it made one, to the pool.
func (c *call) end() {
	if c.timer != nil {
		timerpool.Put(c.timer)
	}
}

// Close waits for the publishes under way, and closes the connection if the
// publisher made it. Idempotent.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
	if p.owns {
		p.nc.Close()
	}
	return nil
}
