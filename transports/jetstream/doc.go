// Package jetstream is the NATS JetStream transport: a Watermill publisher
// and subscriber on github.com/nats-io/nats.go's jetstream package,
// registered as "jetstream".
//
// A topic is a subject, held by a stream of its own or by one configured
// stream; its messages carry the payload as data, the UUID and each
// metadata entry as headers, as watermill-nats (v2, JetStream) writes and
// reads them. Publishes are acknowledged asynchronously, many in flight;
// subscriptions read durable pull consumers and keep per-key order with
// lanes. docs/jetstream.md describes the configuration, the wire format,
// failures and the permissions it needs.
package jetstream
