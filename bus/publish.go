package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/switchyard-go/switchyard/internal/monotime"
	"github.com/switchyard-go/switchyard/internal/queue"
)

// Publish accepts messages for topic into the ingress and returns; a
// transport takes them later. It blocks while the ingress is full (on_full:
// block) until a message's context ends, or fails with ErrQueueFull (reject).
// The messages accepted before an error stay accepted. A message's
// cancellation does not reach beyond Publish; its context values do.
func (b *Bus) Publish(topic string, msgs ...*message.Message) error {
	if b.closed.Load() {
		return ErrClosed
	}
	for _, m := range msgs {
		caller := m.Context()
		if err := b.accept(caller, m, newDelivery(caller, topic, false)); err != nil {
			return err
		}
	}
	return nil
}

// PublishSync publishes messages and waits until a transport accepted every
// one, or returns the final error of those that failed after their retries
// (dead-lettered, wrapping the transport's error). An event a stage drops
// (see Use) returns ErrDropped at once; one coalesced away returns nil, as
// a later event of its key carries its state. If ctx ends first it
// returns ctx's error; messages already accepted may still be delivered.
// If Close ends first, an event not settled by then returns ErrClosed.
func (b *Bus) PublishSync(ctx context.Context, topic string, msgs ...*message.Message) error {
	if b.closed.Load() {
		return ErrClosed
	}
	ds := make([]*delivery, 0, len(msgs))
	for _, m := range msgs {
		d := newDelivery(ctx, topic, true)
		if err := b.accept(ctx, m, d); err != nil {
			return err
		}
		ds = append(ds, d)
	}
	var errs []error
	for _, d := range ds {
		select {
		case err := <-d.result:
			errs = append(errs, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-b.closedCh:
			// Close discarded what it could not hand on in time, and
			// returned how many: waiting on for them would wait forever.
			select {
			case err := <-d.result:
				errs = append(errs, err)
			default:
				errs = append(errs, fmt.Errorf("%w before a transport took the event", ErrClosed))
			}
		}
	}
	return errors.Join(errs...)
}

// accept puts m into the ingress, waiting within ctx, with d as its context
// in the pipeline; m keeps its own.
func (b *Bus) accept(ctx context.Context, m *message.Message, d *delivery) error {
	if b.metrics != nil {
		d.accepted = monotime.Now()
	}
	caller := m.Context()
	m.SetContext(d)
	err := b.ingress.PublishContext(ctx, ingressTopic, m)
	m.SetContext(caller)
	return b.admissionError(err)
}

func (b *Bus) admissionError(err error) error {
	switch {
	case errors.Is(err, queue.ErrQueueFull):
		return fmt.Errorf("%w: %w", ErrQueueFull, err)
	case errors.Is(err, queue.ErrClosed):
		return ErrClosed
	}
	return err
}

// panicError is a pipeline stage's panic, as Watermill's Recoverer reports
// it. Its message is the panic's value alone, redacted, as it travels in
// dead_letter_reason and to PublishSync's caller; the stack is logged.
type panicError struct {
	rec middleware.RecoveredPanicError
}

func (e *panicError) Error() string {
	return redactString(fmt.Sprintf("bus: pipeline stage panicked: %v", e.rec.V))
}

func (e *panicError) Unwrap() error { return e.rec }

// outbound is what dispatch needs of a transport that publishes.
type outbound struct {
	pub     message.Publisher
	metrics []durationMetric // by event type index; nil without metrics
}

// dispatch is the innermost stage: it publishes on the transport the route
// named and settles a PublishSync.
func (b *Bus) dispatch(m *message.Message) error {
	d := deliveryFrom(m.Context())
	if d == nil {
		return errors.New("bus: message reached dispatch without its delivery context")
	}
	name := m.Metadata.Get(MetaTransport)
	out, ok := b.outbound[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownTransport, name)
	}
	// A slice made here would escape through the interface call, an
	// allocation per event.
	d.msgs[0] = m
	var err error
	if out.metrics != nil {
		start := monotime.Now()
		err = out.pub.Publish(d.topic, d.msgs[:]...)
		out.metrics[b.metrics.typeIndex(m.Metadata.Get(MetaEventType))].observe(monotime.Now()-start, err)
	} else {
		err = out.pub.Publish(d.topic, d.msgs[:]...)
	}
	if err != nil {
		// The entry stage records it, as the reason if it is dead-lettered.
		return b.scrub(fmt.Errorf("bus: publish to %q on %q: %w", d.topic, name, err))
	}
	d.settle(nil)
	return nil
}

// enter is the first stage: it observes how long the event waited in the
// ingress, on its first pass, and turns a panic of the stages after it
// into a panicError. The ingress retries a failed event, then dead-letters
// it with the last error as the reason.
func (b *Bus) enter(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) (msgs []*message.Message, err error) {
		d := deliveryFrom(m.Context())
		if b.metrics != nil && d != nil && !d.waitObserved {
			d.waitObserved = true
			b.metrics.ingressWait.observe(monotime.Now()-d.accepted, nil)
		}
		panicked := true
		defer func() {
			if r := recover(); r != nil || panicked {
				p := &panicError{rec: middleware.RecoveredPanicError{V: r, Stacktrace: string(debug.Stack())}}
				b.logger.Error("Pipeline stage panicked", p, watermill.LogFields{
					"message_uuid": m.UUID, "stack": p.rec.Stacktrace,
				})
				err = p
			}
			if err != nil {
				err = b.scrub(err)
				if d != nil {
					d.failed(err) // the reason, if it is dead-lettered
				}
			}
		}()
		growStack()
		if d != nil {
			d.held = false
		}
		msgs, err = h(m)
		panicked = false
		if err == nil && d != nil && !d.held {
			d.settle(ErrDropped) // a no-op if it was published
		}
		return msgs, err
	}
}

// stackReserve is how much stack growStack makes room for: enough for the
// pipeline's stages and an in-process transport's publish below them.
const stackReserve = 8 << 10

// growStack grows the goroutine's stack while it is shallow. The Router
// runs each message in a new goroutine, with a small stack that the stages
// would grow deep down, where copying it costs more (see runtime.newstack
// in a CPU profile of the InProcess benchmark).
//
//go:noinline
func growStack() {
	var frame [stackReserve]byte
	keepFrame(&frame)
}

//go:noinline
func keepFrame(*[stackReserve]byte) {}

// deadLetter takes a message the ingress gave up on.
func (b *Bus) deadLetter(ctx context.Context, _ string, m *message.Message, attempts int) error {
	d := deliveryFrom(m.Context())
	topic, cause := "", error(nil)
	if d != nil {
		topic, cause = d.topic, d.err()
	}
	if cause == nil {
		cause = fmt.Errorf("nacked %d times", attempts)
	}
	cause = b.scrub(cause)
	dl := message.NewMessage(m.UUID, m.Payload)
	maps.Copy(dl.Metadata, m.Metadata)
	dl.Metadata[MetaDeadLetterReason] = cause.Error()
	dl.Metadata[MetaDeadLetterTopic] = topic
	dl.Metadata[MetaDeadLetterAttempts] = strconv.Itoa(attempts)
	dl.SetContext(ctx)
	dlc := b.cfg.Bus.DeadLetter
	if err := b.transports[dlc.Transport].Publisher.Publish(dlc.Topic, dl); err != nil {
		return b.scrub(fmt.Errorf("bus: dead-letter to %q on %q: %w", dlc.Topic, dlc.Transport, err))
	}
	b.logger.Error("Message dead-lettered", cause, watermill.LogFields{
		"message_uuid": m.UUID, "topic": topic, "attempts": attempts,
	})
	settle(m, fmt.Errorf("%w after %d attempts: %w", ErrDeadLettered, attempts, cause))
	return nil
}
