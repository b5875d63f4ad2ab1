// Package queue is switchyard's in-process queue engine: bounded queues
// with per-key ordered lanes, consumer groups, redelivery with backoff and
// dead-lettering. The bus's ingress is one; the memory transport wraps
// another, so the bus names no concrete transport.
package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
)

// Sentinel errors, checked with errors.Is. Their texts are the memory
// transport's, whose users see them.
var (
	ErrClosed    = errors.New("memory: closed")
	ErrQueueFull = errors.New("memory: queue full")
)

// Broker is an in-process Pub/Sub with bounded, per-key ordered queues:
// memory.Broker, which documents it.
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

// Stats are memory.Stats, which documents them.
type Stats struct {
	Published, Delivered, Acked, Nacked, DeadLettered, Discarded uint64
	Queued                                                       int64
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
