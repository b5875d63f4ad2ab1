package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/switchyard-go/switchyard/transports"
)

// Close stops accepting messages, waits (within bus.close_timeout) until
// every accepted message was handed to a transport and in-process transports
// have handed theirs to consumers, then stops the handlers and closes the
// transports. It returns an error wrapping ErrCloseTimeout that says how many
// accepted messages were not delivered, if any, and the errors of transports
// that failed to close. Close is idempotent.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		close(b.closing)
		b.closeErr = b.close()
		close(b.closedCh)
	})
	return b.closeErr
}

func (b *Bus) close() error {
	b.mu.Lock()
	started := b.started
	b.mu.Unlock()
	timeout := b.cfg.Bus.CloseTimeout
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	var errs []error
	errs = append(errs, b.closeCoalescing(ctx, started))
	if started {
		// Run may not have subscribed the router to the ingress yet (Close
		// right after Run, or Run given a context that already ended):
		// Settle waits only for queues that have a subscriber, and would
		// leave the accepted events to be published after the handlers
		// stopped.
		select {
		case <-b.router.Running():
		case <-b.routerEnded:
		case <-ctx.Done():
		}
		if err := b.ingress.Settle(ctx); err != nil {
			errs = append(errs, fmt.Errorf("ingress: %w", err))
		}
		drain := func(name string, side any) {
			if dr, ok := side.(transports.Drainer); ok {
				if err := dr.Drain(ctx); err != nil {
					errs = append(errs, fmt.Errorf("transport %q: %w", name, err))
				}
			}
		}
		for name, t := range b.transports {
			drain(name, t.Publisher)
		}
		// Subscribers that hold what they accepted (an HTTP receiver's
		// queue of requests answered 202) hand it to the handlers while
		// the router still runs them: closing the router first would
		// leave them nobody to deliver to.
		for name, t := range b.transports {
			if any(t.Subscriber) != any(t.Publisher) {
				drain(name, t.Subscriber)
			}
		}
		routerDone := make(chan error, 1)
		go func() { routerDone <- b.router.Close() }()
		errs = append(errs, b.stopHandlers(ctx))
		select {
		case err := <-routerDone:
			errs = append(errs, err)
		case <-ctx.Done():
			// Handlers still running: closing the transports below ends them.
			defer func() { <-routerDone }()
		}
	}
	closeErrs := []error{b.ingress.Close(), b.closeTransports()}
	if n := b.ingress.Stats().Discarded; n > 0 {
		errs = append(errs, fmt.Errorf("%d accepted messages were never handed to a transport", n))
	}
	// What the steps above could not finish in time is a timeout; a
	// transport that fails to close is reported as it is.
	if err := errors.Join(errs...); err != nil {
		return b.scrub(fmt.Errorf("%w (%s): %w", ErrCloseTimeout, timeout, errors.Join(append(errs, closeErrs...)...)))
	}
	return b.scrub(errors.Join(closeErrs...))
}

// closeTransports closes every transport, logs what fails and returns it:
// a subscriber's Close can report accepted messages it could not deliver.
func (b *Bus) closeTransports() error {
	var errs []error
	closeSide := func(name, side string, c interface{ Close() error }) {
		if err := c.Close(); err != nil {
			b.logger.Error("Cannot close transport "+side, err, watermill.LogFields{"transport": name})
			errs = append(errs, fmt.Errorf("transport %q: %w", name, err))
		}
	}
	for name, t := range b.transports {
		if t.Publisher != nil {
			closeSide(name, "publisher", t.Publisher)
		}
		if t.Subscriber != nil && any(t.Subscriber) != any(t.Publisher) {
			closeSide(name, "subscriber", t.Subscriber)
		}
	}
	return errors.Join(errs...)
}
