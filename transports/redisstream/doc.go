// Package redisstream is the Redis Streams transport: a Watermill
// [message.Publisher] that appends each message to the stream named after
// its topic (XADD), and a [message.Subscriber] that reads streams in a
// consumer group (XREADGROUP). It registers itself under [Name]; a bus picks
// it with `type: redisstream` in a transport's configuration section, and
// any Watermill program can use [NewPublisher] and [NewSubscriber] alone.
//
// # Configuration
//
// [Config] holds the keys of the transport's section: the server (url or
// addrs, for a single server, a Cluster or Sentinels; TLS and ACL users),
// trimming (maxlen), publish batching, and the consumer group with its read,
// claim, retry and dead-letter settings. Each key, its default and its
// effect are listed in docs/redis.md, which also covers sizing, metrics and
// failure behaviour. Redis 6.2 or later is required; 7.0 or later is
// recommended.
//
// # Wire format
//
// By default entries are laid out as watermill-redisstream lays them out
// ([FormatWatermill]), so either side reads what the other writes;
// [FormatFlat] gives consumers in other languages one plain field per
// metadata key. Subscribers read both. docs/wire-format.md describes the
// fields byte by byte.
//
// # Guarantees
//
//   - Delivery is at least once: an entry is acked in Redis only after its
//     handler acks it, and stays pending otherwise, to be read again by its
//     consumer when it comes back or claimed by another one after
//     ClaimMinIdle. Handlers dedupe by message UUID.
//   - Entries that share an event_key are handed out one at a time, in
//     stream order; different keys run concurrently (Lanes).
//   - A nacked message is delivered again after a backoff, up to MaxRetries
//     times, then copied to the dead-letter stream; an entry that is not a
//     message is dead-lettered at once. Neither stops the subscription.
//   - The publisher never trims an entry a consumer group has not read and
//     acked (unless AllowTrimUnread), nor a stream whose groups vanished in
//     a restart of Redis, until they are back.
//   - A consumer group that vanishes is created again within a second; what
//     Redis lost with it is logged and counted (see [Metrics]).
//
// docs/guarantees.md says which tests back each of these.
//
// # Usage
//
// The example of [NewSubscriber] publishes and consumes in one consumer
// group. Tests can run against a throwaway redis-server with package
// [github.com/switchyard-go/switchyard/transports/redisstream/redistest].
package redisstream
