package redisstream

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/internal/backoff"
	"github.com/switchyard-go/switchyard/internal/metakey"
)

// every calls f every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		f()
	}
}

func (sub *subscription) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-sub.ctx.Done():
		return false
	}
}

func (sub *subscription) readLoop() {
	s := sub.s
	cfg := &s.cfg
	start := "0" // our own pending entries first
	failures := 0
	// retry logs the first failure and every 50th, then waits.
	retry := func(msg string, err error) bool {
		failures++
		if failures == 1 || failures%50 == 0 {
			s.logger.Error(msg, err, watermill.LogFields{"stream": sub.stream, "group": cfg.ConsumerGroup, "failures": failures})
		}
		return sub.sleep(readRetryWait(failures))
	}
	for sub.ctx.Err() == nil {
		if !sub.waitRoom() {
			return
		}
		args := &redis.XReadGroupArgs{
			Group: cfg.ConsumerGroup, Consumer: cfg.Consumer,
			Streams: []string{sub.stream, start}, Count: cfg.ReadCount, Block: cfg.Block,
		}
		if start != ">" {
			args.Block = -1 // history reads never block
		}
		gen := sub.groupGen()
		rctx, cancel := context.WithTimeout(sub.ctx, max(args.Block, 0)+callTimeout)
		res, err := s.client.XReadGroup(rctx, args).Result()
		cancel()
		switch {
		case errors.Is(err, redis.Nil):
			failures = 0
			continue
		case err != nil && sub.ctx.Err() != nil:
			return
		case redis.HasErrorPrefix(err, "NOGROUP"):
			if cerr := sub.groupMissing(gen, err); cerr != nil {
				if !retry("Consumer group missing and cannot be created; retrying", cerr) {
					return
				}
				continue
			}
			start = "0"
			continue
		case err != nil:
			if !retry("Cannot read stream; retrying", err) {
				return
			}
			// A read whose reply was lost still moved its entries to our
			// pending list: read that first, to keep their order.
			start = "0"
			continue
		}
		failures = 0
		var got []redis.XMessage
		if len(res) > 0 {
			got = res[0].Messages
		}
		if start != ">" {
			if len(got) == 0 {
				start = ">"
				continue
			}
			start = got[len(got)-1].ID
		}
		sub.take(got)
	}
}

func readRetryWait(failures int) time.Duration {
	return backoff.Exp(50*time.Millisecond, time.Second, failures-1)
}

// waitRoom blocks while the subscription holds its limit of entries. The
// reader and the claim loop both wait here, so an entry let go wakes every
// waiter: each takes the channel to wait on under the lock it checks with.
func (sub *subscription) waitRoom() bool {
	for {
		sub.mu.Lock()
		if len(sub.held) < sub.limit {
			sub.mu.Unlock()
			return true
		}
		if sub.roomFreed == nil {
			sub.roomFreed = make(chan struct{})
		}
		freed := sub.roomFreed
		sub.mu.Unlock()
		if sub.roomWaitHook != nil {
			sub.roomWaitHook()
		}
		select {
		case <-freed:
		case <-sub.ctx.Done():
			return false
		}
	}
}

// take decodes entries and queues them in their lanes. Entries already held
// (read again from the pending list, or claimed back) are skipped.
func (sub *subscription) take(entries []redis.XMessage) {
	s := sub.s
	yielded := false
	for _, x := range entries {
		sub.mu.Lock()
		_, dup := sub.held[x.ID]
		if !dup && x.Values != nil {
			// Held until acked; a malformed one too, so that claiming it
			// back does not start a second dead-letter copy.
			sub.held[x.ID] = struct{}{}
			if sub.lastRead == "" || compareIDs(x.ID, sub.lastRead) > 0 {
				sub.lastRead = x.ID
			}
		}
		sub.mu.Unlock()
		if dup {
			continue
		}
		if x.Values == nil { // a pending entry whose data was trimmed or deleted
			s.metrics.lost.WithLabelValues(sub.stream).Inc()
			sub.ack(x.ID)
			continue
		}
		e := &entry{id: x.ID, values: x.Values}
		if err := decodeEntry(e, x.Values); err != nil {
			sub.deadLetter(x.ID, x.Values, err.Error(), "malformed")
			continue
		}
		if sub.sched.Push(e.get(metakey.EventKey), e) && !yielded {
			// The handler was handed the message: let it run before this
			// goroutine's next read (a syscall). Once per read, lest a
			// backlog alternate reader and handler entry by entry.
			yielded = true
			runtime.Gosched()
		}
	}
}

// claimLoop claims entries other consumers left pending too long.
func (sub *subscription) claimLoop() {
	s := sub.s
	cfg := &s.cfg
	every(sub.ctx, cfg.ClaimInterval, func() {
		start := "0-0"
		for range 10 {
			if !sub.waitRoom() {
				return
			}
			ctx, cancel := context.WithTimeout(sub.ctx, callTimeout)
			msgs, deleted, next, err := xAutoClaim(ctx, s.client, &redis.XAutoClaimArgs{
				Stream: sub.stream, Group: cfg.ConsumerGroup, Consumer: cfg.Consumer,
				MinIdle: cfg.ClaimMinIdle, Start: start, Count: cfg.ReadCount,
			})
			cancel()
			if err != nil {
				break
			}
			if deleted > 0 {
				s.metrics.lost.WithLabelValues(sub.stream).Add(float64(deleted))
			}
			if len(msgs) > 0 {
				s.metrics.claimed.WithLabelValues(sub.stream).Add(float64(len(msgs)))
				sub.take(msgs)
			}
			if next == "0-0" || next == "" {
				break
			}
			start = next
		}
	})
}

// xAutoClaim is XAUTOCLAIM that also returns how many of the entries it
// found had been trimmed or deleted: Redis 7 takes those off the pending
// list and lists their IDs apart, which go-redis's XAutoClaim drops.
// (Redis 6.2 returns them among the entries, without data.)
func xAutoClaim(ctx context.Context, c redis.UniversalClient, a *redis.XAutoClaimArgs) (msgs []redis.XMessage, deleted int, next string, err error) {
	res, err := c.Do(ctx, "xautoclaim", a.Stream, a.Group, a.Consumer, a.MinIdle.Milliseconds(), a.Start, "count", a.Count).Slice()
	if err != nil {
		return nil, 0, "", err
	}
	if len(res) < 2 {
		return nil, 0, "", fmt.Errorf("redisstream: XAUTOCLAIM replied %d elements", len(res))
	}
	next, _ = res[0].(string)
	entries, _ := res[1].([]any)
	for _, e := range entries {
		pair, _ := e.([]any) // [id, [field, value, …]]; the list is nil on Redis 6.2 for a deleted entry
		if len(pair) != 2 {
			continue
		}
		x := redis.XMessage{}
		x.ID, _ = pair[0].(string)
		if fv, ok := pair[1].([]any); ok {
			x.Values = make(map[string]any, len(fv)/2)
			for i := 0; i+1 < len(fv); i += 2 {
				k, _ := fv[i].(string)
				x.Values[k] = fv[i+1]
			}
		}
		msgs = append(msgs, x)
	}
	if len(res) > 2 {
		ids, _ := res[2].([]any)
		deleted = len(ids)
	}
	return msgs, deleted, next, nil
}
