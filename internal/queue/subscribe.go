package queue

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
)

// SubscribeInitialize creates topic and the configured consumer group, so
// messages published from now on are kept for the group.
func (b *Broker) SubscribeInitialize(topic string) error {
	_, err := b.group(topic, b.cfg.ConsumerGroup)
	return err
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
