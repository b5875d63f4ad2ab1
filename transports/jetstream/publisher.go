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
	ctx, cancel := p.publishContext(messages)
	defer cancel()
	err := p.publish(ctx, topic, messages)
	if errors.Is(err, js.ErrNoStreamResponse) && p.cfg.provision() {
		// The stream went away (deleted, or a server that lost its
		// store): make it again and send the lot once more; what was
		// stored already is dropped as a duplicate.
		p.prov.forget(topic)
		err = p.publish(ctx, topic, messages)
	}
	return err
}

func (p *Publisher) publish(ctx context.Context, topic string, messages []*message.Message) error {
	if err := p.prov.ensure(ctx, topic); err != nil {
		return err
	}
	futures := make([]js.PubAckFuture, 0, len(messages))
	for _, m := range messages {
		nm, err := marshal(topic, m)
		if err != nil {
			return fmt.Errorf("jetstream: publish %s to %q: %w", m.UUID, topic, err)
		}
		wait := time.Until(deadline(ctx))
		if wait <= 0 {
			return fmt.Errorf("jetstream: publish to %q: %w", topic, context.DeadlineExceeded)
		}
		f, err := p.js.PublishMsgAsync(nm, js.WithStallWait(wait))
		if err != nil {
			return fmt.Errorf("jetstream: publish %s to %q: %w", m.UUID, topic, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("jetstream: publish %s to %q: %w", messages[i].UUID, topic, err)
		case <-ctx.Done():
			return fmt.Errorf("jetstream: publish %s to %q: no acknowledgement: %w", messages[i].UUID, topic, context.Cause(ctx))
		}
	}
	return nil
}

// publishContext is the context of the message with the earliest deadline
// (the first message's if none has one), bounded by PublishTimeout.
func (p *Publisher) publishContext(messages []*message.Message) (context.Context, context.CancelFunc) {
	base := messages[0].Context()
	d, ok := base.Deadline()
	for _, m := range messages[1:] {
		if md, has := m.Context().Deadline(); has && (!ok || md.Before(d)) {
			base, d, ok = m.Context(), md, true
		}
	}
	return context.WithTimeout(base, p.cfg.PublishTimeout)
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline() // always set: publishContext bounds it
	return d
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
