package bus

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// The per-event metrics are observed by every lane of the pipeline and
// every consumer at once. client_golang's histogram makes four atomic
// updates of one shared series per observation; from two cores that
// observe the same series, each moves a cache line between them. A
// shardedHistogram spreads a series over histShards copies, picked at
// random per observation, and sums them at scrape time: two atomic updates
// of a line the other cores rarely touch. It keeps its sum in integer
// nanoseconds. Native histograms (metrics.native_histograms) use
// client_golang's histograms instead.

// histShards copies of a series: with random picks, two cores observing at
// once share a copy one time in histShards.
const histShards = 8

// numBuckets is len(latencyBuckets); a test keeps them equal.
const numBuckets = 16

// latencyBoundsNs are latencyBuckets in nanoseconds.
var latencyBoundsNs = func() (b [numBuckets]int64) {
	for i, s := range latencyBuckets {
		b[i] = int64(s * 1e9)
	}
	return b
}()

// histShard is one copy of a series: the bucket counts (the last is +Inf),
// the sum, and the publish outcomes of event_publish_duration_seconds'
// series (switchyard_events_published_total), which are observed with it.
type histShard struct {
	histShardCounts
	_ [192 - unsafe.Sizeof(histShardCounts{})%192]byte // own cache lines, prefetch pairs
}

type histShardCounts struct {
	buckets  [numBuckets + 1]atomic.Uint64
	sumNs    atomic.Int64
	ok, fail atomic.Uint64
}

type shardedHistogram struct {
	shards [histShards]histShard
}

// observe records d (clamped to 0) and returns the shard it went to.
func (h *shardedHistogram) observe(d time.Duration) *histShardCounts {
	ns := max(int64(d), 0)
	i := 0
	for i < numBuckets && ns > latencyBoundsNs[i] {
		i++
	}
	s := &h.shards[rand.Uint32()%histShards].histShardCounts
	s.buckets[i].Add(1)
	s.sumNs.Add(ns)
	return s
}

// snapshot sums the shards: cumulative counts by upper bound, the count,
// the sum in seconds, and the outcomes.
func (h *shardedHistogram) snapshot() (buckets map[float64]uint64, count uint64, sum float64, ok, fail uint64) {
	var counts [numBuckets + 1]uint64
	var sumNs int64
	for i := range h.shards {
		s := &h.shards[i]
		for j := range counts {
			counts[j] += s.buckets[j].Load()
		}
		sumNs += s.sumNs.Load()
		ok += s.ok.Load()
		fail += s.fail.Load()
	}
	buckets = make(map[float64]uint64, numBuckets)
	for j, le := range latencyBuckets {
		count += counts[j]
		buckets[le] = count
	}
	count += counts[numBuckets]
	return buckets, count, float64(sumNs) / 1e9, ok, fail
}

// durationMetric is one series of a per-event duration histogram, with the
// outcome counters of event_publish_duration_seconds' series.
type durationMetric interface {
	observe(d time.Duration, err error)
}

// shardedSeries is a series of the bus's own collector.
type shardedSeries struct {
	h           shardedHistogram
	countResult bool
}

func (s *shardedSeries) observe(d time.Duration, err error) {
	c := s.h.observe(d)
	if !s.countResult {
		return
	}
	if err != nil {
		c.fail.Add(1)
	} else {
		c.ok.Add(1)
	}
}

// promSeries is a series of client_golang histograms and counters, for
// native histograms.
type promSeries struct {
	h        prometheus.Observer
	ok, fail prometheus.Counter // nil: outcomes not counted
}

func (s *promSeries) observe(d time.Duration, err error) {
	s.h.Observe(max(d, 0).Seconds())
	switch {
	case s.ok == nil:
	case err != nil:
		s.fail.Inc()
	default:
		s.ok.Inc()
	}
}

// histogramCollector exposes the shardedSeries of one histogram family (and
// of its outcome counter family, for the publish duration).
type histogramCollector struct {
	desc, outcome *prometheus.Desc // outcome nil: not counted
	series        []labeledSeries
}

type labeledSeries struct {
	labels []string
	s      *shardedSeries
}

func (c *histogramCollector) add(labels ...string) *shardedSeries {
	s := &shardedSeries{countResult: c.outcome != nil}
	c.series = append(c.series, labeledSeries{labels: labels, s: s})
	return s
}

func (c *histogramCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	if c.outcome != nil {
		ch <- c.outcome
	}
}

func (c *histogramCollector) Collect(ch chan<- prometheus.Metric) {
	for _, ls := range c.series {
		buckets, count, sum, ok, fail := ls.s.h.snapshot()
		ch <- prometheus.MustNewConstHistogram(c.desc, count, sum, buckets, ls.labels...)
		if c.outcome != nil {
			ch <- prometheus.MustNewConstMetric(c.outcome, prometheus.CounterValue, float64(ok), slices.Concat(ls.labels, []string{"ok"})...)
			ch <- prometheus.MustNewConstMetric(c.outcome, prometheus.CounterValue, float64(fail), slices.Concat(ls.labels, []string{"error"})...)
		}
	}
}
