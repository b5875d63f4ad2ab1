package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/internal/lane"
)

// Headers written on dead-lettered messages, beside the original's.
const (
	DeadLetterReasonHeader   = "dead_letter_reason"
	DeadLetterStreamHeader   = "dead_letter_stream"
	DeadLetterSequenceHeader = "dead_letter_sequence"
	DeadLetterTopicHeader    = "dead_letter_topic"
)

// Subscriber reads topics through durable pull consumers, created (or
// updated to the configuration) on first use.
//
// The messages of one event_key are handed out one at a time, in stream
// order, the next only after the previous was acked; different keys run
// concurrently. A nacked message stays at the head of its lane and is
// handed out again after a backoff, so its key keeps its order; the server
// is told the message is in progress meanwhile, and so are messages waiting
// in their lanes, so it delivers none of them again. A message delivered
// MaxDeliver times (counting deliveries the server made before, to this
// process or another) is published to the dead-letter subject with the
// reason, then terminated; so is a message that cannot be read. When a
// subscription ends, the messages it holds unacked are nacked, in order,
// for the next consumer to get at once.
type Subscriber struct {
	cfg     Config
	nc      *nats.Conn
	owns    bool
	js      js.JetStream
	logger  watermill.LoggerAdapter
	metrics *Metrics
	prov    *provisioner

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	subs    sync.WaitGroup
}

// NewSubscriber returns a subscriber on nc, which it does not close. A nil
// nc is connected from cfg and closed by Close. m may be nil: the
// subscriber then counts without exporting (see NewMetrics).
func NewSubscriber(cfg Config, nc *nats.Conn, logger watermill.LoggerAdapter, m *Metrics) (*Subscriber, error) {
	if cfg.Consumer == "" {
		return nil, errors.New("jetstream: config: consumer: required to subscribe")
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("jetstream: config: %w", err)
	}
	owns := nc == nil
	if owns {
		c, err := Connect(cfg, "", logger)
		if err != nil {
			return nil, err
		}
		nc = c
	}
	cfg.setDefaults()
	j, err := js.New(nc)
	if err != nil {
		if owns {
			nc.Close()
		}
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	s := &Subscriber{cfg: cfg, nc: nc, owns: owns, js: j, logger: logger, metrics: m, closing: make(chan struct{})}
	s.prov = newProvisioner(&s.cfg, j)
	return s, nil
}

// SubscribeInitialize creates the topic's stream (with Provision) and its
// durable consumer.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*callTimeout)
	defer cancel()
	_, err := s.consumer(ctx, topic)
	return err
}

// consumer makes sure the stream and the durable consumer of topic exist.
func (s *Subscriber) consumer(ctx context.Context, topic string) (js.Consumer, error) {
	if err := s.prov.ensure(ctx, topic); err != nil {
		return nil, err
	}
	cc := js.ConsumerConfig{
		Durable:       s.cfg.consumerFor(topic),
		AckPolicy:     js.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxAckPending: s.cfg.MaxAckPending,
		// The subscriber counts deliveries and dead-letters; the
		// server's own limit would drop a message with only an advisory.
		MaxDeliver:    -1,
		DeliverPolicy: js.DeliverAllPolicy,
	}
	if s.cfg.Stream != "" {
		cc.FilterSubject = topic
	}
	c, err := s.js.CreateOrUpdateConsumer(ctx, s.cfg.streamFor(topic), cc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: consumer %q of stream %q: %w", cc.Durable, s.cfg.streamFor(topic), err)
	}
	return c, nil
}

// Subscribe reads topic through its durable consumer. The channel is closed
// when ctx ends or the subscriber closes.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	ictx, cancel := context.WithTimeout(ctx, 2*callTimeout)
	cons, err := s.consumer(ictx, topic)
	cancel()
	if err != nil && ctx.Err() != nil {
		return nil, err
	}
	if err != nil {
		// The server may be coming back: the reader keeps trying.
		s.logger.Error("jetstream: cannot create the consumer yet; retrying", err, watermill.LogFields{"topic": topic})
	}
	sctx, stop := context.WithCancel(ctx)
	sub := &subscription{
		s:     s,
		topic: topic,
		ctx:   sctx,
		cons:  cons,
		out:   make(chan *message.Message),
		held:  map[uint64]*entry{},
	}
	sub.sched = lane.NewScheduler[*entry](sctx, sub.out, sub, lane.Config{
		Lanes: s.cfg.Lanes, RetryBackoff: s.cfg.RetryBackoff, MaxRetryBackoff: s.cfg.MaxRetryBackoff,
	})
	s.subs.Add(1)
	var workers, bg sync.WaitGroup
	sub.sched.Start(&workers)
	bg.Go(sub.readLoop)
	bg.Go(sub.progressLoop)
	bg.Go(sub.depthLoop)
	go func() {
		defer s.subs.Done()
		select {
		case <-sctx.Done():
		case <-s.closing:
			stop()
		}
		bg.Wait()
		workers.Wait()
		sub.retries.Wait()
		sub.release()
		close(sub.out)
		stop()
	}()
	return sub.out, nil
}

// Close ends every subscription and returns once their channels are
// closed. It closes the connection only if the subscriber made it.
// Idempotent.
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
	// The nacks of what the subscriptions held are on their way.
	_ = s.nc.FlushTimeout(time.Second)
	if s.owns {
		s.nc.Close()
	}
	return nil
}
