package transports

import (
	"errors"
	"fmt"
)

// FieldError is one invalid key of a transport's configuration section, as
// a factory's config check reports it. Key is relative to the section
// (`maxlen`, `tls.key_file`); the bus prefixes it with the section's path
// (`transports.redis.maxlen`) and reports it as its own configuration error,
// so a user finds every bad key, the bus's or a transport's, the same way.
//
// Reason never quotes a credential: a factory that checks a URL says what
// is wrong with it and where, not what it holds.
type FieldError struct {
	Key    string
	Reason string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Reason }

// FieldErrorf returns a *FieldError for key with a formatted reason.
func FieldErrorf(key, format string, args ...any) *FieldError {
	return &FieldError{Key: key, Reason: fmt.Sprintf(format, args...)}
}

// FieldErrors returns every *FieldError in err's tree (errors.Join'ed,
// wrapped), in order, and whether err holds nothing else.
func FieldErrors(err error) (fields []*FieldError, only bool) {
	only = err != nil
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *FieldError:
			fields = append(fields, e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		default:
			if inner := errors.Unwrap(err); inner != nil {
				walk(inner)
				return
			}
			only = false
		}
	}
	walk(err)
	return fields, only && len(fields) > 0
}
