package main

import (
	"encoding/json"
	"sync"
)

// sseEvent is one Server-Sent Event: its name and its JSON data.
type sseEvent struct {
	name string
	data []byte
}

// feed fans what the hub receives, and the routing state, out to the
// pages watching: each watcher gets a buffered channel of its own. A
// watcher that falls a buffer behind is dropped (its channel closed); the
// page's EventSource connects again and gets the recent history first.
type feed struct {
	mu       sync.Mutex
	watchers map[chan sseEvent]struct{}
	history  []sseEvent // the last historySize deliveries of chat messages
	routing  *sseEvent  // the last routing state
	closed   bool
}

const (
	historySize   = 50
	watcherBuffer = 256
)

func newFeed() *feed {
	return &feed{watchers: map[chan sseEvent]struct{}{}}
}

// watch returns a channel that first holds the recent history and the
// routing state, then every event; it is closed by unwatch, by close, or
// when the watcher falls behind. ok is false once the feed is closed.
func (f *feed) watch() (ch chan sseEvent, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, false
	}
	ch = make(chan sseEvent, watcherBuffer+historySize+1)
	for _, e := range f.history {
		ch <- e
	}
	if f.routing != nil {
		ch <- *f.routing
	}
	f.watchers[ch] = struct{}{}
	return ch, true
}

func (f *feed) unwatch(ch chan sseEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.watchers[ch]; ok {
		delete(f.watchers, ch)
		close(ch)
	}
}

// delivery sends a delivery to every watcher; chat messages are kept in
// the history too.
func (f *feed) delivery(d delivery) {
	f.send("delivery", d, d.Type == EventChatMessage)
}

// routingState sends the routing state to every watcher and keeps it for
// the next ones.
func (f *feed) routingState(s routingState) {
	f.send("routing", s, false)
}

func (f *feed) send(name string, v any, keep bool) {
	data, err := json.Marshal(v)
	if err != nil {
		return // the types sent marshal by construction
	}
	e := sseEvent{name: name, data: data}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	switch {
	case name == "routing":
		f.routing = &e
	case keep:
		if len(f.history) == historySize {
			f.history = append(f.history[:0], f.history[1:]...)
		}
		f.history = append(f.history, e)
	}
	for ch := range f.watchers {
		select {
		case ch <- e:
		default:
			delete(f.watchers, ch)
			close(ch)
		}
	}
}

// close ends every watch, so that the streams end and the server can shut
// down; later events are dropped.
func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for ch := range f.watchers {
		delete(f.watchers, ch)
		close(ch)
	}
}

// lastRouting returns the JSON of the last routing state, nil before the
// first.
func (f *feed) lastRouting() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.routing == nil {
		return nil
	}
	return f.routing.data
}
