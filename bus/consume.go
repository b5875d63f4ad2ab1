package bus

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Handle consumes topic from every inbound transport (consume.from) with h.
// A message h returns an error for is nacked and redelivered by its
// transport. Handle may be called before or after Run.
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
	b.addHandler(spec)
	return b.scrub(b.router.RunHandlers(b.runCtx))
}

func (b *Bus) addHandler(h handlerSpec) {
	for _, in := range b.inbound {
		name := h.name
		if len(b.inbound) > 1 {
			name += "@" + in.name
		}
		fn := h.fn
		if b.metrics != nil {
			fn = b.observeDelivery(in.name, fn)
		}
		b.router.AddConsumerHandler(name, h.topic, in.sub, fn)
	}
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
