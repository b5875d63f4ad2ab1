package redisstream

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/internal/delivery"
)

// Message, Acked and Nacked make the subscription its scheduler's
// lane.Source. The first delivery's context is allocated with the entry.
func (sub *subscription) Message(e *entry, attempts int) (*message.Message, *delivery.Context) {
	if attempts == 0 {
		return e.message(), &e.first
	}
	return e.message(), &delivery.Context{}
}

func (sub *subscription) Acked(e *entry) { sub.ack(e.id) }

// Nacked dead-letters e once it was nacked more than MaxRetries times.
func (sub *subscription) Nacked(e *entry, attempts int) bool {
	if limit := sub.s.cfg.MaxRetries; limit < 0 || attempts <= limit {
		return false
	}
	sub.deadLetter(e.id, e.values, "nacked "+strconv.Itoa(attempts)+" times", "nacked")
	return true
}

// ack queues id for XACK; the entry is no longer held.
func (sub *subscription) ack(id string) {
	sub.mu.Lock()
	delete(sub.held, id)
	if sub.roomFreed != nil {
		close(sub.roomFreed)
		sub.roomFreed = nil
	}
	sub.mu.Unlock()
	sub.acks <- id
}

// ackLoop sends XACKs in batches: what is queued when the previous batch is
// done goes in the next one. A lost ack means a redelivery, never a loss.
func (sub *subscription) ackLoop() {
	s := sub.s
	ids := make([]string, 0, 256)
	for id := range sub.acks {
		ids = append(ids[:0], id)
		for len(ids) < cap(ids) && len(sub.acks) > 0 { // the only receiver: a value is there
			ids = append(ids, <-sub.acks)
		}
		// Three attempts, or one once the subscription has ended.
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
// acks it. If the copy fails, the entry stays pending and the copy is tried
// again every second while the subscription lasts.
func (sub *subscription) deadLetter(id string, values map[string]any, reason, kind string) {
	s := sub.s
	dl := make([]any, 0, 2*len(values)+6)
	for k, v := range values {
		dl = append(dl, k, v)
	}
	dl = append(dl, DeadLetterReasonField, reason, DeadLetterIDField, id, DeadLetterStreamField, sub.stream)
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	dls := strings.ReplaceAll(s.cfg.DeadLetterStream, "{stream}", sub.stream)
	if err := s.client.XAdd(ctx, &redis.XAddArgs{Stream: dls, Values: dl, MaxLen: s.cfg.MaxLen, Approx: s.cfg.MaxLen > 0}).Err(); err != nil {
		s.logger.Error("Cannot dead-letter entry; retrying", err, watermill.LogFields{"stream": sub.stream, "id": id})
		sub.retries.Go(func() {
			if sub.sleep(time.Second) {
				sub.deadLetter(id, values, reason, kind)
			}
		})
		return
	}
	s.metrics.lanes.DeadLettered.WithLabelValues(sub.stream, kind).Inc()
	s.logger.Error("Entry dead-lettered", errors.New(reason), watermill.LogFields{"stream": sub.stream, "id": id, "to": dls})
	sub.ack(id)
}
