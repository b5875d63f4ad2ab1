// Package httptransport is switchyard's HTTP transport, registered as the
// transport type "http": a Publisher that POSTs each message to a URL as a
// CloudEvent (binary or structured mode) or as a plain body, and a
// Receiver, an http.Handler that is also a Watermill message.Subscriber.
// It is named httptransport so that it never shadows net/http.
//
// Unlike watermill-http, it bounds every call with the message's context
// and a timeout, drains every response body, retries only what can succeed
// later (connection errors, 429, 502, 503, 504, honouring Retry-After),
// never follows redirects, and never logs bodies or configured headers.
//
//	transports:
//	  http:
//	    type: http
//	    url: http://127.0.0.1:5000/api/v1/events/{topic}
//	    timeout: 2s
//	    receiver:
//	      listen: 127.0.0.1:5001   # serve POST /api/v1/events/{topic} here
//
// A section with a url builds a Publisher; one with receiver: a *Server
// serving itself on receiver.listen, or without listen a *Receiver to
// mount in your own server: mux.Handle("POST /events/{topic}", receiver).
//
// Publish returns once the server answered 2xx; errors.Is(err,
// ErrPermanent) when retrying cannot help, errors.As with a *StatusError
// for the status. A Receiver answers 204 once a handler acked the message
// and 503 with Retry-After otherwise, so that the sender retries; in queue
// mode (ReceiverConfig.QueueSize) it answers 202 at once and redelivers,
// then dead-letters. docs/http.md has the wire formats, the security
// settings and every answer.
package httptransport
