package httptransport

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

var (
	// ErrPermanent is wrapped by every error that retrying the same request
	// cannot fix: a 3xx or a 4xx answer other than 429, a refused address or
	// host, a TLS failure (a certificate that does not verify, a TLS alert
	// from the server, a server that does not speak TLS), a message that
	// cannot be encoded. Check it with errors.Is.
	ErrPermanent = errors.New("httptransport: permanent error")
	// ErrClosed is returned by Publish after Close, and by Subscribe after
	// the Receiver (or the Subscriber handle) was closed.
	ErrClosed = errors.New("httptransport: closed")
	// ErrCloseTimeout is wrapped by the error of a queue-mode Receiver's
	// Close (and its Server's) when messages it had answered 202 for were
	// still queued once it gave up delivering them (drain_timeout); the
	// error says how many. They are lost.
	ErrCloseTimeout = errors.New("httptransport: close timeout")
	// ErrAddressRefused is wrapped when deny_private_addresses refused the
	// address a host name resolved to. It is permanent.
	ErrAddressRefused = errors.New("httptransport: address refused")
	// ErrHostNotAllowed is wrapped when a URL's host is not in allowed_hosts.
	// It is permanent.
	ErrHostNotAllowed = errors.New("httptransport: host not allowed")
)

// StatusError is the error, wrapped, of a request the server answered with a
// status other than 2xx. Get it with errors.As. errors.Is(err, ErrPermanent)
// holds for the statuses retrying cannot fix: every 3xx (redirects are not
// followed) and every 4xx but 429.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// RetryAfter is the delay the server asked for with Retry-After; zero
	// when it sent none.
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
	return target == ErrPermanent && permanentStatus(e.Code)
}

// permanentStatus: redirects are never followed, so a 3xx is a wrong URL;
// a 4xx says the request itself is wrong, except 429 (come back later).
func permanentStatus(code int) bool {
	return code >= 300 && code < 500 && code != http.StatusTooManyRequests
}

// retryableStatus lists the statuses a retry can fix: the server or a proxy in
// front of it is overloaded or restarting.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// permanentError marks err permanent while keeping it visible to errors.Is
// and errors.As.
type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

func permanent(err error) error { return &permanentError{err: err} }
