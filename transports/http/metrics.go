package httptransport

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/internal/promreg"
)

// Option sets what a Receiver or a Server takes besides its configuration.
type Option func(*Receiver)

// WithRegisterer registers the Receiver's metrics on reg (reusing those
// there already, so that Receivers can share it):
// switchyard_http_undelivered_total and switchyard_http_dead_lettered_total,
// labelled by topic. The Factory passes the bus's registerer.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(r *Receiver) {
		if reg != nil {
			r.undelivered = promreg.Register(reg, r.undelivered)
			r.deadLettered = promreg.Register(reg, r.deadLettered)
		}
	}
}

// newTopicCounters returns what a queue-mode Receiver counts of the
// messages it answered 202 for and could not hand to a subscription that
// acked them.
func newTopicCounters() (undelivered, deadLettered *prometheus.CounterVec) {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"topic"})
	}
	return counter("switchyard_http_undelivered_total", "Queued messages an HTTP Receiver had answered 202 for and had not delivered when Close gave up (drain_timeout, or no subscription to their topic): they are lost."),
		counter("switchyard_http_dead_lettered_total", "Queued messages an HTTP Receiver took out of their topic after max_retries failed redeliveries: into its dead_letter_topic, or to DeadLetter.")
}

// topicLabel makes a topic, which need not be UTF-8, a label value. Only
// subscribed topics are queued: their number is the application's.
func topicLabel(topic string) string { return strings.ToValidUTF8(topic, "\uFFFD") }
