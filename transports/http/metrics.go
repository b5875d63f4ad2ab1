package httptransport

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/internal/promreg"
)

// Option sets what a Receiver or a Server takes besides its configuration.
type Option func(*options)

type options struct {
	registerer prometheus.Registerer
}

// WithRegisterer registers the Receiver's metrics on reg (reusing those
// there already, so that Receivers can share it):
// switchyard_http_undelivered_total and switchyard_http_dead_lettered_total,
// labelled by topic. The Factory passes the bus's registerer.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(o *options) { o.registerer = reg }
}

// receiverMetrics are what a queue-mode Receiver counts of the messages it
// answered 202 for and could not hand to a subscription that acked them.
type receiverMetrics struct {
	undelivered  *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
}

func newReceiverMetrics(reg prometheus.Registerer) *receiverMetrics {
	m := &receiverMetrics{
		undelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_http_undelivered_total",
			Help: "Queued messages an HTTP Receiver had answered 202 for and had not delivered when Close gave up (drain_timeout, or no subscription to their topic): they are lost.",
		}, []string{"topic"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_http_dead_lettered_total",
			Help: "Queued messages an HTTP Receiver took out of their topic after max_retries failed redeliveries: into its dead_letter_topic, or to DeadLetter.",
		}, []string{"topic"}),
	}
	if reg != nil {
		m.undelivered = promreg.Register(reg, m.undelivered)
		m.deadLettered = promreg.Register(reg, m.deadLettered)
	}
	return m
}

// topicLabel makes a topic, which need not be UTF-8, a label value. Only
// subscribed topics are queued: their number is the application's.
func topicLabel(topic string) string { return strings.ToValidUTF8(topic, "\uFFFD") }
