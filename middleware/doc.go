// Package middleware holds switchyard's pipeline stages as plain Watermill
// message.HandlerMiddleware: percentage split between transports, fallback
// with a circuit breaker, and consumer-side dedupe. They never import package
// bus. Each is built from a config struct, for what a file can hold, and
// Options for what it cannot (how to read a message's key or event type, a
// prometheus.Registerer, a logger), so any Watermill user can use them
// alone. Each stage registers its own metrics; the per-event publish and
// delivery metrics are not a stage but the bus's own.
package middleware
