package redisstream

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/internal/lane"
	"github.com/switchyard-go/switchyard/internal/promreg"
)

// Metrics are a subscriber's Prometheus collectors: event_queue_depth and
// the switchyard_redis_* counters (docs/redis.md lists them). Make them with
// NewMetrics and pass them to NewSubscriber; the Factory does so with the
// bus's registerer. Several subscribers may share one Metrics.
type Metrics struct {
	lanes          lane.Metrics
	recreated      *prometheus.CounterVec
	claimedEntries *prometheus.CounterVec
	lostEntries    *prometheus.CounterVec
	resets         *prometheus.CounterVec
}

// NewMetrics registers the collectors on reg, or reuses those already
// registered there under the same names. With a nil reg they count without
// being exported.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		lanes: lane.NewMetrics(reg, prometheus.CounterOpts{
			Name: "switchyard_redis_dead_lettered_total",
			Help: "Stream entries copied to the dead-letter stream, by reason: malformed (not a message) or nacked (too many times).",
		}),
		recreated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_redis_group_recreated_total",
			Help: "Consumer groups created again after they vanished (Redis restarted empty, or the stream was deleted): entries may have been lost.",
		}, []string{"stream"}),
		claimedEntries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_redis_claimed_total",
			Help: "Pending entries claimed from consumers idle for claim_min_idle.",
		}, []string{"stream"}),
		lostEntries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_redis_lost_entries_total",
			Help: "Pending entries whose data had been trimmed or deleted before they were acked.",
		}, []string{"stream"}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_redis_stream_resets_total",
			Help: "Times a subscription found its consumer group gone with the entries it had read: Redis restarted or failed over without its data, or the stream was deleted. The entries Redis had not delivered were lost.",
		}, []string{"stream"}),
	}
	if reg != nil {
		m.recreated = promreg.Register(reg, m.recreated)
		m.claimedEntries = promreg.Register(reg, m.claimedEntries)
		m.lostEntries = promreg.Register(reg, m.lostEntries)
		m.resets = promreg.Register(reg, m.resets)
	}
	return m
}

func (m *Metrics) groupRecreated(stream string) { m.recreated.WithLabelValues(stream).Inc() }
func (m *Metrics) deadLettered(stream, reason string) {
	m.lanes.DeadLettered.WithLabelValues(stream, reason).Inc()
}
func (m *Metrics) claimed(stream string, n int) {
	m.claimedEntries.WithLabelValues(stream).Add(float64(n))
}
func (m *Metrics) lost(stream string)        { m.lostEntries.WithLabelValues(stream).Inc() }
func (m *Metrics) streamReset(stream string) { m.resets.WithLabelValues(stream).Inc() }

// depthWatcher refreshes event_queue_depth for the subscribed streams every
// DepthInterval from XINFO GROUPS (lag + pending of our group), or XLEN when
// the lag is unknown.
type depthWatcher struct {
	client  redis.UniversalClient
	cfg     *Config
	m       *Metrics
	mu      sync.Mutex
	streams map[string]struct{}
	ctx     context.Context    // ended by stop
	stop    context.CancelFunc // asks the watcher to stop; close waits until it has
	once    sync.Once
	wg      sync.WaitGroup
}

func newDepthWatcher(client redis.UniversalClient, cfg *Config, m *Metrics) *depthWatcher {
	ctx, stop := context.WithCancel(context.Background())
	return &depthWatcher{client: client, cfg: cfg, m: m, streams: map[string]struct{}{}, ctx: ctx, stop: stop}
}

func (d *depthWatcher) watch(stream string) {
	d.mu.Lock()
	d.streams[stream] = struct{}{}
	d.mu.Unlock()
	d.once.Do(func() { d.wg.Go(d.run) })
}

func (d *depthWatcher) close() {
	d.stop()
	d.wg.Wait()
}

func (d *depthWatcher) run() {
	d.refresh()
	every(d.ctx, d.cfg.DepthInterval, d.refresh)
}

func (d *depthWatcher) refresh() {
	d.mu.Lock()
	streams := slices.Collect(maps.Keys(d.streams))
	d.mu.Unlock()
	for _, s := range streams {
		if d.ctx.Err() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(d.ctx, callTimeout)
		depth, err := d.depth(ctx, s)
		cancel()
		if err == nil {
			d.m.lanes.Depth.WithLabelValues(s).Set(float64(depth))
		}
	}
}

func (d *depthWatcher) depth(ctx context.Context, stream string) (int64, error) {
	groups, err := d.client.XInfoGroups(ctx, stream).Result()
	if err != nil {
		return 0, err
	}
	for _, g := range groups {
		if g.Name == d.cfg.ConsumerGroup && g.Lag >= 0 {
			return g.Lag + g.Pending, nil
		}
	}
	return d.client.XLen(ctx, stream).Result()
}
