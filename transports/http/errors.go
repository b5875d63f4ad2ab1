package httptransport

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

var (
	// ErrPermanent is wrapped by every error that retrying the same request
	// cannot fix: a 3xx or a 4xx answer other than 429, a refused address,
	// a TLS failure, a message that cannot be encoded.
	ErrPermanent = errors.New("httptransport: permanent error")
	// ErrClosed is returned by Publish after Close, and by Subscribe after
	// the Receiver (or the Subscriber handle) was closed.
	ErrClosed = errors.New("httptransport: closed")
	// ErrCloseTimeout is wrapped by the error of a queue-mode Receiver's
	// Close (and its Server's) when messages it had answered 202 for were
	// still queued at drain_timeout; the error says how many. They are lost.
	ErrCloseTimeout = errors.New("httptransport: close timeout")
	// ErrAddressRefused is wrapped, permanent, when deny_private_addresses
	// refused the address a host name resolved to.
	ErrAddressRefused = errors.New("httptransport: address refused")
)

// StatusError is the error, wrapped, of a request the server answered with a
// status other than 2xx. errors.Is(err, ErrPermanent) holds for every 3xx
// (redirects are not followed) and every 4xx but 429.
type StatusError struct {
	Code int
	// RetryAfter is what the server asked for with Retry-After; zero when
	// it sent none.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	s := "httptransport: server answered " + strconv.Itoa(e.Code) + " " + http.StatusText(e.Code)
	if e.RetryAfter > 0 {
		s += " (retry after " + e.RetryAfter.String() + ")"
	}
	return s
}

// Is reports whether the status makes the error permanent.
func (e *StatusError) Is(target error) bool {
	return target == ErrPermanent && e.Code >= 300 && e.Code < 500 && e.Code != http.StatusTooManyRequests
}

// permanentError marks err permanent, still visible to errors.Is and As.
type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

func permanent(err error) error { return &permanentError{err: err} }
