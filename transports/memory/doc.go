// Package memory is switchyard's in-process transport: bounded queues with
// per-key ordered lanes. Every bus's ingress runs on the same engine.
//
// Unlike Watermill's gochannel it keeps messages published before anyone
// subscribed (up to the queue size), delivers the messages that share a key in
// order and one at a time, blocks or rejects when a queue is full instead of
// growing, and dead-letters a message that keeps being nacked instead of
// resending it forever. Nothing survives the process: messages still queued
// when a Broker closes are discarded and counted.
//
// Register by importing the package; configure under transports:
//
//	transports:
//	  local: {type: memory, lanes: 64, queue_size: 10000, on_full: block}
package memory
