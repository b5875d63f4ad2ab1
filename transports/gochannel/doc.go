// Package gochannel registers Watermill's GoChannel Pub/Sub
// (github.com/ThreeDotsLabs/watermill/pubsub/gochannel) as the transport type
// "gochannel", for programs and tests that already rely on it.
//
// It is kept for compatibility, not recommended: GoChannel's limits are why
// switchyard's ingress is a queue of its own, the engine of transports/memory.
//
//   - A message published to a topic that has no subscriber is dropped, unless
//     persistent is set; then every message of every topic is kept in memory
//     for the life of the process and replayed to each new subscriber.
//   - A nacked message is resent at once and forever: there is no backoff, no
//     retry limit and no dead letter.
//   - There is no order across concurrent handlers: each message is sent from
//     its own goroutine, so a subscriber may see messages out of publish order,
//     and the goroutines grow with the messages in flight.
//   - There are no consumer groups: every subscriber of a topic gets every
//     message. A message in the hands of a subscriber that goes away is
//     discarded, not given to another one.
//   - Publish never waits for room: nothing bounds what is in flight, unless
//     block_publish_until_subscriber_ack makes each Publish wait for the acks.
//
// transports/memory has none of these limits: bounded queues that block or
// reject, per-key order, retries with backoff and a dead letter, consumer
// groups, a fixed number of goroutines per subscription.
//
// Register by importing the package; configure under transports:
//
//	transports:
//	  legacy: {type: gochannel, output_channel_buffer: 1000, persistent: false}
package gochannel
