package bus

import (
	"errors"
	"fmt"

	"github.com/switchyard-go/switchyard/transports"
)

// Sentinel errors, wrapped with %w and checked with errors.Is.
var (
	// ErrClosed: the bus is closed (or closing) and accepts nothing more.
	ErrClosed = errors.New("bus: closed")
	// ErrQueueFull: the ingress had no room (on_full: reject), or none came
	// before the message context's deadline (on_full: block).
	ErrQueueFull = errors.New("bus: queue full")
	// ErrCloseTimeout: Close could not hand every accepted message on within
	// bus.close_timeout; the error says how many were left.
	ErrCloseTimeout = errors.New("bus: close timeout")
	// ErrDeadLettered: a message could not be published after its retries and
	// went to the dead-letter destination; the transport's error is wrapped too.
	ErrDeadLettered = errors.New("bus: dead-lettered")
	// ErrDropped: a pipeline stage dropped the event (it returned no
	// messages and no error), so no transport took it. PublishSync returns
	// it at once for each such event.
	ErrDropped = errors.New("bus: dropped by a pipeline stage")
	// ErrUnknownTransport: a route named a transport that is not configured.
	ErrUnknownTransport = errors.New("bus: unknown transport")
	// ErrRunning: Run was called twice, or Use after Run.
	ErrRunning = errors.New("bus: already running")
	// ErrNoInbound: Handle or Subscribe on a bus that consumes from no
	// transport (consume.from is empty, or no routed transport subscribes).
	ErrNoInbound = errors.New("bus: no inbound transport")
)

var errNoInbound = fmt.Errorf("%w: set consume.from to transports that can subscribe", ErrNoInbound)

// fieldConfigErrors turns the configuration checks in err
// (*transports.FieldError, *ConfigError) into *ConfigErrors named by their
// full key under prefix (transports.redis.maxlen), so that errors.Is(err,
// ErrInvalidConfig) holds and a transport's bad key reads as the bus's
// own. What else err holds follows them, after what: errors.Is and
// errors.As see all of it. Without such checks, it is err after what.
func fieldConfigErrors(prefix, what string, err error) error {
	var found, others []error
	var walk func(error)
	walk = func(err error) {
		_, field := errors.AsType[*transports.FieldError](err)
		_, config := errors.AsType[*ConfigError](err)
		multi, isMulti := err.(interface{ Unwrap() []error })
		switch e := err.(type) {
		case *transports.FieldError:
			found = append(found, &ConfigError{Key: joinKey(prefix, e.Key), Reason: redactString(e.Reason), err: e})
		case *ConfigError:
			found = append(found, e)
		default:
			switch {
			case !field && !config:
				others = append(others, err)
			case isMulti:
				// The wrapping text ("redisstream: config: ") says less
				// than the keys that replace it.
				for _, inner := range multi.Unwrap() {
					walk(inner)
				}
			default:
				walk(errors.Unwrap(err))
			}
		}
	}
	walk(err)
	if len(found) == 0 {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(others) > 0 {
		found = append(found, fmt.Errorf("%s: %w", what, errors.Join(others...)))
	}
	return joinConfigErrors(found, nil)
}

// scrubError returns err with a redacted message (see redactString), from
// which every piece of secrets is removed too; errors.Is and errors.As still
// see everything err wraps. For errors that may quote a transport's
// configuration (URLs with credentials), before they leave the package.
func scrubError(err error, secrets *secretSet) error {
	switch e := err.(type) {
	case nil:
		return nil
	case *configErrorList:
		return &configErrorList{errs: e.errs, secrets: secrets.union(e.secrets)}
	case *ConfigError:
		// A list, so that the key in front of the reason is scrubbed too.
		return &configErrorList{errs: []error{e}, secrets: secrets}
	}
	return &redactedError{err: err, secrets: secrets}
}

type redactedError struct {
	err     error
	secrets *secretSet
}

func (e *redactedError) Error() string { return e.secrets.scrub(redactString(e.err.Error())) }
func (e *redactedError) Unwrap() error { return e.err }

// configErrorList joins configuration errors like errors.Join, and removes
// from its message every piece of the configuration's secrets that a
// reason might quote.
type configErrorList struct {
	errs    []error
	secrets *secretSet
}

// joinConfigErrors returns nil without errors. It scrubs the reason of
// each *ConfigError in errs' trees, so that one printed on its own is as
// safe as the whole.
func joinConfigErrors(errs []error, secrets *secretSet) error {
	if len(errs) == 0 {
		return nil
	}
	e := &configErrorList{errs: errs, secrets: secrets}
	forConfigErrors(e, func(ce *ConfigError) { ce.Reason = secrets.scrub(ce.Reason) })
	return e
}

func (e *configErrorList) Error() string {
	return e.secrets.scrub(redactString(errors.Join(e.errs...).Error()))
}

func (e *configErrorList) Unwrap() []error { return e.errs }

// forConfigErrors calls f on each *ConfigError of err's tree that joined
// errors lead to.
func forConfigErrors(err error, f func(*ConfigError)) {
	switch e := err.(type) {
	case *ConfigError:
		f(e)
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			forConfigErrors(inner, f)
		}
	}
}
