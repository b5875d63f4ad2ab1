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
		fn := h.fn
		if b.metrics != nil {
			fn = b.observeDelivery(in.name, fn)
		}
		c := &consumer{
			logger:         b.logger,
			handler:        fn,
			handlerName:    name,
			subscriberName: structName(in.sub),
			topic:          h.topic,
		}
		ctx, cancel := context.WithCancel(b.runCtx)
		ch, err := in.sub.Subscribe(ctx, h.topic)
		if err != nil {
			cancel()
			return fmt.Errorf("bus: subscribe %s to %q on %q: %w", name, h.topic, in.name, err)
		}
		c.stop = cancel
		// The lines Watermill's Router logs for a handler.
		c.logger = c.logger.With(watermill.LogFields{"subscriber_name": name, "topic": h.topic})
		c.logger.Info("Starting handler", nil)
		c.start(ch)
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
		if err := c.wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// observeDelivery wraps a Handle handler: it observes the delivery latency
// of each event, from its published_at to the handler's start, unless the
// transport is not timed (in process, without
// metrics.in_process_delivery_latency).
func (b *Bus) observeDelivery(transport string, h message.NoPublishHandlerFunc) message.NoPublishHandlerFunc {
	t, ok := b.metrics.transports[transport]
	if !ok || b.metrics.delivery[t] == nil {
		return h
	}
	return func(m *message.Message) error {
		b.metrics.delivered(t, m.Metadata.Get(MetaEventType), m.Metadata.Get(MetaPublishedAt), time.Now().UnixNano())
		return h(m)
	}
}

// consumer runs one Bus.Handle handler on one inbound subscription, as a
// Watermill Router's consumer handler does (ack on nil, nack on an error or
// a panic, handler context values set, as many messages at once as the
// subscriber hands out), without a goroutine, a log-field map and context
// values per message: its workers are reused. A worker that takes a
// message while no other waits for one starts another first, so a slow
// handler never holds back the next message; a worker that finds
// maxWaiting others waiting after handling one ends.
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

// maxWaiting is how many workers may wait for a message before one that
// has just handled a message ends: two, so that a consumer handling one
// message at a time keeps its two workers instead of starting one per
// message.
const maxWaiting = 2

func (c *consumer) start(ch <-chan *message.Message) {
	c.ch = ch
	c.done = make(chan struct{})
	c.workers.Add(1)
	go c.work()
	go func() {
		c.workers.Wait()
		c.logger.Info("Subscriber stopped", nil)
		close(c.done)
	}()
}

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
			c.logger.Error("Panic recovered in handler. Stack: "+string(debug.Stack()),
				fmt.Errorf("%v", r), c.fields(m))
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

// wait waits, within ctx, until the subscription ended and every message
// taken was handled.
func (c *consumer) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bus: handler %s still running: %w", c.handlerName, ctx.Err())
	}
}

// handlerContext is a handled message's context: the one its transport gave
// it, and the values Watermill's Router sets for a consumer handler
// (message.HandlerNameFromCtx and its siblings), in one allocation.
type handlerContext struct {
	context.Context
	c *consumer
}

func (h *handlerContext) Value(key any) any {
	switch key {
	case routerKeys.handlerName:
		return h.c.handlerName
	case routerKeys.subscriberName:
		return h.c.subscriberName
	case routerKeys.subscribeTopic:
		return h.c.topic
	case routerKeys.publisherName:
		return noPublisherName
	}
	return h.Context.Value(key)
}

// noPublisherName is the publisher name Watermill's Router gives a handler
// that does not publish.
const noPublisherName = "message.disabledPublisher"

// routerKeys are the context keys of Watermill's Router, which it does not
// export: each is found by asking its accessor once.
var routerKeys = struct {
	handlerName, subscriberName, subscribeTopic, publisherName any
}{
	handlerName:    keyOf(func(ctx context.Context) { message.HandlerNameFromCtx(ctx) }),
	subscriberName: keyOf(func(ctx context.Context) { message.SubscriberNameFromCtx(ctx) }),
	subscribeTopic: keyOf(func(ctx context.Context) { message.SubscribeTopicFromCtx(ctx) }),
	publisherName:  keyOf(func(ctx context.Context) { message.PublisherNameFromCtx(ctx) }),
}

// keyOf returns the key read reads from its context.
func keyOf(read func(context.Context)) any {
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
	chans := make([]<-chan *message.Message, 0, len(b.inbound))
	for _, in := range b.inbound {
		ch, err := in.sub.Subscribe(ctx, topic)
		if err != nil {
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
	go func() { wg.Wait(); close(out) }()
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
