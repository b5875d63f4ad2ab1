package httptransport

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/internal/backoff"
)

// Close answers 503 with Retry-After to every request from then on, and to
// those still waiting for their handler; in queue mode it delivers what is
// queued for DrainTimeout at most. Then it ends every subscription. What is
// still queued is lost: counted in switchyard_http_undelivered_total and
// in the error, which wraps ErrCloseTimeout. Later calls return the same.
func (r *Receiver) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.close() })
	return r.closeErr
}

// Drain stops taking requests and subscriptions, as Close does, and
// delivers what is queued until no topic with a subscription has any left,
// or ctx ends; then the error says how many were left. Subscriptions stay
// open, so that their handlers can finish (transports.Drainer).
func (r *Receiver) Drain(ctx context.Context) error {
	r.mu.Lock()
	r.stopClosing()
	r.mu.Unlock()
	for {
		// Wait on a topic that has a subscription and a message queued.
		var changed chan struct{}
		left := 0
		for _, t := range r.snapshot() {
			t.mu.Lock()
			left += len(t.queue)
			if len(t.queue) > 0 && len(t.subs) > 0 {
				changed = t.changed
			}
			t.mu.Unlock()
		}
		if changed == nil || ctx.Err() != nil {
			if left == 0 || ctx.Err() == nil {
				return nil
			}
			return fmt.Errorf("httptransport: %d queued messages not delivered: %w", left, ctx.Err())
		}
		select {
		case <-changed:
		case <-ctx.Done():
		}
	}
}

func (r *Receiver) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.DrainTimeout)
	_ = r.Drain(ctx) // what is left is reported below
	cancel()

	r.cancel()
	for _, t := range r.snapshot() {
		t.mu.Lock()
		subs := t.subs
		t.mu.Unlock()
		for _, s := range subs {
			s.end()
		}
	}
	r.pumps.Wait()
	// After the pumps: a last dead-lettering may have made a topic.
	left := 0
	for _, t := range r.snapshot() {
		t.mu.Lock()
		n := len(t.queue)
		t.queue = nil
		t.mu.Unlock()
		if n > 0 {
			left += n
			r.undelivered.WithLabelValues(topicLabel(t.name)).Add(float64(n))
			r.logger.Error("httptransport: receiver closed with queued messages it had answered 202 for; they are lost",
				errUndelivered, watermill.LogFields{"topic": t.name, "undelivered": n, "drain_timeout": r.cfg.DrainTimeout})
		}
	}
	if left > 0 {
		return fmt.Errorf("%w (drain_timeout %s): %d queued messages, answered 202, were not delivered: "+
			"no subscription acked them in time, or none was left for their topic", ErrCloseTimeout, r.cfg.DrainTimeout, left)
	}
	return nil
}

var errUndelivered = errors.New("httptransport: queued messages not delivered")

func (r *Receiver) snapshot() []*topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Collect(maps.Values(r.topics))
}

// enqueue queues msg on t unless the Receiver is closed.
func (r *Receiver) enqueue(t *topic, msg *message.Message) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closing.Err() != nil {
		return errors.New("receiver closed")
	}
	return r.push(t, msg)
}

// push queues q on t, closed or not, and starts t's pump if need be.
func (r *Receiver) push(t *topic, msg *message.Message) error {
	t.mu.Lock()
	if len(t.queue) >= r.cfg.QueueSize {
		t.mu.Unlock()
		return errQueueFull
	}
	t.queue = append(t.queue, msg)
	t.mu.Unlock()
	r.wake(t)
	return nil
}

// wake starts t's pump unless it runs or t has nothing queued.
func (r *Receiver) wake(t *topic) {
	t.mu.Lock()
	start := len(t.queue) > 0 && !t.pumping
	t.pumping = t.pumping || start
	t.mu.Unlock()
	if start {
		r.pumps.Add(1)
		go r.pump(t)
	}
}

var errQueueFull = errors.New("queue full")

// pump delivers t's queued messages one at a time, in order, each until a
// subscription acks it or it is dead-lettered, until the queue is empty or
// the Receiver closes.
func (r *Receiver) pump(t *topic) {
	defer r.pumps.Done()
	failures := 0 // of the message at the head of the queue
	for {
		t.mu.Lock()
		if len(t.queue) == 0 || r.ctx.Err() != nil {
			t.pumping = false
			t.mu.Unlock()
			return
		}
		q := t.queue[0]
		t.mu.Unlock()

		switch r.deliverQueued(t, q.Copy()) {
		case deliveryAcked:
			t.pop()
			failures = 0
			continue
		case deliveryAbandoned:
			continue // to another subscription, at once; or the loop ends
		}
		failures++
		if failures > max(r.cfg.MaxRetries, 0) && r.deadLetter(t, q, failures) {
			t.pop()
			failures = 0
			continue
		}
		select {
		case <-time.After(backoff.Exp(r.cfg.RetryBackoff, r.cfg.MaxRetryBackoff, min(failures-1, 30))):
		case <-r.ctx.Done():
		}
	}
}

type deliveryOutcome int

const (
	deliveryAcked  deliveryOutcome = iota
	deliveryFailed                 // nacked, or its handler timed out
	// deliveryAbandoned: the subscription ended before settling it, or the
	// Receiver closed; not the message's fault.
	deliveryAbandoned
)

// deliverQueued hands msg to one subscription of t and waits until it is
// settled. A handler that timed out has its context canceled and is still
// waited for, as a redelivery would run beside it; then only an ack counts.
func (r *Receiver) deliverQueued(t *topic, msg *message.Message) deliveryOutcome {
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	msg.SetContext(ctx)
	s, err := t.offer(r.ctx, msg, true)
	if err != nil {
		return deliveryAbandoned // closed
	}
	timer := time.NewTimer(r.cfg.HandlerTimeout)
	defer timer.Stop()
	timedOut := false
	for {
		select {
		case <-msg.Acked():
			return deliveryAcked
		case <-msg.Nacked():
			return deliveryFailed
		case <-s.done:
			switch {
			case acked(msg):
				return deliveryAcked
			case timedOut:
				return deliveryFailed
			}
			return deliveryAbandoned
		case <-r.ctx.Done():
			if acked(msg) { // an ack that raced Close still counts
				return deliveryAcked
			}
			return deliveryAbandoned
		case <-timer.C:
			timedOut = true
			cancel()
			r.logger.Info("httptransport: handler timed out; waiting for it to ack or nack before delivering again",
				watermill.LogFields{"topic": t.name, "message_uuid": msg.UUID, "handler_timeout": r.cfg.HandlerTimeout})
		}
	}
}

// deadLetter takes q, which failed failures deliveries, out of t: to
// DeadLetter when set, otherwise into the dead-letter topic. It reports
// whether q left; if not, q stays at the head of t, logged as an error.
func (r *Receiver) deadLetter(t *topic, q *message.Message, failures int) bool {
	fields := watermill.LogFields{"topic": t.name, "message_uuid": q.UUID, "failed_deliveries": failures}
	stays, moved := "DeadLetter failed", "handed to DeadLetter"
	var err error
	switch {
	case r.cfg.DeadLetter != nil:
		msg := q.Copy()
		msg.SetContext(r.ctx)
		err = r.cfg.DeadLetter(t.name, msg)
	case t.name == r.cfg.DeadLetterTopic:
		if failures == max(r.cfg.MaxRetries, 0)+1 {
			r.logger.Error("httptransport: a message of the dead-letter topic failed every delivery; "+
				"it stays at its head, delivered again every max_retry_backoff", errDeliveriesFailed, fields)
		}
		return false
	default:
		dead := q.Copy()
		dead.Metadata[DeadLetterReasonKey] = "nacked or timed out " + strconv.Itoa(failures) + " times"
		dead.Metadata[DeadLetterTopicKey] = t.name
		dead.Metadata[DeadLetterAttemptsKey] = strconv.Itoa(failures)
		r.mu.Lock()
		dl := r.topicLocked(r.cfg.DeadLetterTopic)
		r.mu.Unlock()
		fields["dead_letter_topic"] = dl.name
		stays, moved = "the dead-letter topic's queue is full", "moved to the dead-letter topic"
		err = r.push(dl, dead)
	}
	if err != nil {
		r.logger.Error("httptransport: "+stays+"; the message stays at the head of its topic", err, fields)
		return false
	}
	r.deadLettered.WithLabelValues(topicLabel(t.name)).Inc()
	r.logger.Error("httptransport: queued message failed every delivery; "+moved, errDeliveriesFailed, fields)
	return true
}

var errDeliveriesFailed = errors.New("httptransport: every delivery failed")
