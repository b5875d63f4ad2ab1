package httptransport

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

var errNoSubscriber = errors.New("httptransport: no subscriber for the topic")

// topic is what a Receiver knows of one topic: its subscriptions and, in
// queue mode, the messages it accepted and has not yet seen acked.
type topic struct {
	name string

	mu sync.Mutex
	// subs is replaced, never modified, so a reader may keep a copy.
	subs []*subscription
	// changed is closed, and replaced, whenever subs changes.
	changed chan struct{}
	queue   []queued
	// popped is closed, and replaced, whenever a message leaves queue.
	popped  chan struct{}
	pumping bool
}

func newTopic(name string) *topic {
	return &topic{name: name, changed: make(chan struct{}), popped: make(chan struct{})}
}

// pop removes the message at the head of the queue.
func (t *topic) pop() {
	t.mu.Lock()
	t.queue[0] = queued{}
	t.queue = t.queue[1:]
	close(t.popped)
	t.popped = make(chan struct{})
	t.mu.Unlock()
}

// notifyLocked wakes whoever waits for subs to change. t.mu is held.
func (t *topic) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// queued is a message a queue-mode Receiver answered 202 for. Each delivery
// makes a new Message of it, which a handler's changes never reach.
type queued struct {
	uuid     string
	metadata message.Metadata
	payload  []byte
}

func (q queued) message() *message.Message {
	m := message.NewMessage(q.uuid, q.payload)
	maps.Copy(m.Metadata, q.metadata)
	return m
}

// subscription is one Subscribe call: its channel, closed once the
// subscription ends and nothing is being sent on it.
type subscription struct {
	topic *topic
	owner *Subscriber
	out   chan *message.Message
	done  chan struct{}

	mu        sync.Mutex
	closed    bool
	senders   sync.WaitGroup
	stopAfter func() bool
	once      sync.Once
}

// pin reserves the right to send on s.out until unpin; false once s ended.
func (s *subscription) pin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.senders.Add(1)
	return true
}

func (s *subscription) unpin() { s.senders.Done() }

// end removes s from its topic and closes its channel once no send is in
// flight. Every call, concurrent or not, returns once it is closed.
func (s *subscription) end() {
	s.once.Do(func() {
		t := s.topic
		t.mu.Lock()
		t.subs = slices.DeleteFunc(slices.Clone(t.subs), func(o *subscription) bool { return o == s })
		t.notifyLocked()
		t.mu.Unlock()

		s.mu.Lock()
		s.closed = true
		stop := s.stopAfter
		s.mu.Unlock()
		close(s.done)
		s.senders.Wait()
		close(s.out)
		if stop != nil {
			stop()
		}
		if s.owner != nil {
			s.owner.forget(s)
		}
	})
}

// offer hands msg to one subscription of t, whichever reads first, and
// returns it. With no subscription it returns errNoSubscriber at once, or
// with wait waits for one. It gives up when ctx ends.
func (t *topic) offer(ctx context.Context, msg *message.Message, wait bool) (*subscription, error) {
	var pinnedBuf [4]*subscription
	for {
		t.mu.Lock()
		subs, changed := t.subs, t.changed
		t.mu.Unlock()

		pinned := pinnedBuf[:0]
		for _, s := range subs {
			if s.pin() {
				pinned = append(pinned, s)
			}
		}
		if len(pinned) == 0 {
			if !wait {
				return nil, errNoSubscriber
			}
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if s := selectSend(ctx, pinned, changed, msg); s != nil {
			return s, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// selectSend sends msg on the first of subs' channels that is read, and
// unpins them all; nil when a subscription ended, subs changed or ctx ended.
func selectSend(ctx context.Context, subs []*subscription, changed <-chan struct{}, msg *message.Message) *subscription {
	defer func() {
		for _, s := range subs {
			s.unpin()
		}
	}()
	cases := make([]reflect.SelectCase, 0, 2*len(subs)+2)
	value := reflect.ValueOf(msg)
	for _, s := range subs {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectSend, Chan: reflect.ValueOf(s.out), Send: value})
	}
	for _, s := range subs {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(s.done)})
	}
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(changed)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
	)
	chosen, _, _ := reflect.Select(cases)
	if chosen < len(subs) {
		return subs[chosen]
	}
	return nil
}
