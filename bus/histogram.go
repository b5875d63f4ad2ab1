package bus

import (
	"math"
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
// (three with an outcome) of lines the other cores rarely touch. Native
// histograms (metrics.native_histograms) use client_golang's histograms
// instead.

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
	// Own cache lines, and own pairs of them (adjacent-line prefetch).
	_ [256 - unsafe.Sizeof(histShardCounts{})%256]byte
}

type histShardCounts struct {
	buckets [numBuckets + 1]atomic.Uint64
	// The sum is sumNs nanoseconds plus foldedBits, a float64 of seconds:
	// an atomic add of an integer costs half a compare-and-swap loop on a
	// float, and the integer is folded into the float before it can
	// overflow.
	sumNs      atomic.Int64
	foldedBits atomic.Uint64
	ok, fail   atomic.Uint64
}

const (
	// maxObservedNs caps an observation (about 13 days): a longer one
	// counts in +Inf, and as this much in the sum. Absurd values, such as
	// a latency from a published_at decades old, cannot overflow it.
	maxObservedNs = 1 << 50
	// foldAtNs is where sumNs is folded into foldedBits: far from
	// overflowing with one more observation.
	foldAtNs = 1 << 62
)

type shardedHistogram struct {
	shards [histShards]histShard
}

// observe records d (at least 0, at most maxObservedNs) and returns the
// shard it went to.
func (h *shardedHistogram) observe(d time.Duration) *histShardCounts {
	ns := min(max(int64(d), 0), maxObservedNs)
	i := 0
	for i < numBuckets && ns > latencyBoundsNs[i] {
		i++
	}
	s := &h.shards[rand.Uint32()%histShards].histShardCounts
	s.buckets[i].Add(1)
	if s.sumNs.Add(ns) >= foldAtNs {
		s.fold()
	}
	return s
}

// fold moves sumNs into foldedBits. Adds that race with it land in sumNs
// after the swap; a scrape that reads between the swap and the add misses
// the moved part once, about every 5 × 10^9 seconds of observations.
func (s *histShardCounts) fold() {
	v := time.Duration(s.sumNs.Swap(0)).Seconds()
	for {
		old := s.foldedBits.Load()
		if s.foldedBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// snapshot sums the shards: cumulative counts by upper bound, the count,
// the sum in seconds, and the outcomes.
func (h *shardedHistogram) snapshot() (buckets map[float64]uint64, count uint64, sum float64, ok, fail uint64) {
	var counts [numBuckets + 1]uint64
	for i := range h.shards {
		s := &h.shards[i]
		for j := range counts {
			counts[j] += s.buckets[j].Load()
		}
		sum += math.Float64frombits(s.foldedBits.Load()) + time.Duration(s.sumNs.Load()).Seconds()
		ok += s.ok.Load()
		fail += s.fail.Load()
	}
	buckets = make(map[float64]uint64, numBuckets)
	for j, le := range latencyBuckets {
		count += counts[j]
		buckets[le] = count
	}
	count += counts[numBuckets]
	return buckets, count, sum, ok, fail
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
	created       time.Time        // of every series: they are made at New
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
		ch <- prometheus.MustNewConstHistogramWithCreatedTimestamp(c.desc, count, sum, buckets, c.created, ls.labels...)
		if c.outcome != nil {
			ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(c.outcome, prometheus.CounterValue, float64(ok), c.created, slices.Concat(ls.labels, []string{"ok"})...)
			ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(c.outcome, prometheus.CounterValue, float64(fail), c.created, slices.Concat(ls.labels, []string{"error"})...)
		}
	}
}
