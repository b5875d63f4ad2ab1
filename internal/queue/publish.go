package queue

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/internal/lane"
)

// entry is a message as published; each delivery is built from it.
type entry struct {
	uuid     string
	payload  message.Payload
	meta     []string // key, value, key, value…
	ctx      context.Context
	attempts int // deliveries so far
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
