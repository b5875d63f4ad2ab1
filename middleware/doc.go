// Package middleware holds switchyard's pipeline stages as plain Watermill
// message.HandlerMiddleware: percentage split between transports, fallback
// with a circuit breaker, metrics and consumer-side dedupe. They never import
// package bus; what they need (how to read a message's key or event type, a
// prometheus.Registerer, a clock) they take as parameters, so any Watermill
// user can use them alone.
package middleware
