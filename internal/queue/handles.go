package queue

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Subscriber returns a subscriber of the broker in consumer group group.
// Closing it ends its own subscriptions, not the broker.
func (b *Broker) Subscriber(group string) *Subscriber {
	return &Subscriber{broker: b, group: group, done: make(chan struct{})}
}

// Publisher returns a publisher of the broker. Closing it makes its own
// Publish fail with ErrClosed, not the broker's.
func (b *Broker) Publisher() *Publisher {
	return &Publisher{broker: b, done: make(chan struct{})}
}

// Subscriber is a handle on a Broker for one consumer group.
type Subscriber struct {
	broker *Broker
	group  string
	once   sync.Once
	done   chan struct{}
	mu     sync.Mutex // orders subs.Add before Close's subs.Wait
	closed bool
	subs   sync.WaitGroup
}

// Subscribe subscribes to topic in the subscriber's group.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.broker.subscribe(ctx, topic, s.group, s)
}

// SubscribeInitialize creates the topic and the subscriber's group.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	_, err := s.broker.group(topic, s.group)
	return err
}

// Close ends the subscriber's subscriptions and returns once their channels
// are closed. Idempotent.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.once.Do(func() { close(s.done) })
	s.subs.Wait()
	return nil
}

func (s *Subscriber) closing() <-chan struct{} {
	if s == nil {
		return nil
	}
	return s.done
}

// Publisher is a handle on a Broker.
type Publisher struct {
	broker *Broker
	once   sync.Once
	done   chan struct{}
}

// Publish publishes to the broker; see Broker.Publish.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	select {
	case <-p.done:
		return ErrClosed
	default:
	}
	return p.broker.Publish(topic, msgs...)
}

// Close makes further Publish calls fail. Idempotent.
func (p *Publisher) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

var (
	_ message.Publisher            = (*Broker)(nil)
	_ message.Subscriber           = (*Broker)(nil)
	_ message.SubscribeInitializer = (*Broker)(nil)
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
	_ message.Publisher            = (*Publisher)(nil)
)
