package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/coalesce"
	"github.com/switchyard-go/switchyard/internal/backoff"
	"github.com/switchyard-go/switchyard/internal/queue"
)

// setupCoalescing builds the coalesce stage from coalescing.*, when enabled:
// each listed event type is coalesced per topic and event key, and each
// window's trailing event is republished into the ingress. An event
// without a key passes.
func (b *Bus) setupCoalescing() error {
	co := b.cfg.Coalescing
	if !co.Enabled || len(co.EventTypes) == 0 {
		return nil
	}
	if co.Window > coalesce.MaxWindow {
		return newConfigError("coalescing.window", fmt.Sprintf("must be at most %s, got %s", coalesce.MaxWindow, co.Window))
	}
	windows := make(map[string]time.Duration, len(co.EventTypes))
	for _, typ := range co.EventTypes {
		windows[typ] = co.Window
	}
	ctx, cancel := context.WithCancel(context.Background())
	mw, err := coalesce.NewMiddleware(coalesce.MiddlewareConfig{Windows: windows, MaxKeys: co.MaxKeys},
		func(m *message.Message) error { return b.republish(ctx, m) },
		coalesce.WithKey(coalesceKey),
		// A PublishSync waiting on an event coalesced away returns nil: a
		// later event of its key carries its state.
		coalesce.WithSuperseded(func(m *message.Message) { settle(m, nil) }),
		coalesce.WithRegisterer(b.reg))
	if err != nil {
		cancel()
		return fmt.Errorf("bus: coalescing: %w", err)
	}
	b.coalescer, b.stopCoalescing = mw, cancel
	return nil
}

// coalesceKey is the destination topic and the event key.
func coalesceKey(m *message.Message) string {
	key := m.Metadata.Get(MetaEventKey)
	d := deliveryFrom(m.Context())
	if key == "" || d == nil {
		return ""
	}
	return d.topic + "\x00" + key
}

// coalesceStage is the coalesce stage. It marks an event it keeps as a
// window's trailing event as held, so that the entry stage does not take
// it for one a stage dropped.
func (b *Bus) coalesceStage(h message.HandlerFunc) message.HandlerFunc {
	setHeld := func(m *message.Message, held bool) {
		if d := deliveryFrom(m.Context()); d != nil {
			d.held = held
		}
	}
	inner := b.coalescer.Middleware(func(m *message.Message) ([]*message.Message, error) {
		setHeld(m, false)
		return h(m)
	})
	return func(m *message.Message) ([]*message.Message, error) {
		setHeld(m, true)
		return inner(m)
	}
}

// republish puts a window's trailing event back into the ingress, with its
// delivery: it takes the rest of the pipeline from there, in order with its
// key, retried and dead-lettered like any event. With on_full: reject it
// waits for room all the same: the event was accepted long ago.
func (b *Bus) republish(ctx context.Context, m *message.Message) error {
	first := max(b.cfg.Bus.RetryBackoff, time.Millisecond)
	for waits := 0; ; waits++ {
		err := b.ingress.PublishContext(ctx, ingressTopic, m)
		if err == nil {
			return nil
		}
		if errors.Is(err, queue.ErrQueueFull) && ctx.Err() == nil {
			t := time.NewTimer(backoff.Exp(first, max(b.cfg.Bus.MaxRetryBackoff, first), waits))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			continue
		}
		err = fmt.Errorf("bus: republish a coalesced event: %w", b.admissionError(err))
		settle(m, err)
		b.logger.Error("Coalesced event lost", err, watermill.LogFields{
			"message_uuid": m.UUID, "event_type": m.Metadata.Get(MetaEventType),
		})
		return err
	}
}

// closeCoalescing flushes the coalesce stage at Close: every pending
// trailing event goes back into the ingress, for the drain that follows.
// It first lets every accepted event through the stage: a pending event
// flushed while a later one of its key is still queued would be published
// after it.
func (b *Bus) closeCoalescing(ctx context.Context, started bool) error {
	if b.coalescer == nil {
		return nil
	}
	defer b.stopCoalescing()
	defer context.AfterFunc(ctx, b.stopCoalescing)()
	if started {
		_ = b.ingress.Settle(ctx) // the drain that follows reports a timeout
	}
	return b.coalescer.Close()
}
