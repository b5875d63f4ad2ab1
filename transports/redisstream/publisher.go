package redisstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("redisstream: closed")

// Publisher appends messages to streams (one stream per topic) with XADD.
//
// Concurrent publishes share pipelines: up to Flushers pipelines are in
// flight, each carrying what was waiting when it left (at most BatchSize
// entries), so a lone publisher pays one round trip and many publishers pay
// far fewer than one each. Each Publish returns once Redis has its entries,
// or with the error; a message's context deadline and PublishTimeout bound
// the wait. The messages of one Publish call go in one pipeline, in order.
type Publisher struct {
	cfg    Config
	client redis.UniversalClient
	owns   bool
	logger watermill.LoggerAdapter

	reqs    chan *pubReq
	closing chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	trim    *trimmer
}

type pubReq struct {
	ctx     context.Context
	entries []*redis.XAddArgs
	done    chan error
}

// NewPublisher returns a publisher on client, which it does not close. A nil
// client is made from cfg and closed by Close.
func NewPublisher(cfg Config, client redis.UniversalClient, logger watermill.LoggerAdapter) (*Publisher, error) {
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
	} else if err := cfg.validateTuning(); err != nil {
		return nil, fmt.Errorf("redisstream: config: %w", err)
	}
	cfg.setDefaults()
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	p := &Publisher{
		cfg:     cfg,
		client:  client,
		owns:    owns,
		logger:  logger,
		reqs:    make(chan *pubReq, cfg.BatchSize*cfg.Flushers),
		closing: make(chan struct{}),
	}
	if !cfg.AllowTrimUnread && cfg.MaxLen > 0 {
		p.trim = newTrimmer(client, &p.cfg, logger)
	}
	for range cfg.Flushers {
		p.wg.Go(p.flush)
	}
	return p, nil
}

func newClient(cfg *Config) (redis.UniversalClient, error) {
	o, err := cfg.universalOptions()
	if err != nil {
		return nil, fmt.Errorf("redisstream: config: %w", err)
	}
	return redis.NewUniversalClient(o), nil
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
	ctx := msgs[0].Context()
	r := &pubReq{entries: make([]*redis.XAddArgs, len(msgs)), done: make(chan error, 1)}
	for i, m := range msgs {
		vals, err := encode(p.cfg.Format, m)
		if err != nil {
			return err
		}
		a := &redis.XAddArgs{Stream: topic, Values: vals, ID: "*"}
		if p.cfg.AllowTrimUnread && p.cfg.MaxLen > 0 {
			a.MaxLen, a.Approx = p.cfg.MaxLen, true
		}
		r.entries[i] = a
		if d, ok := m.Context().Deadline(); ok {
			if cur, ok := ctx.Deadline(); !ok || d.Before(cur) {
				ctx = m.Context()
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	defer cancel()
	r.ctx = ctx
	if p.trim != nil {
		p.trim.track(topic)
	}
	select {
	case p.reqs <- r:
	case <-ctx.Done():
		return fmt.Errorf("redisstream: publish to %q: %w", topic, ctx.Err())
	case <-p.closing:
		return ErrClosed
	}
	select {
	case err := <-r.done:
		if err != nil {
			return fmt.Errorf("redisstream: publish to %q: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		// The entries may still land: the publish is ambiguous.
		return fmt.Errorf("redisstream: publish to %q: %w", topic, ctx.Err())
	}
}

func (p *Publisher) flush() {
	batch := make([]*pubReq, 0, p.cfg.BatchSize)
	for {
		batch = batch[:0]
		select {
		case r := <-p.reqs:
			batch = append(batch, r)
		case <-p.closing:
			p.failQueued()
			return
		}
		n := len(batch[0].entries)
		var linger <-chan time.Time
		var timer *time.Timer
		if p.cfg.Linger > 0 {
			timer = time.NewTimer(p.cfg.Linger)
			linger = timer.C
		}
	gather:
		for n < p.cfg.BatchSize {
			select {
			case r := <-p.reqs:
				batch = append(batch, r)
				n += len(r.entries)
			default:
				if linger == nil {
					break gather
				}
				select {
				case r := <-p.reqs:
					batch = append(batch, r)
					n += len(r.entries)
				case <-linger:
					break gather
				}
			}
		}
		if timer != nil {
			timer.Stop()
		}
		p.send(batch)
	}
}

// send runs one pipeline for batch and answers each request. The pipeline
// lasts until the latest deadline of its requests: each Publish stops
// waiting at its own, and a short one must not fail the others.
func (p *Publisher) send(batch []*pubReq) {
	live := batch[:0:0]
	var deadline time.Time
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
		if d, ok := r.ctx.Deadline(); ok && d.After(deadline) {
			deadline = d
		}
	}
	if len(live) == 0 {
		return
	}
	ctx := context.Background()
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	pipe := p.client.Pipeline()
	cmds := make([]*redis.StringCmd, 0, len(live))
	for _, r := range live {
		for _, a := range r.entries {
			cmds = append(cmds, pipe.XAdd(ctx, a))
		}
	}
	_, _ = pipe.Exec(ctx) // errors are per command
	i := 0
	for _, r := range live {
		var err error
		for range r.entries {
			if e := cmds[i].Err(); e != nil && err == nil {
				err = e
			}
			i++
		}
		r.done <- err
	}
}

func (p *Publisher) failQueued() {
	for {
		select {
		case r := <-p.reqs:
			r.done <- ErrClosed
		default:
			return
		}
	}
}

// Close stops the publisher; publishes in flight finish first. It closes the
// client only if the publisher made it. Idempotent.
func (p *Publisher) Close() error {
	var err error
	p.once.Do(func() {
		close(p.closing)
		p.wg.Wait()
		if p.trim != nil {
			p.trim.close()
		}
		if p.owns {
			err = p.client.Close()
		}
	})
	return err
}

var _ message.Publisher = (*Publisher)(nil)
