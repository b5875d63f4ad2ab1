package redisstream

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/internal/lane"
	"github.com/switchyard-go/switchyard/internal/promreg"
)

// Metrics are a subscriber's Prometheus collectors: event_queue_depth and
// the switchyard_redis_* counters (docs/redis.md lists them). Make them with
// NewMetrics and pass them to NewSubscriber; the Factory does so with the
// bus's registerer. Several subscribers may share one Metrics.
type Metrics struct {
	lanes     lane.Metrics
	recreated *prometheus.CounterVec
	claimed   *prometheus.CounterVec
	lost      *prometheus.CounterVec
	resets    *prometheus.CounterVec
}

// NewMetrics registers the collectors on reg, or reuses those already
// registered there under the same names. With a nil reg they count without
// being exported.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"stream"})
		if reg != nil {
			c = promreg.Register(reg, c)
		}
		return c
	}
	return &Metrics{
		lanes: lane.NewMetrics(reg, prometheus.CounterOpts{
			Name: "switchyard_redis_dead_lettered_total",
			Help: "Stream entries copied to the dead-letter stream, by reason: malformed (not a message) or nacked (too many times).",
		}),
		recreated: counter("switchyard_redis_group_recreated_total",
			"Consumer groups created again after they vanished (Redis restarted empty, or the stream was deleted): entries may have been lost."),
		claimed: counter("switchyard_redis_claimed_total",
			"Pending entries claimed from consumers idle for claim_min_idle."),
		lost: counter("switchyard_redis_lost_entries_total",
			"Pending entries whose data had been trimmed or deleted before they were acked."),
		resets: counter("switchyard_redis_stream_resets_total",
			"Times a subscription found its consumer group gone with the entries it had read: Redis restarted or failed over without its data, or the stream was deleted. The entries Redis had not delivered were lost."),
	}
}

// depthLoop sets event_queue_depth every DepthInterval from XINFO GROUPS
// (lag + pending of our group), or XLEN when the lag is unknown.
func (sub *subscription) depthLoop() {
	s := sub.s
	refresh := func() {
		ctx, cancel := context.WithTimeout(sub.ctx, callTimeout)
		defer cancel()
		groups, err := s.client.XInfoGroups(ctx, sub.stream).Result()
		if err != nil {
			return
		}
		depth := int64(-1)
		for _, g := range groups {
			if g.Name == s.cfg.ConsumerGroup && g.Lag >= 0 {
				depth = g.Lag + g.Pending
			}
		}
		if depth < 0 {
			if depth, err = s.client.XLen(ctx, sub.stream).Result(); err != nil {
				return
			}
		}
		s.metrics.lanes.Depth.WithLabelValues(sub.stream).Set(float64(depth))
	}
	refresh()
	every(sub.ctx, s.cfg.DepthInterval, refresh)
}
