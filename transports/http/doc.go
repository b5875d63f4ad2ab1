// Package httptransport is switchyard's HTTP transport: a Publisher that
// POSTs each message to a URL as a CloudEvent (or as a plain body), and a
// Receiver, an http.Handler that is also a Watermill message.Subscriber,
// which you mount in your own server or which serves itself (a Server). It
// lives in transports/http; it is named
// httptransport so that it never shadows net/http in a file that needs both.
//
// It is the baseline path and the fallback of the bus: today's services post
// events to the real-time hub over HTTP. Unlike Watermill's watermill-http it
// bounds every call with the message's context and a timeout, keeps its
// connections alive by draining every response body, retries what can
// succeed later (connection errors, 429, 502, 503, 504, honouring
// Retry-After) and nothing else, never follows redirects, and never logs
// response bodies or the headers it was configured with.
//
// # Configuration
//
// The package registers as the transport type "http". A transport's section
// builds a Publisher when it has a url, a subscriber when it has a
// receiver: sub-section, or both:
//
//	transports:
//	  http:
//	    type: http
//	    url: http://127.0.0.1:5000/api/v1/events/{topic}
//	    timeout: 2s
//	    headers: {Authorization: "Bearer …"}
//	    receiver:
//	      listen: 127.0.0.1:5001   # serve POST /api/v1/events/{topic} here
//	      bearer_token: "…"
//
// With receiver.listen the subscriber is a *Server, which serves the
// Receiver on a server of its own and shuts it down gracefully on Close.
// Without it the subscriber is a *Receiver, an http.Handler to mount in
// your own server: mux.Handle(pattern, t.Subscriber.(http.Handler)).
//
// # Publisher
//
// {topic} and {event_type} in the URL are replaced by the topic and the
// message's event_type, escaped for where they stand (path or query); one
// that would make a . or .. path segment, even percent-encoded, is refused
// with a permanent error.
// Publish returns once the server answered 2xx, or with an error:
// errors.Is(err, ErrPermanent) when retrying cannot help (3xx, 4xx but 429,
// refused addresses, TLS failures), so the pipeline can fall back or
// dead-letter at once; errors.As with a *StatusError target gives the status.
// It connects directly unless Config.Proxy names a proxy: HTTP_PROXY is
// read only with proxy: environment.
//
// # Receiver
//
// NewReceiver builds a Receiver; mount it on a pattern with a {topic}
// wildcard, or give it a fixed topic:
//
//	mux.Handle("POST /events/{topic}", receiver)
//
// NewServer builds one that serves itself on an address of its own.
//
// It reads the three formats the Publisher writes (CloudEvents binary and
// structured mode, raw), hands each message to one subscription of its topic
// and answers once the handler is done: 204 when acked, 503 with Retry-After
// when nacked, when the handler timed out or when no one subscribed to the
// topic, so a sender retries instead of losing the event. In queue mode
// (ReceiverConfig.QueueSize) it answers 202 at once and redelivers with a
// growing backoff, up to MaxRetries, then moves the message to its
// dead-letter topic (DeadLetterTopic), so that it never blocks the messages
// behind it; Close stops taking requests and delivers what is queued within
// DrainTimeout, and counts and returns what it could not.
//
// # Wire formats
//
// The CloudEvents mapping follows the CloudEvents 1.0 HTTP protocol binding
// and JSON event format: id is the message UUID, type the event_type
// metadata, subject the event_key, time the published_at; other metadata
// travel as extension attributes. When metadata cannot be carried exactly by
// attributes (keys that are not lower-case alphanumeric, for instance) the
// whole metadata travels as JSON in the switchyardmetadata extension, so a
// Publisher → Receiver round trip is exact. A Receiver also keeps source,
// datacontenttype, dataschema and a sender's own topic extension, as the
// metadata ce_source, ce_datacontenttype, ce_dataschema and ce_topic, which
// a Publisher sends as those attributes: a relayed event keeps them.
// docs/http.md has the details.
package httptransport
