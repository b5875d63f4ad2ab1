package redisstream

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/internal/backoff"
)

// work delivers the entries of the lanes it is handed, one lane at a time
// until the lane is empty or waits for a redelivery.
func (sub *subscription) work() {
	for {
		var l int
		select {
		case l = <-sub.ready:
		case <-sub.ctx.Done():
			return
		}
		for {
			more, ok := sub.deliver(l)
			if !ok {
				return
			}
			if !more {
				break
			}
		}
	}
}

// deliver hands lane l's head to the handler and waits for its ack or
// nack. more is whether the lane has a next entry for this worker to
// deliver at once; ok is false when the subscription has ended.
func (sub *subscription) deliver(l int) (more, ok bool) {
	sub.mu.Lock()
	e := sub.lanes[l].q[0]
	sub.mu.Unlock()
	m, dc, handed := e.next, e.nextCtx, e.handed
	e.next, e.nextCtx, e.handed = nil, nil, false
	if m == nil {
		m, dc = sub.delivery(e)
	}
	if !handed {
		select {
		case sub.out <- m:
		case <-sub.ctx.Done():
			return false, false
		}
	}
	e.attempts++
	select {
	case <-m.Acked():
		dc.End(context.Canceled)
		sub.ack(e.id)
		return sub.next(l), true
	case <-m.Nacked():
		dc.End(context.Canceled)
	case <-sub.ctx.Done():
		dc.End(sub.ctx.Err())
		select {
		case <-m.Acked():
			sub.ack(e.id)
		default: // stays pending in Redis: read again or claimed
		}
		return false, false
	}
	cfg := &sub.s.cfg
	if cfg.MaxRetries >= 0 && e.attempts > cfg.MaxRetries {
		sub.deadLetter(e.id, e.values, "nacked "+strconv.Itoa(e.attempts)+" times", "nacked")
		return sub.next(l), true
	}
	d := backoff.Exp(cfg.RetryBackoff, cfg.MaxRetryBackoff, min(e.attempts-1, 20))
	sub.mu.Lock()
	ln := &sub.lanes[l]
	if ln.timer == nil {
		ln.timer = time.AfterFunc(d, func() { sub.ready <- l })
	} else {
		ln.timer.Reset(d)
	}
	sub.mu.Unlock()
	return false, true
}

// next drops lane l's head and reports whether the lane has more; the
// lane stays busy then, for the caller to deliver.
func (sub *subscription) next(l int) bool {
	sub.mu.Lock()
	ln := &sub.lanes[l]
	ln.q[0] = nil
	ln.q = ln.q[1:]
	more := len(ln.q) > 0
	ln.busy = more
	sub.mu.Unlock()
	return more
}

// ack queues id for XACK; the entry is no longer held.
func (sub *subscription) ack(id string) {
	sub.mu.Lock()
	delete(sub.held, id)
	sub.mu.Unlock()
	select {
	case sub.room <- struct{}{}:
	default:
	}
	sub.acks <- id
}

// ackLoop sends XACKs in batches: what is queued when the previous batch is
// done goes in the next one. Until acked an entry stays pending, so a lost
// ack means a redelivery, never a loss.
func (sub *subscription) ackLoop() {
	s := sub.s
	ids := make([]string, 0, 256)
	for id := range sub.acks {
		ids = append(ids[:0], id)
		for len(ids) < cap(ids) && len(sub.acks) > 0 { // the only receiver: a value is there
			ids = append(ids, <-sub.acks)
		}
		// Three attempts, or one once the subscription has ended: Close
		// must not wait long for a server that does not answer.
		for attempt := 1; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			err := s.client.XAck(ctx, sub.stream, s.cfg.ConsumerGroup, ids...).Err()
			cancel()
			if err == nil || attempt == 3 || sub.ctx.Err() != nil {
				if err != nil {
					s.logger.Error("Cannot ack entries; they will be delivered again", err, watermill.LogFields{"stream": sub.stream, "count": len(ids)})
				}
				break
			}
			time.Sleep(readRetryWait(attempt))
		}
	}
}

// deadLetter copies an entry to the dead-letter stream with the reason, then
// acks it. If the copy fails the entry stays pending and held, and the copy
// is tried again every second while the subscription lasts (after that, the
// entry is read again when the consumer comes back, or claimed).
func (sub *subscription) deadLetter(id string, values map[string]any, reason, kind string) {
	s := sub.s
	dl := make([]any, 0, 2*len(values)+6)
	for k, v := range values {
		dl = append(dl, k, v)
	}
	dl = append(dl, DeadLetterReasonField, reason, DeadLetterIDField, id, DeadLetterStreamField, sub.stream)
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	dls := s.cfg.deadLetterStream(sub.stream)
	if err := s.client.XAdd(ctx, &redis.XAddArgs{Stream: dls, Values: dl, MaxLen: s.cfg.MaxLen, Approx: s.cfg.MaxLen > 0}).Err(); err != nil {
		// The entry stays pending; try again later. Never dropped.
		s.logger.Error("Cannot dead-letter entry; retrying", err, watermill.LogFields{"stream": sub.stream, "id": id})
		sub.retries.Go(func() {
			if sub.sleep(time.Second) {
				sub.deadLetter(id, values, reason, kind)
			}
		})
		return
	}
	s.metrics.deadLettered(sub.stream, kind)
	s.logger.Error("Entry dead-lettered", errors.New(reason), watermill.LogFields{"stream": sub.stream, "id": id, "to": dls})
	sub.ack(id)
}
