package bus

import (
	"errors"
	"fmt"
	"strings"

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

// transportError is New's error for what the factory of transport name
// returned. The factory's configuration checks (*transports.FieldError,
// and the *ConfigErrors of its Settings.Decode) become *ConfigErrors named
// by their full key (transports.redis.maxlen), so that errors.Is(err,
// ErrInvalidConfig) holds and a user finds a transport's bad key as the
// bus's own. Whatever else the error holds follows them, after the
// transport's name, joined: errors.Is and errors.As see all of it.
func transportError(name string, err error) error {
	return fieldConfigErrors("transports."+name, fmt.Sprintf("bus: transport %q", name), err)
}

// fieldConfigErrors turns the *transports.FieldErrors of err into
// *ConfigErrors whose keys are under prefix; what else err holds follows
// them after what. Without field errors, it is err after what.
func fieldConfigErrors(prefix, what string, err error) error {
	var found, others []error
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *transports.FieldError:
			key := prefix
			if e.Key != "" {
				key += "." + e.Key
			}
			found = append(found, &ConfigError{Key: key, Reason: redactString(e.Reason), err: e})
		case *ConfigError:
			found = append(found, e)
		default:
			if !holdsConfigError(err) {
				others = append(others, err)
				return
			}
			// The wrapping text ("redisstream: config: ") says less than the
			// key that replaces it.
			if multi, ok := err.(interface{ Unwrap() []error }); ok {
				for _, inner := range multi.Unwrap() {
					walk(inner)
				}
				return
			}
			walk(errors.Unwrap(err))
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

// holdsConfigError reports whether err's tree holds a *transports.FieldError
// or a *ConfigError.
func holdsConfigError(err error) bool {
	if _, ok := errors.AsType[*transports.FieldError](err); ok {
		return true
	}
	_, ok := errors.AsType[*ConfigError](err)
	return ok
}

// scrubError returns err with a redacted message (see redactString), from
// which every piece of secrets is removed too; errors.Is and errors.As still
// see everything err wraps. Use it on errors that may carry what a transport
// was configured with (URLs with credentials) before they leave the package.
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

// joinConfigErrors returns nil without errors.
func joinConfigErrors(errs []error, secrets *secretSet) error {
	if len(errs) == 0 {
		return nil
	}
	return &configErrorList{errs: errs, secrets: secrets}
}

func (e *configErrorList) Error() string {
	msgs := make([]string, len(e.errs))
	for i, err := range e.errs {
		msgs[i] = err.Error()
	}
	return e.secrets.scrub(redactString(strings.Join(msgs, "\n")))
}

func (e *configErrorList) Unwrap() []error { return e.errs }

// scrubReasons scrubs the reason of every *ConfigError in errs' trees, so
// that one printed on its own is as safe as the whole.
func scrubReasons(errs []error, secrets *secretSet) {
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *ConfigError:
			e.Reason = secrets.scrub(e.Reason)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		}
	}
	for _, err := range errs {
		walk(err)
	}
}
