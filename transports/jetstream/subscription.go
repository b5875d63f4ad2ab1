package jetstream

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/internal/backoff"
	"github.com/switchyard-go/switchyard/internal/delivery"
	"github.com/switchyard-go/switchyard/internal/lane"
	"github.com/switchyard-go/switchyard/internal/metakey"
)

// How long a pull request lives, and how often the server must show a
// sign of life on it: a request lost with its node is replaced within
// two heartbeats.
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
)

type subscription struct {
	s     *Subscriber
	topic string
	ctx   context.Context
	out   chan *message.Message

	cmu  sync.Mutex
	cons js.Consumer // nil until made

	sched *lane.Scheduler[*entry]

	mu   sync.Mutex
	held map[uint64]*entry // by stream sequence: delivered by the server, not yet acked

	// retries are dead-letter publishes tried again later.
	retries sync.WaitGroup
}

// entry is a message the server delivered; each handler's delivery is built
// from it.
type entry struct {
	seq       uint64
	msg       js.Msg // the server's latest delivery of it; under mu
	delivered uint64 // deliveries the server counted when it was read
	uuid      string
	payload   message.Payload
	md        message.Metadata
}

func (sub *subscription) consumer() js.Consumer {
	sub.cmu.Lock()
	defer sub.cmu.Unlock()
	return sub.cons
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

// readLoop pulls messages and queues them in their lanes. On a failure
// (the server gone, the consumer deleted) it makes sure of the stream and
// consumer again and pulls anew.
func (sub *subscription) readLoop() {
	s := sub.s
	failures := 0
	fail := func(what string, err error) bool {
		failures++
		if failures == 1 || failures%50 == 0 {
			s.logger.Error("jetstream: "+what+"; retrying", err, watermill.LogFields{"topic": sub.topic, "failures": failures})
		}
		return sub.sleep(backoff.Exp(50*time.Millisecond, time.Second, failures-1))
	}
	for sub.ctx.Err() == nil {
		cons := sub.consumer()
		if cons == nil {
			ctx, cancel := context.WithTimeout(sub.ctx, 2*callTimeout)
			c, err := s.consumer(ctx, sub.topic)
			cancel()
			if err != nil {
				if sub.ctx.Err() != nil || !fail("cannot create the consumer", err) {
					return
				}
				continue
			}
			sub.cmu.Lock()
			sub.cons, cons = c, c
			sub.cmu.Unlock()
		}
		// nats.go's defaults (requests live 30 s, heartbeat 15 s) let a pull
		// request that died with the consumer's leader go unnoticed for two
		// missed heartbeats: ~30 s without reading after a node loss.
		it, err := cons.Messages(js.PullMaxMessages(min(s.cfg.MaxAckPending, 256)),
			js.PullExpiry(pullExpiry), js.PullHeartbeat(pullHeartbeat))
		if err != nil {
			sub.dropConsumer()
			if !fail("cannot pull messages", err) {
				return
			}
			continue
		}
		for {
			m, err := it.Next(js.NextContext(sub.ctx))
			if err != nil {
				if sub.ctx.Err() != nil {
					sub.drain(it)
					return
				}
				stopIterator(it)
				sub.dropConsumer()
				if !fail("cannot pull messages", err) {
					return
				}
				break
			}
			failures = 0
			sub.take(m)
		}
	}
}

// drain ends the iterator of an ended subscription and takes what the
// server had sent it, so that release returns those messages too, in
// order; dropped, they would come back only after ack_wait, after newer
// ones. Bounded: a server that does not answer leaves them to ack_wait.
func (sub *subscription) drain(it js.MessagesContext) {
	it.Drain()
	deadline := time.Now().Add(2 * time.Second)
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			stopIterator(it)
			return
		}
		m, err := it.Next(js.NextMaxWait(wait))
		if err != nil {
			stopIterator(it) // closed: returns at once
			return
		}
		sub.take(m)
	}
}

// stopIterator stops it and waits (a little) until its subscription is
// gone: Stop only asks for that. A message nacked while the subscription
// is still there (as release does next) would be delivered to it again and
// lost, to come back only after ack_wait. nats.go's Closed channel is
// closed by the subscription's end only if it was asked for before, so it
// is asked again until it says so.
func stopIterator(it js.MessagesContext) {
	it.Stop()
	c, ok := it.(interface{ Closed() <-chan struct{} })
	if !ok {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-c.Closed():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// dropConsumer makes the reader look the consumer up (or create it) again.
func (sub *subscription) dropConsumer() {
	sub.cmu.Lock()
	sub.cons = nil
	sub.cmu.Unlock()
	sub.s.prov.forget(sub.topic)
}

// take queues a delivered message in its lane. A message held already (the
// server delivered it again) only updates its handle.
func (sub *subscription) take(m js.Msg) {
	s := sub.s
	meta, err := m.Metadata()
	if err != nil {
		// Not a JetStream delivery: nothing to ack nor to order by.
		s.logger.Error("jetstream: message without JetStream metadata ignored", err, watermill.LogFields{"topic": sub.topic})
		return
	}
	seq := meta.Sequence.Stream
	sub.mu.Lock()
	if e, dup := sub.held[seq]; dup {
		e.msg = m
		sub.mu.Unlock()
		return
	}
	sub.mu.Unlock()
	if max := s.cfg.MaxDeliver; max >= 0 && meta.NumDelivered > uint64(max) {
		sub.deadLetter(m, seq, "delivered "+strconv.FormatUint(meta.NumDelivered, 10)+" times without an ack", "max_deliver")
		return
	}
	wm, err := unmarshal(m)
	if err != nil {
		sub.deadLetter(m, seq, "malformed: "+err.Error(), "malformed")
		return
	}
	e := &entry{seq: seq, msg: m, delivered: meta.NumDelivered, uuid: wm.UUID, payload: wm.Payload, md: wm.Metadata}
	sub.mu.Lock()
	sub.held[seq] = e
	sub.mu.Unlock()
	sub.sched.Push(wm.Metadata.Get(metakey.EventKey), e)
}

// Message, Acked and Nacked make the subscription its scheduler's
// lane.Source.

// Message returns a message for e's next delivery, and its context.
func (sub *subscription) Message(e *entry, _ int) (*message.Message, *delivery.Context) {
	m := message.NewMessage(e.uuid, e.payload)
	m.Metadata = make(message.Metadata, len(e.md))
	for k, v := range e.md {
		m.Metadata[k] = v
	}
	return m, &delivery.Context{}
}

func (sub *subscription) Acked(e *entry) { sub.ack(e) }

// Nacked dead-letters e once it was delivered MaxDeliver times, counting
// the deliveries the server made before it was read.
func (sub *subscription) Nacked(e *entry, attempts int) bool {
	n := int(e.delivered) - 1 + attempts
	if limit := sub.s.cfg.MaxDeliver; limit < 0 || n < limit {
		return false
	}
	sub.mu.Lock()
	msg := e.msg
	sub.mu.Unlock()
	sub.deadLetter(msg, e.seq, "nacked "+strconv.Itoa(n)+" times", "nacked")
	return true
}

// ack acks e with the server; a lost ack means a redelivery, never a loss.
func (sub *subscription) ack(e *entry) {
	sub.mu.Lock()
	msg := e.msg
	delete(sub.held, e.seq)
	sub.mu.Unlock()
	if err := msg.Ack(); err != nil {
		sub.s.logger.Error("jetstream: cannot ack; the message will be delivered again", err, watermill.LogFields{"topic": sub.topic, "sequence": e.seq})
	}
}

// progressLoop tells the server, every third of AckWait, that the held
// messages are in progress, so that it does not deliver again a message
// waiting in its lane or for a retry.
func (sub *subscription) progressLoop() {
	t := time.NewTicker(max(sub.s.cfg.AckWait/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-sub.ctx.Done():
			return
		}
		sub.mu.Lock()
		msgs := make([]js.Msg, 0, len(sub.held))
		for _, e := range sub.held {
			msgs = append(msgs, e.msg)
		}
		sub.mu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress() // a lost one costs a redelivery, which is deduplicated
		}
	}
}

// release nacks what the ended subscription still holds, in stream order,
// so that the next consumer gets it at once rather than after ack_wait.
// The server redelivers in the order of the NAKs, after messages returned
// earlier and not yet redelivered: a key's order across handovers is not
// kept.
func (sub *subscription) release() {
	sub.mu.Lock()
	held := make([]*entry, 0, len(sub.held))
	for _, e := range sub.held {
		held = append(held, e)
	}
	sub.held = map[uint64]*entry{}
	sub.mu.Unlock()
	sub.sched.Stop()
	slices.SortFunc(held, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
	for _, e := range held {
		_ = e.msg.Nak()
	}
}

// deadLetter publishes a copy of m to the dead-letter subject with the
// reason, then terminates m. If the copy fails, m stays held, kept in
// progress, and the copy is tried again every second while the
// subscription lasts; after that, m is delivered again.
func (sub *subscription) deadLetter(m js.Msg, seq uint64, reason, kind string) {
	s := sub.s
	sub.mu.Lock()
	if _, ok := sub.held[seq]; !ok {
		sub.held[seq] = &entry{seq: seq, msg: m}
	}
	sub.mu.Unlock()
	dl := nats.NewMsg(s.cfg.deadLetterSubject(sub.topic))
	for k, v := range m.Headers() {
		dl.Header[k] = v
	}
	dl.Data = m.Data()
	stream := s.cfg.streamFor(sub.topic)
	dl.Header.Set(DeadLetterReasonHeader, reason)
	dl.Header.Set(DeadLetterStreamHeader, stream)
	dl.Header.Set(DeadLetterSequenceHeader, strconv.FormatUint(seq, 10))
	dl.Header.Set(DeadLetterTopicHeader, sub.topic)
	if dl.Header.Get(nats.MsgIdHdr) == "" {
		// Dead-lettered twice (the terminate was lost): stored once.
		dl.Header.Set(nats.MsgIdHdr, stream+":"+strconv.FormatUint(seq, 10))
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	err := s.prov.ensureDeadLetter(ctx)
	if err == nil {
		_, err = s.js.PublishMsg(ctx, dl)
	}
	if err != nil {
		s.logger.Error("jetstream: cannot dead-letter a message; retrying", err, watermill.LogFields{"topic": sub.topic, "sequence": seq})
		sub.retries.Go(func() {
			if sub.sleep(time.Second) {
				sub.mu.Lock()
				e, ok := sub.held[seq]
				sub.mu.Unlock()
				if ok {
					sub.deadLetter(e.msg, seq, reason, kind)
				}
			}
		})
		return
	}
	s.metrics.deadLettered(sub.topic, kind)
	s.logger.Error("jetstream: message dead-lettered", errors.New(reason),
		watermill.LogFields{"topic": sub.topic, "sequence": seq, "to": dl.Subject})
	sub.mu.Lock()
	if e, ok := sub.held[seq]; ok {
		m = e.msg
	}
	delete(sub.held, seq)
	sub.mu.Unlock()
	if err := m.TermWithReason(kind); err != nil {
		s.logger.Error("jetstream: cannot terminate a dead-lettered message; it will be dead-lettered again", err,
			watermill.LogFields{"topic": sub.topic, "sequence": seq})
	}
}

// depthLoop refreshes event_queue_depth{stream=topic} every DepthInterval
// from the consumer's info: its messages not yet delivered plus those
// delivered and not acked.
func (sub *subscription) depthLoop() {
	t := time.NewTicker(sub.s.cfg.DepthInterval)
	defer t.Stop()
	for {
		if cons := sub.consumer(); cons != nil {
			ctx, cancel := context.WithTimeout(sub.ctx, callTimeout)
			info, err := cons.Info(ctx)
			cancel()
			if err == nil {
				sub.s.metrics.lanes.Depth.WithLabelValues(sub.topic).Set(float64(info.NumPending) + float64(info.NumAckPending))
			}
		}
		select {
		case <-t.C:
		case <-sub.ctx.Done():
			return
		}
	}
}
