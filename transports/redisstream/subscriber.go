package redisstream

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/internal/backoff"
	"github.com/switchyard-go/switchyard/internal/delivery"
	"github.com/switchyard-go/switchyard/internal/lane"
	"github.com/switchyard-go/switchyard/internal/metakey"
)

// callTimeout bounds each Redis call of a subscription beyond its BLOCK, so
// that a server that stops answering is noticed (and Close is not held up by
// it) in seconds: go-redis notices a context's deadline while it waits for a
// reply, but not its cancellation.
const callTimeout = 2 * time.Second

// Metadata keys written on dead-lettered entries.
const (
	DeadLetterReasonField = "dead_letter_reason"
	DeadLetterIDField     = "dead_letter_id"
	DeadLetterStreamField = "dead_letter_stream"
)

// Subscriber reads streams in a consumer group.
//
// Each subscription reads its own pending entries first (those it was handed
// before a restart and never acked), then new ones, ReadCount at a time. The
// entries of one event_key are handed out one at a time, in stream order,
// the next only after the previous was acked; different keys run
// concurrently. Acks are sent in batches. Every ClaimInterval, entries that
// other consumers left pending for ClaimMinIdle are claimed. An entry that
// cannot be read as a message is copied to the dead-letter stream with the
// reason, acked and counted: the subscription goes on.
//
// The consumer group is checked every second (or DepthInterval, if
// shorter), whatever the handlers are doing. A group that vanished is
// created again at "0" and counted; if the entries it had read vanished too
// (Redis restarted or failed over without its data, or the stream was
// deleted), the entries Redis had not delivered were lost with them: that
// is logged as an error and counted as a stream reset.
type Subscriber struct {
	cfg     Config
	client  redis.UniversalClient
	owns    bool
	logger  watermill.LoggerAdapter
	metrics *Metrics

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	subs    sync.WaitGroup
	depth   *depthWatcher
}

// NewSubscriber returns a subscriber on client, which it does not close. A
// nil client is made from cfg and closed by Close. m may be nil: the
// subscriber then counts without exporting (see NewMetrics).
func NewSubscriber(cfg Config, client redis.UniversalClient, logger watermill.LoggerAdapter, m *Metrics) (*Subscriber, error) {
	if cfg.ConsumerGroup == "" {
		return nil, errors.New("redisstream: config: consumer_group: required to subscribe")
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	owns := client == nil
	if owns {
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("redisstream: config: %w", err)
		}
		c, err := newClient(&cfg)
		if err != nil {
			return nil, err
		}
		client = c
		goRedisLog.add(client, logger)
	} else if err := cfg.validateTuning(); err != nil {
		return nil, fmt.Errorf("redisstream: config: %w", err)
	}
	cfg.setDefaults()
	if m == nil {
		m = NewMetrics(nil)
	}
	s := &Subscriber{cfg: cfg, client: client, owns: owns, logger: logger, metrics: m, closing: make(chan struct{})}
	s.depth = newDepthWatcher(client, &s.cfg, m, logger)
	return s, nil
}

// SubscribeInitialize creates the stream and the consumer group.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.ensureGroup(ctx, topic, s.cfg.StartID)
}

func (s *Subscriber) ensureGroup(ctx context.Context, stream, start string) error {
	_, err := s.createGroup(ctx, stream, start)
	return err
}

// createGroup creates the group, and its stream if need be; created is
// false when the group was there already.
func (s *Subscriber) createGroup(ctx context.Context, stream, start string) (created bool, err error) {
	err = s.client.XGroupCreateMkStream(ctx, stream, s.cfg.ConsumerGroup, start).Err()
	switch {
	case err == nil:
		return true, nil
	case strings.HasPrefix(err.Error(), "BUSYGROUP"):
		return false, nil
	}
	return false, fmt.Errorf("redisstream: create group %q on %q: %w", s.cfg.ConsumerGroup, stream, err)
}

// Subscribe reads topic's stream in the consumer group. The channel is
// closed when ctx ends or the subscriber closes; entries handed out and not
// acked by then stay pending and are read again by this consumer when it
// subscribes again, or claimed by another.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := s.ensureGroup(ictx, topic, s.cfg.StartID)
	cancel()
	if err != nil && ctx.Err() != nil {
		return nil, err
	}
	if err != nil {
		// Redis may be coming back: the reader keeps trying.
		s.logger.Error("Cannot create consumer group yet", err, watermill.LogFields{"stream": topic})
	}
	sctx, stop := context.WithCancel(ctx)
	sub := &subscription{
		s:        s,
		stream:   topic,
		hadGroup: err == nil,
		lag:      -1,
		added:    -1,
		ctx:      sctx,
		out:      make(chan *message.Message),
		lanes:    make([]slane, s.cfg.Lanes),
		ready:    make(chan int, s.cfg.Lanes),
		held:     map[string]struct{}{},
		acks:     make(chan string, 4*int(s.cfg.ReadCount)),
		room:     make(chan struct{}, 1),
	}
	sub.limit = 2 * int(s.cfg.ReadCount)
	s.depth.watch(topic)
	s.subs.Add(1)
	var workers sync.WaitGroup
	for range s.cfg.Lanes {
		workers.Go(sub.work)
	}
	var ackerDone = make(chan struct{})
	go func() { defer close(ackerDone); sub.ackLoop() }()
	var bg sync.WaitGroup
	bg.Go(sub.readLoop)
	bg.Go(sub.claimLoop)
	bg.Go(sub.watchGroup)
	go func() {
		defer s.subs.Done()
		select {
		case <-sctx.Done():
		case <-s.closing:
			stop()
		}
		bg.Wait()
		workers.Wait()
		// Only retries start retries now: the count cannot be zero while
		// one is added.
		sub.retries.Wait()
		close(sub.acks)
		<-ackerDone
		close(sub.out)
		stop()
	}()
	return sub.out, nil
}

// Close ends every subscription and returns once their channels are
// closed. It closes the client only if the subscriber made it. Idempotent.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.depth.stop() // alongside the subscriptions' ending
	s.subs.Wait()
	s.depth.close()
	if s.owns {
		goRedisLog.remove(s.client)
		return s.client.Close()
	}
	return nil
}

type subscription struct {
	s      *Subscriber
	stream string
	ctx    context.Context
	out    chan *message.Message

	mu    sync.Mutex
	lanes []slane
	held  map[string]struct{} // entry IDs read and not yet acked or dead-lettered
	limit int
	room  chan struct{} // signalled when held falls below limit

	ready chan int
	acks  chan string
	// retries are the dead-letter copies waiting to be tried again; they
	// may ack, so acks stays open until they end.
	retries sync.WaitGroup

	lastRead string // the newest entry ID read; under mu

	// What is known of the consumer group, to tell a vanished group from a
	// lost stream; under gmu.
	gmu      sync.Mutex
	hadGroup bool   // the group was there since the subscription began
	gen      uint64 // counts the times the group was found missing
	lastSeen string // the group's last delivered ID when last checked
	lag      int64  // its entries not yet delivered then; -1: unknown
	added    int64  // the stream's entries-added then; -1: unknown
}

type slane struct {
	q     []*sentry
	busy  bool
	timer *time.Timer
}

// sentry is an entry read from the stream; each delivery is built from it.
type sentry struct {
	entry
	id       string
	values   map[string]any // as read, for a dead-letter copy
	attempts int
	first    delivery.Context // the first delivery's context, allocated with the entry

	// next is the message of the next delivery when the reader built it,
	// and handed whether the reader handed it to the handler too, leaving
	// the lane's worker only to wait for the ack.
	next    *message.Message
	nextCtx *delivery.Context
	handed  bool
}

// delivery returns a message for e's next delivery, and its context. (Once
// the message is handed over, its context is the handler's to replace.)
func (sub *subscription) delivery(e *sentry) (*message.Message, *delivery.Context) {
	m := e.message()
	dc := &e.first
	if e.attempts > 0 {
		dc = &delivery.Context{}
	}
	dc.Context = sub.ctx
	m.SetContext(dc)
	return m, dc
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
		case err != nil && strings.HasPrefix(err.Error(), "NOGROUP"):
			cerr := sub.groupMissing(gen, err)
			if cerr != nil {
				failures++
				if failures == 1 || failures%50 == 0 {
					s.logger.Error("Consumer group missing and cannot be created; retrying", cerr,
						watermill.LogFields{"stream": sub.stream, "group": cfg.ConsumerGroup, "failures": failures})
				}
				if !sub.sleep(readRetryWait(failures)) {
					return
				}
				continue
			}
			start = "0"
			continue
		case err != nil:
			failures++
			if failures == 1 || failures%50 == 0 {
				s.logger.Error("Cannot read stream; retrying", err, watermill.LogFields{"stream": sub.stream, "failures": failures})
			}
			if !sub.sleep(readRetryWait(failures)) {
				return
			}
			// A read whose reply was lost (the connection broke) still
			// moved its entries to our pending list: read that first, so
			// they come before newer entries, in order. Those held
			// already are skipped.
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

// waitRoom blocks while the subscription holds its limit of entries.
func (sub *subscription) waitRoom() bool {
	for {
		sub.mu.Lock()
		full := len(sub.held) >= sub.limit
		sub.mu.Unlock()
		if !full {
			return true
		}
		select {
		case <-sub.room:
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
		if x.Values == nil {
			// A pending entry whose data was trimmed or deleted.
			sub.mu.Lock()
			_, dup := sub.held[x.ID]
			sub.mu.Unlock()
			if !dup {
				s.metrics.lost(sub.stream)
				sub.ack(x.ID)
			}
			continue
		}
		// Straight into the entry kept until the ack; a message is built
		// for each delivery.
		e := &sentry{id: x.ID, values: x.Values}
		err := decodeEntry(&e.entry, x.Values)
		l := 0
		if err == nil {
			l = lane.Of(e.get(metakey.EventKey), len(sub.lanes))
		}
		sub.mu.Lock()
		if _, dup := sub.held[x.ID]; dup {
			sub.mu.Unlock()
			continue
		}
		// Held until acked; a malformed one too, so that claiming it back
		// while its dead-letter copy is retried does not start a second.
		sub.held[x.ID] = struct{}{}
		if sub.lastRead == "" || compareIDs(x.ID, sub.lastRead) > 0 {
			sub.lastRead = x.ID
		}
		if err != nil {
			sub.mu.Unlock()
			sub.deadLetter(x.ID, x.Values, err.Error(), "malformed")
			continue
		}
		ln := &sub.lanes[l]
		ln.q = append(ln.q, e)
		wake := !ln.busy
		ln.busy = true
		sub.mu.Unlock()
		if wake {
			// The lane was idle: e is its head. If the handler is waiting,
			// hand it the message now rather than through a worker, whose
			// wake-up is one more goroutine switch before the handler's,
			// and on a busy machine one more wait for a CPU. The worker
			// then only waits for the ack.
			e.next, e.nextCtx = sub.delivery(e)
			select {
			case sub.out <- e.next:
				e.handed = true
				if !yielded {
					// Let the handler run now, before the worker woken
					// below (which would take its turn on this P) and
					// before this goroutine's next read (a syscall).
					// Once per read: a backlog would otherwise
					// alternate reader and handler, one entry at a time.
					yielded = true
					runtime.Gosched()
				}
			default:
			}
			sub.ready <- l
		}
	}
}

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
	more:
		for len(ids) < cap(ids) {
			select {
			case id, ok := <-sub.acks:
				if !ok {
					break more
				}
				ids = append(ids, id)
			default:
				break more
			}
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

// claimLoop claims entries other consumers left pending too long.
func (sub *subscription) claimLoop() {
	s := sub.s
	cfg := &s.cfg
	t := time.NewTicker(cfg.ClaimInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-sub.ctx.Done():
			return
		}
		start := "0-0"
		for range 10 {
			if !sub.waitRoom() {
				return
			}
			ctx, cancel := context.WithTimeout(sub.ctx, callTimeout)
			msgs, next, err := s.client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: sub.stream, Group: cfg.ConsumerGroup, Consumer: cfg.Consumer,
				MinIdle: cfg.ClaimMinIdle, Start: start, Count: cfg.ReadCount,
			}).Result()
			cancel()
			if err != nil {
				break
			}
			if len(msgs) > 0 {
				s.metrics.claimed(sub.stream, len(msgs))
				sub.take(msgs)
			}
			if next == "0-0" || next == "" {
				break
			}
			start = next
		}
	}
}

// groupCheckInterval is how often a subscription checks its group.
func (c *Config) groupCheckInterval() time.Duration { return min(time.Second, c.DepthInterval) }

// watchGroup checks every groupCheckInterval that the consumer group is
// there, and creates it again if not. The reader notices a missing group
// only when it reads, and it reads no more while the handlers hold its
// limit of entries; meanwhile producers write to a stream that no group
// protects from being trimmed (by publishers that never saw the group).
func (sub *subscription) watchGroup() {
	s := sub.s
	t := time.NewTicker(s.cfg.groupCheckInterval())
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-sub.ctx.Done():
			return
		}
		gen := sub.groupGen()
		sub.mu.Lock()
		read := sub.lastRead // read before the check: the group had delivered it
		sub.mu.Unlock()
		ctx, cancel := context.WithTimeout(sub.ctx, callTimeout)
		groups, err := s.client.XInfoGroups(ctx, sub.stream).Result()
		cancel()
		if err != nil && !strings.Contains(err.Error(), "no such key") {
			continue // the reader reports what fails
		}
		found := false
		for _, g := range groups {
			if g.Name == s.cfg.ConsumerGroup {
				found = true
				sub.sawGroup(gen, g, read)
			}
		}
		if !found {
			if err := sub.groupMissing(gen, errors.New("consumer group missing")); err != nil && sub.ctx.Err() == nil {
				s.logger.Debug("Cannot create consumer group", watermill.LogFields{"stream": sub.stream, "err": err.Error()})
			}
		}
	}
}

func (sub *subscription) groupGen() uint64 {
	sub.gmu.Lock()
	defer sub.gmu.Unlock()
	return sub.gen
}

// sawGroup records the group as found by a check begun at generation gen,
// and tells if the stream went back since the last check: the group's last
// delivered entry is older than one this subscription had read before the
// check, or the stream's entries-added (entries-read + lag, which only
// grows) fell. Redis then came back from a restart or failover without its
// latest writes (an RDB snapshot, an AOF without appendfsync always, a
// replica that lagged), or the group was moved back by hand (XGROUP SETID).
func (sub *subscription) sawGroup(gen uint64, g redis.XInfoGroup, read string) {
	s := sub.s
	sub.gmu.Lock()
	defer sub.gmu.Unlock()
	sub.hadGroup = true
	if gen != sub.gen {
		return // found missing and created again meanwhile: already told
	}
	added := int64(-1)
	// An unknown entries-read (nil) reads as 0.
	if g.Lag >= 0 && g.EntriesRead > 0 {
		added = g.EntriesRead + g.Lag
	}
	behind := read != "" && compareIDs(g.LastDeliveredID, read) < 0
	if behind || (added >= 0 && sub.added >= 0 && added < sub.added) {
		s.metrics.streamReset(sub.stream)
		fields := watermill.LogFields{"stream": sub.stream, "group": s.cfg.ConsumerGroup,
			"last_delivered_id": g.LastDeliveredID, "last_read_id": read,
			"entries_added_before": sub.added, "entries_added_now": added}
		if sub.lag >= 0 {
			fields["undelivered_when_last_checked"] = sub.lag
		}
		s.logger.Error("Stream reset: the stream went back, so Redis restarted or failed over without its latest "+
			"writes (an RDB snapshot, an AOF not fsynced on every write, a replica that lagged), or the group was "+
			"moved back by hand. Entries written since that point and not delivered to the group were lost and are "+
			"not delivered. Run Redis with appendonly yes and appendfsync always to keep them.", nil, fields)
		sub.mu.Lock()
		if sub.lastRead == read {
			sub.lastRead = ""
		}
		sub.mu.Unlock()
	}
	sub.lastSeen, sub.lag, sub.added = g.LastDeliveredID, g.Lag, added
}

// groupMissing creates the group again at "0" after a call begun at
// generation gen found it missing (cause), then tells what vanished with
// it, once per vanishing: the reader and watchGroup may both notice it.
func (sub *subscription) groupMissing(gen uint64, cause error) error {
	s := sub.s
	sub.gmu.Lock()
	defer sub.gmu.Unlock()
	ctx, cancel := context.WithTimeout(sub.ctx, callTimeout)
	defer cancel()
	if _, err := s.createGroup(ctx, sub.stream, "0"); err != nil {
		return err
	}
	if gen != sub.gen {
		return nil // already told
	}
	sub.gen++
	fields := watermill.LogFields{"stream": sub.stream, "group": s.cfg.ConsumerGroup}
	if !sub.hadGroup {
		// Subscribe could not create it (Redis was down): nothing vanished.
		sub.hadGroup = true
		s.logger.Info("Consumer group created", fields)
		return nil
	}
	s.metrics.groupRecreated(sub.stream)
	// An entry known to have been in the stream: the newer of the newest
	// this subscription read and the group's last delivered one when last
	// checked. The trimmer keeps a group's last delivered entry and the
	// newest maxlen, so if that entry is gone, the stream's data went with
	// the group.
	sub.mu.Lock()
	mark := sub.lastRead
	sub.lastRead = ""
	sub.mu.Unlock()
	if sub.lastSeen != "" && sub.lastSeen != "0-0" && (mark == "" || compareIDs(sub.lastSeen, mark) > 0) {
		mark = sub.lastSeen
	}
	lost := false
	if mark != "" {
		kept, err := s.client.XRangeN(ctx, sub.stream, mark, mark, 1).Result()
		lost = err == nil && len(kept) == 0
	}
	lag := sub.lag
	sub.lastSeen, sub.lag, sub.added = "", -1, -1
	switch {
	case mark == "":
		// The group had delivered nothing that we know of: whether the
		// stream lost entries with it cannot be told.
		s.logger.Error("Consumer group was missing; created it again at 0 (entries may have been lost with it)", cause, fields)
		return nil
	case !lost:
		s.logger.Error("Consumer group was missing, its stream kept; created it again at 0: the stream's entries are delivered again", cause, fields)
		return nil
	}
	s.metrics.streamReset(sub.stream)
	fields["last_read_id"] = mark
	if lag >= 0 {
		fields["undelivered_when_last_checked"] = lag
	}
	s.logger.Error("Stream reset: the consumer group vanished with the entries it had read, so Redis restarted or "+
		"failed over without its data, or the stream was deleted. The entries Redis had not delivered to the group "+
		"were lost with it (undelivered_when_last_checked tells about how many) and are not delivered. Run Redis "+
		"with appendonly yes to keep them across restarts. The group was created again at 0.", cause, fields)
	return nil
}
