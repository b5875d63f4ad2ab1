package redisstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/internal/timerpool"
)

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("redisstream: closed")

// Publisher appends messages to streams (one stream per topic) with XADD.
//
// Concurrent publishes share pipelines: up to Flushers are in flight, each
// carrying what was waiting when it left (at most BatchSize entries). A
// publish that finds none in flight sends its own from the calling
// goroutine, on a client that ends calls at their context's deadline (as
// the clients made from a Config do). Each Publish returns once Redis has
// its entries, or with the error, within the message context's deadline
// and PublishTimeout. The messages of one call go in one pipeline, in
// order.
type Publisher struct {
	cfg     Config
	client  redis.UniversalClient
	release func() error // closes the client, if it is ours to close

	reqs      chan *pubReq
	gathering sync.Mutex   // held by the flusher that waits for requests
	shared    bool         // whether the last pipeline carried several requests; under gathering
	inflight  atomic.Int32 // pipelines being sent or waiting for replies
	direct    bool         // a publish may send its own pipeline: the client bounds calls by their deadline
	sending   sync.RWMutex // read-held by each publish that sends its own pipeline
	closing   chan struct{}
	once      sync.Once
	wg        sync.WaitGroup
	trim      *trimmer
}

// pubReq is one Publish call's entries on their way to a pipeline.
type pubReq struct {
	ctx      context.Context // the message context with the earliest deadline, or the first one
	deadline time.Time       // the earlier of ctx's deadline and PublishTimeout
	entries  []redis.XAddArgs
	done     chan error
}

// NewPublisher returns a publisher on client, which it does not close. A nil
// client is made from cfg and closed by Close.
func NewPublisher(cfg Config, client redis.UniversalClient, logger watermill.LoggerAdapter) (*Publisher, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	client, release, err := clientFor(&cfg, client, logger)
	if err != nil {
		return nil, err
	}
	cfg.setDefaults()
	p := &Publisher{
		cfg:     cfg,
		client:  client,
		release: release,
		reqs:    make(chan *pubReq, cfg.BatchSize*cfg.Flushers),
		direct:  honoursDeadlines(client),
		closing: make(chan struct{}),
	}
	if !cfg.AllowTrimUnread && cfg.MaxLen > 0 {
		ctx, stop := context.WithCancel(context.Background())
		p.trim = &trimmer{client: client, cfg: &p.cfg, logger: logger, streams: map[string]*trimmed{}, ctx: ctx, stop: stop}
		p.wg.Go(p.trim.run)
	}
	for range cfg.Flushers {
		p.wg.Go(p.flush)
	}
	return p, nil
}

// honoursDeadlines reports whether c ends a call at its context's deadline
// (ContextTimeoutEnabled), as the clients made from a Config do.
func honoursDeadlines(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// clientFor checks cfg and returns client or, when it is nil, one made
// from cfg with the function that closes it.
func clientFor(cfg *Config, client redis.UniversalClient, logger watermill.LoggerAdapter) (redis.UniversalClient, func() error, error) {
	if client != nil {
		tuning := *cfg // what matters with a given client
		if tuning.URL == "" && len(tuning.Addrs) == 0 {
			tuning.URL = "redis://given"
		}
		if err := tuning.Validate(); err != nil {
			return nil, nil, fmt.Errorf("redisstream: config: %w", err)
		}
		return client, nil, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("redisstream: config: %w", err)
	}
	o, err := cfg.universalOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("redisstream: config: %w", err)
	}
	client = redis.NewUniversalClient(o)
	goRedisLog.add(client, logger)
	return client, func() error { return closeClient(client) }, nil
}

func closeClient(c redis.UniversalClient) error {
	goRedisLog.remove(c)
	return c.Close()
}

// Publish appends msgs to the stream named topic.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	select {
	case <-p.closing:
		return ErrClosed
	default:
	}
	r, err := p.request(topic, msgs)
	if err != nil {
		return err
	}
	if p.trim != nil {
		p.trim.track(topic)
	}
	if p.direct && p.inflight.CompareAndSwap(0, 1) {
		return p.publishDirect(topic, r)
	}
	timeout := timerpool.Get(time.Until(r.deadline))
	defer timerpool.Put(timeout)
	select {
	case p.reqs <- r:
	case <-timeout.C:
		return fmt.Errorf("redisstream: publish to %q: %w", topic, context.DeadlineExceeded)
	case <-r.ctx.Done():
		return fmt.Errorf("redisstream: publish to %q: %w", topic, r.ctx.Err())
	case <-p.closing:
		return ErrClosed
	}
	select {
	case err := <-r.done:
		if err != nil {
			return fmt.Errorf("redisstream: publish to %q: %w", topic, err)
		}
		return nil
	// Past here the entries may still land: the publish is ambiguous.
	case <-timeout.C:
		return fmt.Errorf("redisstream: publish to %q: %w", topic, context.DeadlineExceeded)
	case <-r.ctx.Done():
		return fmt.Errorf("redisstream: publish to %q: %w", topic, r.ctx.Err())
	}
}

// publishDirect sends r's pipeline from the caller's goroutine, as no
// pipeline is in flight to share (the caller holds inflight's claim):
// handing r to a flusher and back would cost two goroutine switches. The
// client ends the call at r's deadline; a cancelled message context is
// noticed only before the XADD is sent.
func (p *Publisher) publishDirect(topic string, r *pubReq) error {
	p.sending.RLock()
	defer p.sending.RUnlock()
	select {
	case <-p.closing:
		p.inflight.Add(-1)
		return ErrClosed
	default:
	}
	batch := [1]*pubReq{r}
	var scratch [1]*pubReq
	p.send(batch[:], scratch[:0])
	p.inflight.Add(-1)
	err := <-r.done
	if err != nil && !time.Now().Before(r.deadline) && !errors.Is(err, context.DeadlineExceeded) {
		// The client's own timeout error, at the deadline.
		err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	if err != nil {
		return fmt.Errorf("redisstream: publish to %q: %w", topic, err)
	}
	return nil
}

// request encodes msgs for topic.
func (p *Publisher) request(topic string, msgs []*message.Message) (*pubReq, error) {
	r := &pubReq{ctx: msgs[0].Context(), entries: make([]redis.XAddArgs, len(msgs)), done: make(chan error, 1)}
	enc := newEncoder(p.cfg.Format, len(msgs), msgs[0])
	trim := p.cfg.AllowTrimUnread && p.cfg.MaxLen > 0
	for i, m := range msgs {
		vals, err := enc.encode(p.cfg.Format, m)
		if err != nil {
			return nil, err
		}
		a := &r.entries[i]
		a.Stream, a.Values, a.ID = topic, vals, "*"
		if trim {
			a.MaxLen, a.Approx = p.cfg.MaxLen, true
		}
		if i > 0 {
			if d, ok := m.Context().Deadline(); ok {
				if cur, ok := r.ctx.Deadline(); !ok || d.Before(cur) {
					r.ctx = m.Context()
				}
			}
		}
	}
	r.deadline = time.Now().Add(p.cfg.PublishTimeout)
	if d, ok := r.ctx.Deadline(); ok && d.Before(r.deadline) {
		r.deadline = d
	}
	return r, nil
}

func (p *Publisher) flush() {
	batch := make([]*pubReq, 0, p.cfg.BatchSize)
	live := make([]*pubReq, 0, p.cfg.BatchSize)
	for {
		var ok bool
		if batch, ok = p.gather(batch[:0]); !ok {
			return
		}
		p.inflight.Add(1)
		live = p.send(batch, live[:0])
		p.inflight.Add(-1)
	}
}

// gather appends the next pipeline's requests to batch: the first that
// comes, then what else is queued, up to BatchSize entries. One flusher
// gathers at a time, so that a burst is not handed out one request per
// idle flusher. ok is false once the publisher is closing.
func (p *Publisher) gather(batch []*pubReq) (_ []*pubReq, ok bool) {
	p.gathering.Lock()
	defer p.gathering.Unlock()
	select {
	case r := <-p.reqs:
		batch = append(batch, r)
	case <-p.closing:
		for len(p.reqs) > 0 { // the only receiver now
			(<-p.reqs).done <- ErrClosed
		}
		return batch, false
	}
	n := len(batch[0].entries)
	if n < p.cfg.BatchSize && len(p.reqs) == 0 && (p.shared || p.inflight.Load() > 0) {
		// Publishers are many: let the runnable ones queue first to share
		// this pipeline, rather than wait a round trip for the next. A
		// lone publisher never waits here.
		runtime.Gosched()
	}
	var linger <-chan time.Time
	if p.cfg.Linger > 0 {
		timer := time.NewTimer(p.cfg.Linger)
		defer timer.Stop()
		linger = timer.C
	}
gather:
	for n < p.cfg.BatchSize {
		var r *pubReq
		select {
		case r = <-p.reqs:
		default:
			if linger == nil {
				break gather
			}
			select {
			case r = <-p.reqs:
			case <-linger:
				break gather
			}
		}
		batch = append(batch, r)
		n += len(r.entries)
	}
	p.shared = len(batch) > 1
	return batch, true
}

// send runs one pipeline for batch and answers each request; live is
// scratch space, returned for the next call. The pipeline lasts until the
// latest deadline of its requests: a short one must not fail the others.
func (p *Publisher) send(batch, live []*pubReq) []*pubReq {
	now := time.Now()
	var deadline time.Time
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		if !now.Before(r.deadline) {
			r.done <- context.DeadlineExceeded
			continue
		}
		live = append(live, r)
		if r.deadline.After(deadline) {
			deadline = r.deadline
		}
	}
	if len(live) == 0 {
		return live
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	pipe := p.client.Pipeline()
	for _, r := range live {
		for i := range r.entries {
			pipe.XAdd(ctx, &r.entries[i])
		}
	}
	cmds, execErr := pipe.Exec(ctx)
	for _, r := range live {
		var err error
		for _, cmd := range cmds[:len(r.entries)] {
			err = cmp.Or(err, cmd.Err())
			// A refused connection set-up (AUTH or SELECT: WRONGPASS,
			// NOPERM, a database out of range) is returned by Exec alone,
			// leaving each command without an error and without the entry
			// ID a written XADD has.
			if execErr != nil && cmd.(*redis.StringCmd).Val() == "" {
				err = cmp.Or(err, execErr)
			}
		}
		cmds = cmds[len(r.entries):]
		r.done <- err
	}
	clear(live)
	return live
}

// Close stops the publisher; publishes in flight finish first. It closes the
// client only if the publisher made it. Idempotent.
func (p *Publisher) Close() error {
	var err error
	p.once.Do(func() {
		close(p.closing)
		if p.trim != nil {
			p.trim.stop() // no new round while the rest ends
		}
		// Once locked, no publish is sending its own pipeline.
		p.sending.Lock()
		defer p.sending.Unlock()
		p.wg.Wait()
		if p.release != nil {
			err = p.release()
		}
	})
	return err
}

var _ message.Publisher = (*Publisher)(nil)
