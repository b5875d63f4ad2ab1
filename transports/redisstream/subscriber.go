package redisstream

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/internal/lane"
)

// callTimeout bounds each Redis call of a subscription beyond its BLOCK, so
// that a server that stops answering does not hold up Close: go-redis
// notices a context's deadline while it waits for a reply, not its
// cancellation.
const callTimeout = 2 * time.Second

// Metadata keys written on dead-lettered entries.
const (
	DeadLetterReasonField = "dead_letter_reason"
	DeadLetterIDField     = "dead_letter_id"
	DeadLetterStreamField = "dead_letter_stream"
)

// Subscriber reads streams in a consumer group.
//
// Each subscription reads its own pending entries first, then new ones,
// ReadCount at a time, and every ClaimInterval claims those other consumers
// left pending for ClaimMinIdle. Its consumer group is checked every second
// (or DepthInterval, if shorter): one that vanished is created again at "0",
// and what vanished with it is logged and counted. The package
// documentation lists the guarantees.
type Subscriber struct {
	cfg     Config
	client  redis.UniversalClient
	release func() error // closes the client, if it is ours to close
	logger  watermill.LoggerAdapter
	metrics *Metrics

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	subs    sync.WaitGroup
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
	client, release, err := clientFor(&cfg, client, logger)
	if err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Subscriber{cfg: cfg, client: client, release: release, logger: logger, metrics: m, closing: make(chan struct{})}, nil
}

// SubscribeInitialize creates the stream and the consumer group.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.createGroup(ctx, topic, s.cfg.StartID)
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
	err := s.createGroup(ictx, topic, s.cfg.StartID)
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
		held:     map[string]struct{}{},
		acks:     make(chan string, 4*int(s.cfg.ReadCount)),
		limit:    2 * int(s.cfg.ReadCount),
	}
	sub.sched = lane.NewScheduler[*entry](sctx, sub.out, sub, lane.Config{
		Lanes: s.cfg.Lanes, RetryBackoff: s.cfg.RetryBackoff, MaxRetryBackoff: s.cfg.MaxRetryBackoff, HandOff: true,
	})
	s.subs.Add(1)
	var loops, acker sync.WaitGroup
	sub.sched.Start(&loops)
	loops.Go(sub.readLoop)
	loops.Go(sub.claimLoop)
	loops.Go(sub.watchGroup)
	loops.Go(sub.depthLoop)
	acker.Go(sub.ackLoop)
	go func() {
		defer s.subs.Done()
		select {
		case <-sctx.Done():
		case <-s.closing:
			stop()
		}
		loops.Wait()
		sub.sched.Stop()
		// Only retries start retries now.
		sub.retries.Wait()
		close(sub.acks)
		acker.Wait()
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
	s.subs.Wait()
	if s.release != nil {
		return s.release()
	}
	return nil
}

type subscription struct {
	s      *Subscriber
	stream string
	ctx    context.Context
	out    chan *message.Message
	sched  *lane.Scheduler[*entry]

	mu    sync.Mutex
	held  map[string]struct{} // entry IDs read and not yet acked or dead-lettered
	limit int
	// roomFreed, made by a waitRoom that found held at limit, is closed
	// when an entry is let go; nil while no one waits.
	roomFreed chan struct{}
	// roomWaitHook, when set (by tests), runs after waitRoom found the
	// subscription full and before it waits.
	roomWaitHook func()

	acks chan string
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

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)
