package memory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/internal/lane"
)

// Sentinel errors, checked with errors.Is.
var (
	ErrClosed    = errors.New("memory: closed")
	ErrQueueFull = errors.New("memory: queue full")
)

// Broker is an in-process Pub/Sub with bounded, per-key ordered queues.
//
// Each topic keeps one queue per consumer group. A queue is split into lanes
// chosen by a hash of the message key: a lane delivers its next message only
// after the previous one was acked, so messages that share a key arrive in
// publish order, while different lanes are delivered concurrently. A nacked
// message is redelivered, first in its lane, after a backoff that doubles up
// to MaxRetryBackoff; after MaxRetries redeliveries it is dead-lettered.
//
// Goroutines are bounded: each subscription runs one per lane, none are
// started per message.
type Broker struct {
	cfg    Config
	logger watermill.LoggerAdapter

	mu     sync.RWMutex
	topics map[string]*topic
	closed bool

	subsWg     sync.WaitGroup
	publishing sync.WaitGroup
	done       chan struct{}
	closeOnce  sync.Once
	ctx        context.Context // canceled by Close: bounds dead-lettering
	cancel     context.CancelFunc
	stats      counters
}

// Stats are counters since the broker started; Queued is a current value.
type Stats struct {
	Published    uint64 // accepted by Publish, counted once per consumer group
	Delivered    uint64 // handed to a subscriber, redeliveries included
	Acked        uint64
	Nacked       uint64
	DeadLettered uint64
	Discarded    uint64 // still held when the broker closed
	Queued       int64  // accepted and not yet acked or dead-lettered
}

type counters struct {
	published, delivered, acked, nacked, deadLettered, discarded atomic.Uint64
	queued                                                       atomic.Int64
}

// NewBroker returns a broker. A nil logger logs nothing.
func NewBroker(cfg Config, logger watermill.LoggerAdapter) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("memory: config: %w", err)
	}
	cfg.setDefaults()
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Broker{
		cfg:    cfg,
		logger: logger,
		topics: make(map[string]*topic),
		done:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
	}, nil
}

// Config returns the broker's configuration with defaults applied.
func (b *Broker) Config() Config { return b.cfg }

// QueueDepths returns, for each topic, the most events one of its consumer
// groups holds: published and not yet acked or dead-lettered. A publish to
// the topic waits (on_full: block) or fails (reject) while a group holds
// QueueSize. A closed broker holds nothing: what it held was discarded.
func (b *Broker) QueueDepths() map[string]int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make(map[string]int, len(b.topics))
	for name, t := range b.topics {
		out[name] = 0
		if b.closed {
			continue
		}
		for _, g := range *t.groups.Load() {
			out[name] = max(out[name], len(g.room))
		}
	}
	return out
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	return Stats{
		Published:    b.stats.published.Load(),
		Delivered:    b.stats.delivered.Load(),
		Acked:        b.stats.acked.Load(),
		Nacked:       b.stats.nacked.Load(),
		DeadLettered: b.stats.deadLettered.Load(),
		Discarded:    b.stats.discarded.Load(),
		Queued:       b.stats.queued.Load(),
	}
}

// Publish publishes messages to topic. The broker keeps its own copy of each
// message's metadata; the payload bytes are shared, as with Watermill's
// Message.Copy, so don't change them in place after publishing. With on_full:
// block it waits for room until the message's context ends; with reject it
// fails with ErrQueueFull. Messages are accepted in order and, on an error,
// the ones before the failing one stay accepted.
func (b *Broker) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if err := b.publish(m.Context(), topic, m); err != nil {
			return err
		}
	}
	return nil
}

// PublishContext is Publish with ctx, not the messages' contexts, bounding
// the wait for room.
func (b *Broker) PublishContext(ctx context.Context, topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if err := b.publish(ctx, topic, m); err != nil {
			return err
		}
	}
	return nil
}

func (b *Broker) publish(ctx context.Context, topicName string, m *message.Message) error {
	ln := lane.Of(b.cfg.KeyFunc(m), b.cfg.Lanes)
	// Close waits for the publishes in progress, so a message is either
	// refused or in a queue before Close counts what it discards. No lock is
	// held while waiting for room: a subscriber must be able to come. One
	// read lock finds the topic and counts the publish.
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	t := b.topics[topicName]
	b.publishing.Add(1)
	b.mu.RUnlock()
	defer b.publishing.Done()
	if t == nil {
		var err error
		if t, err = b.topic(topicName); err != nil {
			return err
		}
	}
	groups := *t.groups.Load()
	// Reserve room in every group first, so a message is in all of them or in none.
	for i, g := range groups {
		if err := g.reserve(ctx); err != nil {
			for _, r := range groups[:i] {
				r.release()
			}
			return fmt.Errorf("memory: publish to %q: %w", topicName, err)
		}
	}
	e := entry{uuid: m.UUID, payload: m.Payload, meta: flatten(m.Metadata), ctx: m.Context()}
	for _, g := range groups {
		g.push(ln, e)
	}
	b.stats.published.Add(uint64(len(groups)))
	b.stats.queued.Add(int64(len(groups)))
	return nil
}

// message builds a delivery of e: every delivery is a fresh message, so one
// handler's changes never reach the next attempt, and acks never mix.
func (e *entry) message() *message.Message {
	m := message.NewMessage(e.uuid, e.payload)
	for i := 0; i+1 < len(e.meta); i += 2 {
		m.Metadata[e.meta[i]] = e.meta[i+1]
	}
	m.SetContext(e.ctx)
	return m
}

// flatten keeps metadata as key, value, key, value…: one allocation, and
// immutable once stored, so deliveries can be built without the lock.
func flatten(md message.Metadata) []string {
	if len(md) == 0 {
		return nil
	}
	kv := make([]string, 0, 2*len(md))
	for k, v := range md {
		kv = append(kv, k, v)
	}
	return kv
}

func (b *Broker) topic(name string) (*topic, error) {
	b.mu.RLock()
	t, ok := b.topics[name]
	closed := b.closed
	b.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if ok {
		return t, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if t, ok = b.topics[name]; ok {
		return t, nil
	}
	t = &topic{name: name, broker: b}
	g := newGroup(t, "")
	g.implicit = true
	t.groups.Store(&[]*group{g})
	b.topics[name] = t
	return t, nil
}

// SubscribeInitialize creates topic and the configured consumer group, so
// messages published from now on are kept for the group.
func (b *Broker) SubscribeInitialize(topic string) error {
	_, err := b.group(topic, b.cfg.ConsumerGroup)
	return err
}

func (b *Broker) group(topicName, name string) (*group, error) {
	t, err := b.topic(topicName)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	groups := *t.groups.Load()
	for _, g := range groups {
		if g.name == name {
			g.implicit = false // asked for by name: it stays
			return g, nil
		}
	}
	// The group a topic starts with keeps what is published before anyone
	// subscribes. If no one ever used it, the first named group takes it
	// over, backlog included, so it never fills up unread.
	if len(groups) == 1 && groups[0].implicit {
		g := groups[0]
		g.mu.Lock()
		adopt := !g.everSubscribed
		if adopt {
			g.name, g.implicit = name, false
		}
		g.mu.Unlock()
		if adopt {
			return g, nil
		}
	}
	g := newGroup(t, name)
	next := append(groups[:len(groups):len(groups)], g)
	t.groups.Store(&next)
	return g, nil
}

// Subscribe subscribes to topic in the configured consumer group. The channel
// is closed when ctx ends or the broker closes; messages delivered and not yet
// acked by then are delivered again to another subscriber of the group.
func (b *Broker) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return b.subscribe(ctx, topic, b.cfg.ConsumerGroup, nil)
}

func (b *Broker) subscribe(ctx context.Context, topicName, groupName string, owner *Subscriber) (<-chan *message.Message, error) {
	g, err := b.group(topicName, groupName)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	b.subsWg.Add(1)
	b.mu.Unlock()
	if owner != nil {
		owner.subs.Add(1)
	}

	sctx, cancel := context.WithCancel(ctx)
	s := &subscription{
		group:  g,
		ctx:    sctx,
		cancel: cancel,
		out:    make(chan *message.Message),
	}
	g.subscribed(1)
	s.wg.Add(b.cfg.Lanes)
	for range b.cfg.Lanes {
		go s.work()
	}
	go func() {
		defer b.subsWg.Done()
		select {
		case <-sctx.Done():
		case <-b.done:
			cancel()
		case <-owner.closing():
			cancel()
		}
		s.wg.Wait()
		g.subscribed(-1)
		close(s.out)
		if owner != nil {
			owner.subs.Done()
		}
	}()
	return s.out, nil
}

// Drain waits until every queue that has a subscriber has handed all its
// messages to subscribers (messages waiting for a redelivery count as not
// handed). Queues without subscribers are not waited for. If ctx ends first
// the error says how many messages were left.
func (b *Broker) Drain(ctx context.Context) error {
	return b.wait(ctx, false)
}

// Settle is Drain that also waits for every handed message to be acked or
// dead-lettered.
func (b *Broker) Settle(ctx context.Context) error {
	return b.wait(ctx, true)
}

func (b *Broker) wait(ctx context.Context, settled bool) error {
	for {
		var wait chan struct{}
		left := 0
		b.mu.RLock()
		for _, t := range b.topics {
			for _, g := range *t.groups.Load() {
				n, ch := g.left(settled)
				if n > 0 {
					left += n
					wait = ch
				}
			}
		}
		b.mu.RUnlock()
		if left == 0 {
			return nil
		}
		state := "delivered"
		if settled {
			state = "acked"
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("memory: %d messages not %s: %w", left, state, ctx.Err())
		}
	}
}

// Close ends every subscription and makes Publish fail with ErrClosed.
// Messages still queued are discarded and counted in Stats.Discarded; the
// memory transport keeps nothing beyond the life of its process. Close is
// idempotent.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() { close(b.done) }) // wakes publishes waiting for room
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.cancel()

	b.publishing.Wait()
	b.subsWg.Wait()

	discarded := 0
	for _, t := range b.topics {
		for _, g := range *t.groups.Load() {
			discarded += g.discard()
		}
	}
	if discarded > 0 {
		b.stats.discarded.Add(uint64(discarded))
		b.stats.queued.Add(-int64(discarded))
		b.logger.Info("Memory broker closed with undelivered messages", watermill.LogFields{"discarded": discarded})
	}
	return nil
}

type topic struct {
	name   string
	broker *Broker
	mu     sync.Mutex // serialises group creation
	groups atomic.Pointer[[]*group]
}

// group is one consumer group's queue of a topic.
type group struct {
	topic *topic
	name  string
	cfg   *Config
	stats *counters

	// room is a semaphore of QueueSize slots: a slot is taken by publish and
	// given back when the message is acked or dead-lettered.
	room chan struct{}
	// ready holds the indexes of lanes whose head message may be delivered.
	// A lane is in it at most once, so sends never block.
	ready chan int

	mu             sync.Mutex
	implicit       bool // made with the topic, not asked for; guarded by topic.mu
	everSubscribed bool
	lanes          []laneQueue
	held           int // queued messages not yet acked or dead-lettered
	inFlight       int // of those, delivered and not yet acked or nacked
	subs           int
	changed        chan struct{} // closed when held or inFlight falls; made on demand
}

type laneQueue struct {
	q     ring
	busy  bool // in ready, delivered, or waiting for a redelivery
	timer *time.Timer
}

// entry is a message as published; each delivery is built from it.
type entry struct {
	uuid     string
	payload  message.Payload
	meta     []string // key, value, key, value…
	ctx      context.Context
	attempts int // deliveries so far
}

func newGroup(t *topic, name string) *group {
	cfg := &t.broker.cfg
	return &group{
		topic: t,
		name:  name,
		cfg:   cfg,
		stats: &t.broker.stats,
		room:  make(chan struct{}, cfg.QueueSize),
		ready: make(chan int, cfg.Lanes),
		lanes: make([]laneQueue, cfg.Lanes),
	}
}

func (g *group) reserve(ctx context.Context) error {
	select {
	case g.room <- struct{}{}:
		return nil
	default:
	}
	if g.cfg.OnFull == Reject {
		return ErrQueueFull
	}
	select {
	case g.room <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrQueueFull, ctx.Err())
	case <-g.topic.broker.done:
		return ErrClosed
	}
}

func (g *group) release() { <-g.room }

func (g *group) push(l int, e entry) {
	g.mu.Lock()
	ln := &g.lanes[l]
	ln.q.push(e)
	g.held++
	wake := !ln.busy
	ln.busy = true
	g.mu.Unlock()
	if wake {
		g.ready <- l
	}
}

func (g *group) subscribed(delta int) {
	g.mu.Lock()
	g.subs += delta
	if delta > 0 {
		g.everSubscribed = true
	}
	g.notifyLocked() // a Drain waiting on a queue that lost its subscribers stops waiting
	g.mu.Unlock()
}

// left returns how many held messages are not yet in a subscriber's hands
// (settled: not yet acked or dead-lettered), and a channel closed when that
// changes; 0 when no one subscribes.
func (g *group) left(settled bool) (int, chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.held
	if !settled {
		n -= g.inFlight
	}
	if g.subs == 0 || n == 0 {
		return 0, nil
	}
	if g.changed == nil {
		g.changed = make(chan struct{})
	}
	return n, g.changed
}

// notifyLocked wakes Drain and Settle waiters.
func (g *group) notifyLocked() {
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
}

// next builds a delivery of lane l's head, outside the lock every lane and
// publisher shares.
func (g *group) next(l int) *message.Message {
	g.mu.Lock()
	e := *g.lanes[l].q.front()
	g.mu.Unlock()
	return e.message()
}

// handed records that lane l's head reached a subscriber.
func (g *group) handed(l int) {
	g.mu.Lock()
	g.lanes[l].q.front().attempts++
	g.inFlight++
	g.notifyLocked()
	g.mu.Unlock()
	g.stats.delivered.Add(1)
}

// done removes lane l's head (acked or dead-lettered) and moves the lane on.
func (g *group) done(l int) {
	g.mu.Lock()
	ln := &g.lanes[l]
	ln.q.pop()
	g.held--
	g.inFlight--
	next := ln.q.len() > 0
	ln.busy = next
	g.notifyLocked()
	g.mu.Unlock()
	g.release()
	g.stats.queued.Add(-1)
	if next {
		g.ready <- l
	}
}

// putBack makes lane l's head deliverable again after wait (0: at once);
// handed says whether it had reached a subscriber.
func (g *group) putBack(l int, wait time.Duration, handed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if handed {
		g.inFlight--
	}
	if wait <= 0 {
		g.ready <- l
		return
	}
	ln := &g.lanes[l]
	if ln.timer == nil {
		ln.timer = time.AfterFunc(wait, func() { g.ready <- l })
	} else {
		ln.timer.Reset(wait)
	}
}

func (g *group) attempts(l int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lanes[l].q.front().attempts
}

func (g *group) backoff(attempts int) time.Duration {
	d := g.cfg.RetryBackoff
	for i := 1; i < attempts && d < g.cfg.MaxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, g.cfg.MaxRetryBackoff)
}

func (g *group) discard() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.held
	for i := range g.lanes {
		if t := g.lanes[i].timer; t != nil {
			t.Stop()
		}
		g.lanes[i].q = ring{}
	}
	g.held, g.inFlight = 0, 0
	return n
}

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
	m := g.next(l)
	var dctx *deliveryContext
	if !g.cfg.PreserveContext {
		dctx = &deliveryContext{Context: s.ctx}
		m.SetContext(dctx)
	}
	select {
	case s.out <- m:
	case <-s.ctx.Done():
		g.putBack(l, 0, false)
		return false
	}
	g.handed(l)
	select {
	case <-m.Acked():
		dctx.cancel()
		g.stats.acked.Add(1)
		g.done(l)
		return true
	case <-m.Nacked():
		dctx.cancel()
		g.stats.nacked.Add(1)
		s.nacked(l)
		return true
	case <-s.ctx.Done():
		// An ack that raced the subscription's end still counts.
		select {
		case <-m.Acked():
			dctx.cancel()
			g.stats.acked.Add(1)
			g.done(l)
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
		g.putBack(l, g.backoff(attempts), true)
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

// ring is a FIFO of entries that grows by doubling and never shrinks.
type ring struct {
	buf  []entry
	head int
	n    int
}

func (r *ring) len() int { return r.n }

func (r *ring) push(e entry) {
	if r.n == len(r.buf) {
		nb := make([]entry, max(4, 2*len(r.buf)))
		for i := range r.n {
			nb[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
}

func (r *ring) front() *entry { return &r.buf[r.head] }

func (r *ring) pop() {
	r.buf[r.head] = entry{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
}

// deliveryContext is the context of a delivered message when contexts are
// not preserved: the subscription's, canceled also once the message is acked
// or nacked. The cancelable context behind Done and AfterFunc is made only
// if someone asks for one, so a handler that never looks costs one small
// allocation. AfterFunc lets context.WithTimeout and the like, derived from
// a delivered message's context, register with it instead of starting a
// goroutine each to watch Done.
type deliveryContext struct {
	context.Context // the subscription's
	mu              sync.Mutex
	canceled        bool
	inner           context.Context // made on demand, a child of the subscription's
	stop            context.CancelFunc
}

// watched returns the cancelable context behind Done and AfterFunc.
func (c *deliveryContext) watched() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner == nil {
		c.inner, c.stop = context.WithCancel(c.Context)
		if c.canceled {
			c.stop()
		}
	}
	return c.inner
}

func (c *deliveryContext) Done() <-chan struct{} { return c.watched().Done() }

// AfterFunc arranges for f to run in its own goroutine once the delivery
// ends, as context.AfterFunc does.
func (c *deliveryContext) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.watched(), f)
}

func (c *deliveryContext) Err() error {
	c.mu.Lock()
	canceled := c.canceled
	c.mu.Unlock()
	if canceled {
		return context.Canceled
	}
	return c.Context.Err()
}

func (c *deliveryContext) cancel() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.canceled {
		return
	}
	c.canceled = true
	if c.stop != nil {
		c.stop()
	}
}
