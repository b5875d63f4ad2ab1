package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Handle consumes topic from every inbound transport (consume.from) with h.
// A message h returns an error for, or panics on, is nacked and redelivered
// by its transport; h returning nil acks it. Messages are handled
// concurrently, as many at once as the transport hands out. Handle may be
// called before or after Run.
func (b *Bus) Handle(name, topic string, h message.NoPublishHandlerFunc) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return ErrClosed
	}
	if len(b.inbound) == 0 {
		return errNoInbound
	}
	spec := handlerSpec{name: name, topic: topic, fn: h}
	b.handlers = append(b.handlers, spec)
	if !b.started {
		return nil
	}
	return b.scrub(b.startHandler(spec))
}

// startHandler subscribes h to its topic on every inbound transport and
// starts consuming. Called with b.mu held, once running.
func (b *Bus) startHandler(h handlerSpec) error {
	for _, in := range b.inbound {
		name := h.name
		if len(b.inbound) > 1 {
			name += "@" + in.name
		}
		ctx, cancel := context.WithCancel(b.runCtx)
		ch, err := in.sub.Subscribe(ctx, h.topic)
		if err != nil {
			cancel()
			return fmt.Errorf("bus: subscribe %s to %q on %q: %w", name, h.topic, in.name, err)
		}
		c := &consumer{
			// The fields and lines Watermill's Router logs for a handler.
			logger:         b.logger.With(watermill.LogFields{"subscriber_name": name, "topic": h.topic}),
			handler:        b.observeDelivery(in.name, h.fn),
			handlerName:    name,
			subscriberName: structName(in.sub),
			topic:          h.topic,
			stop:           cancel,
			ch:             ch,
			done:           make(chan struct{}),
		}
		c.logger.Info("Starting handler", nil)
		c.workers.Add(1)
		go c.work()
		go func() {
			c.workers.Wait()
			c.logger.Info("Subscriber stopped", nil)
			close(c.done)
		}()
		b.consumers = append(b.consumers, c)
	}
	return nil
}

// stopHandlers ends every handler's subscription and waits, within ctx,
// for the messages being handled.
func (b *Bus) stopHandlers(ctx context.Context) error {
	b.mu.Lock()
	consumers := b.consumers
	b.mu.Unlock()
	for _, c := range consumers {
		c.stop()
	}
	for _, c := range consumers {
		select {
		case <-c.done:
		case <-ctx.Done():
			return fmt.Errorf("bus: handler %s still running: %w", c.handlerName, ctx.Err())
		}
	}
	return nil
}

// observeDelivery wraps a Handle handler to observe each event's delivery
// latency, from its published_at to the handler's start, unless the
// transport is not timed (see metrics.in_process_delivery_latency).
func (b *Bus) observeDelivery(transport string, h message.NoPublishHandlerFunc) message.NoPublishHandlerFunc {
	if b.metrics == nil {
		return h
	}
	t, ok := b.metrics.transports[transport]
	if !ok || b.metrics.delivery[t] == nil {
		return h
	}
	return func(m *message.Message) error {
		b.metrics.delivered(t, m.Metadata.Get(MetaEventType), m.Metadata.Get(MetaPublishedAt), time.Now().UnixNano())
		return h(m)
	}
}

// consumer runs one Bus.Handle handler on one inbound subscription as a
// Watermill Router's consumer handler does (ack on nil, nack on an error or
// a panic, the Router's context values, as many messages at once as the
// subscriber hands out), but on reused workers, without a goroutine, a
// log-field map and context values per message. A worker that takes a
// message while no other waits starts another first, so a slow handler
// never holds back the next message; one that finds maxWaiting others
// waiting after a message ends.
type consumer struct {
	logger                             watermill.LoggerAdapter
	handler                            message.NoPublishHandlerFunc
	handlerName, subscriberName, topic string
	stop                               context.CancelFunc
	ch                                 <-chan *message.Message
	waiting                            atomic.Int32 // workers waiting for a message
	workers                            sync.WaitGroup
	done                               chan struct{} // closed when every worker ended
}

// maxWaiting is two, so that a consumer handling one message at a time
// keeps its two workers instead of starting one per message.
const maxWaiting = 2

func (c *consumer) work() {
	defer c.workers.Done()
	for {
		c.waiting.Add(1)
		m, ok := <-c.ch
		if !ok {
			c.waiting.Add(-1)
			return
		}
		if c.waiting.Add(-1) == 0 {
			c.workers.Add(1)
			go c.work()
		}
		c.handle(m)
		if c.waiting.Load() >= maxWaiting {
			return
		}
	}
}

func (c *consumer) handle(m *message.Message) {
	defer func() {
		if r := recover(); r != nil {
			c.logger.Error("Panic recovered in handler. Stack: "+string(debug.Stack()), fmt.Errorf("%v", r), c.fields(m))
			m.Nack()
		}
	}()
	m.SetContext(&handlerContext{Context: m.Context(), c: c})
	if err := c.handler(m); err != nil {
		if !errors.Is(err, context.Canceled) {
			c.logger.Error("Handler returned error", err, c.fields(m))
		}
		m.Nack()
		return
	}
	m.Ack()
}

func (c *consumer) fields(m *message.Message) watermill.LogFields {
	return watermill.LogFields{"message_uuid": m.UUID, "handler_name": c.handlerName}
}

// handlerContext is a handled message's context: its transport's, with the
// values Watermill's Router sets for a consumer handler
// (message.HandlerNameFromCtx and its siblings), in one allocation.
type handlerContext struct {
	context.Context
	c *consumer
}

func (h *handlerContext) Value(key any) any {
	switch key {
	case routerKeys[0]:
		return h.c.handlerName
	case routerKeys[1]:
		return h.c.subscriberName
	case routerKeys[2]:
		return h.c.topic
	case routerKeys[3]:
		return "message.disabledPublisher" // the Router's name for no publisher
	}
	return h.Context.Value(key)
}

// routerKeys are the context keys of Watermill's Router, which it does not
// export: each is found by asking its accessor once.
var routerKeys = [...]any{
	keyOf(message.HandlerNameFromCtx), keyOf(message.SubscriberNameFromCtx),
	keyOf(message.SubscribeTopicFromCtx), keyOf(message.PublisherNameFromCtx),
}

// keyOf returns the key read reads from its context.
func keyOf(read func(context.Context) string) any {
	p := &keyProbe{Context: context.Background()}
	read(p)
	return p.key
}

type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	p.key = key
	return nil
}

// structName is the name Watermill's Router gives a subscriber.
func structName(v any) string {
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	return strings.TrimLeft(fmt.Sprintf("%T", v), "*")
}

// Subscribe subscribes to topic on every inbound transport and merges what
// they deliver into one channel, closed when all of theirs are.
func (b *Bus) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if len(b.inbound) == 0 {
		return nil, errNoInbound
	}
	if len(b.inbound) == 1 {
		ch, err := b.inbound[0].sub.Subscribe(ctx, topic)
		return ch, b.scrub(err)
	}
	// A failure ends the subscriptions made before it: nobody would read
	// them, and they would hold what they took from their transports.
	ctx, cancel := context.WithCancel(ctx)
	chans := make([]<-chan *message.Message, 0, len(b.inbound))
	for _, in := range b.inbound {
		ch, err := in.sub.Subscribe(ctx, topic)
		if err != nil {
			cancel()
			return nil, b.scrub(fmt.Errorf("bus: subscribe to %q on %q: %w", topic, in.name, err))
		}
		chans = append(chans, ch)
	}
	out := make(chan *message.Message)
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Go(func() {
			for m := range ch {
				out <- m
			}
		})
	}
	go func() { wg.Wait(); cancel(); close(out) }()
	return out, nil
}

// SubscribeInitialize initializes topic on the inbound transports that need it.
func (b *Bus) SubscribeInitialize(topic string) error {
	for _, in := range b.inbound {
		if si, ok := in.sub.(message.SubscribeInitializer); ok {
			if err := si.SubscribeInitialize(topic); err != nil {
				return b.scrub(err)
			}
		}
	}
	return nil
}
