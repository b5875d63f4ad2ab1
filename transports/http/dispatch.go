package httptransport

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

var errNoSubscriber = errors.New("httptransport: no subscriber for the topic")

// topic is what a Receiver knows of one topic: its subscriptions and, in
// queue mode, the messages it answered 202 for and has not seen acked.
type topic struct {
	name string

	mu sync.Mutex
	// subs is replaced, never modified, so a reader may keep a copy.
	subs []*subscription
	// changed is closed, and replaced, whenever subs changes and whenever
	// a message leaves queue.
	changed chan struct{}
	queue   []*message.Message
	pumping bool
}

// pop removes the message at the head of the queue.
func (t *topic) pop() {
	t.mu.Lock()
	t.queue[0] = nil
	t.queue = t.queue[1:]
	t.notifyLocked()
	t.mu.Unlock()
}

// notifyLocked wakes whoever waits on changed. t.mu is held.
func (t *topic) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// subscription is one Subscribe call.
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

// pin reserves the right to send on s.out until senders.Done; false once
// s ended.
func (s *subscription) pin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.senders.Add(1)
	return true
}

// end removes s from its topic and closes its channel once no send is in
// flight; every call returns once it is closed.
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
		if o := s.owner; o != nil {
			o.mu.Lock()
			delete(o.subs, s)
			o.mu.Unlock()
		}
	})
}

// offer hands msg to one subscription of t, whichever reads first, and
// returns it. With no subscription it returns errNoSubscriber at once, or
// with wait waits for one. It gives up when ctx ends.
func (t *topic) offer(ctx context.Context, msg *message.Message, wait bool) (*subscription, error) {
	recv := func(c <-chan struct{}) reflect.SelectCase {
		return reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)}
	}
	for {
		t.mu.Lock()
		subs, changed := t.subs, t.changed
		t.mu.Unlock()

		// A send on each subscription pinned, then the end of the wait:
		// changed (which a subscription that ends closes too), ctx.
		var pinned []*subscription
		var cases []reflect.SelectCase
		for _, s := range subs {
			if s.pin() {
				pinned = append(pinned, s)
				cases = append(cases, reflect.SelectCase{Dir: reflect.SelectSend, Chan: reflect.ValueOf(s.out), Send: reflect.ValueOf(msg)})
			}
		}
		if len(pinned) == 0 && !wait {
			return nil, errNoSubscriber
		}
		chosen, _, _ := reflect.Select(append(cases, recv(changed), recv(ctx.Done())))
		for _, s := range pinned {
			s.senders.Done()
		}
		if chosen < len(pinned) {
			return pinned[chosen], nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}
