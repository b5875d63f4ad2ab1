package queue

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/internal/backoff"
	"github.com/switchyard-go/switchyard/internal/delivery"
)

type subscription struct {
	group  *group
	ctx    context.Context
	cancel context.CancelFunc
	out    chan *message.Message
	wg     sync.WaitGroup
}

func (s *subscription) work() {
	defer s.wg.Done()
	g := s.group
	for {
		var l int
		select {
		case l = <-g.ready:
		case <-s.ctx.Done():
			return
		}
		if !s.deliver(l) {
			return
		}
	}
}

// deliver hands lane l's head to the subscriber and settles it; false when
// the subscription ended.
func (s *subscription) deliver(l int) bool {
	g := s.group
	// Go's select picks at random among the cases that are ready, so work
	// may take a lane after the context ended: one a sibling worker put
	// back as it ended with the lane's head in the subscriber's hands.
	// Handing it out again here would give that subscriber the message a
	// second time; it goes back for the group's next subscriber.
	if s.ctx.Err() != nil {
		g.putBack(l, 0, false)
		return false
	}
	m := g.next(l)
	var dctx *delivery.Context
	if !g.cfg.PreserveContext {
		dctx = &delivery.Context{Context: s.ctx}
		m.SetContext(dctx)
	}
	select {
	case s.out <- m:
	case <-s.ctx.Done():
		g.putBack(l, 0, false)
		return false
	}
	g.handed(l)
	acked := func() {
		dctx.End(context.Canceled)
		g.stats.acked.Add(1)
		g.done(l)
	}
	nacked := func() {
		dctx.End(context.Canceled)
		g.stats.nacked.Add(1)
		s.nacked(l)
	}
	select {
	case <-m.Acked():
		acked()
		return true
	case <-m.Nacked():
		nacked()
		return true
	case <-s.ctx.Done():
		// An ack or a nack that raced the subscription's end still counts.
		select {
		case <-m.Acked():
			acked()
		case <-m.Nacked():
			nacked()
		default:
			g.putBack(l, 0, true)
		}
		return false
	}
}

func (s *subscription) nacked(l int) {
	g := s.group
	attempts := g.attempts(l)
	if g.cfg.MaxRetries < 0 || attempts <= g.cfg.MaxRetries {
		g.putBack(l, backoff.Exp(g.cfg.RetryBackoff, g.cfg.MaxRetryBackoff, attempts-1), true)
		return
	}
	dl := g.next(l)
	if err := s.deadLetter(dl, attempts); err != nil {
		g.topic.broker.logger.Error("Cannot dead-letter message; it will be redelivered", err, watermill.LogFields{
			"topic": g.topic.name, "message_uuid": dl.UUID,
		})
		g.putBack(l, g.cfg.MaxRetryBackoff, true)
		return
	}
	g.stats.deadLettered.Add(1)
	g.done(l)
}

// deadLetter takes dl, a fresh copy of the message as published.
func (s *subscription) deadLetter(dl *message.Message, attempts int) error {
	g := s.group
	b := g.topic.broker
	ctx, cancel := context.WithTimeout(context.WithoutCancel(dl.Context()), b.cfg.MaxRetryBackoff+time.Second)
	defer cancel()
	defer context.AfterFunc(b.ctx, cancel)()
	if b.cfg.DeadLetter != nil {
		return b.cfg.DeadLetter(ctx, g.topic.name, dl, attempts)
	}
	if g.topic.name == b.cfg.DeadLetterTopic {
		return fmt.Errorf("memory: a message of the dead-letter topic %q was nacked %d times", g.topic.name, attempts)
	}
	dl.Metadata[DeadLetterReasonKey] = "nacked " + strconv.Itoa(attempts) + " times"
	dl.Metadata[DeadLetterTopicKey] = g.topic.name
	dl.Metadata[DeadLetterAttemptsKey] = strconv.Itoa(attempts)
	dl.SetContext(context.Background())
	return b.PublishContext(ctx, b.cfg.DeadLetterTopic, dl)
}
