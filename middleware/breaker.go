package middleware

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// breaker is a transport's circuit breaker, with a fast path for the
// common case.
//
// While it is clean (closed, with no failure counted since its last
// success) a publish that succeeds would change nothing in it, so
// publishes skip it: its mutex, which every lane would share, and its two
// clock reads. A publish that fails is counted in it after the fact, as a
// publish of the state it started in: one that started before the breaker
// last changed state is not counted, as gobreaker does not count a request
// of an older generation. clean and closed are written only under
// gobreaker's mutex (in its callbacks), so they follow its state exactly.
type breaker struct {
	cb *gobreaker.CircuitBreaker[struct{}]
	// epoch counts the breaker's state changes.
	epoch  atomic.Uint64
	clean  atomic.Bool
	closed bool // under gobreaker's mutex
}

// changed is gobreaker's OnStateChange: under its mutex. A breaker that
// closes has zero counts.
func (b *breaker) changed(to gobreaker.State) {
	b.closed = to == gobreaker.StateClosed
	b.clean.Store(b.closed)
	b.epoch.Add(1)
}

// counted is gobreaker's IsSuccessful: under its mutex, for a result it
// counts. A success in a closed breaker clears its failures in a row; a
// failure adds one.
func (b *breaker) counted(err error) bool {
	b.clean.Store(err == nil && b.closed)
	return err == nil
}

// run publishes through the breaker. It returns the publish's error, or
// gobreaker.ErrOpenState or gobreaker.ErrTooManyRequests when the breaker
// did not let it through.
func (b *breaker) run(publish func() ([]*message.Message, error)) ([]*message.Message, error) {
	if !b.clean.Load() {
		var out []*message.Message
		_, err := b.cb.Execute(func() (struct{}, error) {
			var err error
			out, err = publish()
			return struct{}{}, err
		})
		return out, err
	}
	epoch := b.epoch.Load()
	returned := false
	defer func() {
		if !returned { // a panic: a failure, as gobreaker counts it
			r := recover()
			b.count(epoch, fmt.Errorf("panic: %v", r))
			panic(r)
		}
	}()
	out, err := publish()
	returned = true
	if err != nil && !isCanceled(err) {
		b.count(epoch, err)
	}
	return out, err
}

// count counts err, the failure of a publish that started at epoch, unless
// the breaker has changed state since, or is open.
func (b *breaker) count(epoch uint64, err error) {
	_, _ = b.cb.Execute(func() (struct{}, error) {
		if b.epoch.Load() != epoch {
			return struct{}{}, errStale
		}
		return struct{}{}, err
	})
}

// breaker returns the breaker of transport name, made on its first use.
func (f *Fallback) breaker(name string) *breaker {
	if b := (*f.breakers.Load())[name]; b != nil {
		return b
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	breakers := *f.breakers.Load()
	if b := breakers[name]; b != nil {
		return b
	}
	threshold := f.failureThreshold
	b := &breaker{closed: true}
	b.clean.Store(true)
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     f.probeInterval,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
		OnStateChange: func(name string, from, to gobreaker.State) {
			b.changed(to)
			f.logger.Info("Circuit breaker changed state", watermill.LogFields{
				"transport": name, "from": from.String(), "to": to.String(),
			})
		},
		IsSuccessful: b.counted,
		// A caller's cancellation says nothing about the transport; a
		// failure from before the breaker last changed state is history.
		IsExcluded: func(err error) bool { return isCanceled(err) || errors.Is(err, errStale) },
	})
	next := maps.Clone(breakers)
	next[name] = b
	f.breakers.Store(&next)
	return b
}

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }

// errStale marks the failure of a publish that started before its
// breaker last changed state: gobreaker excludes it.
var errStale = errors.New("middleware: the breaker changed state during the publish")

// breakerCollector reads the breakers' states when Prometheus scrapes: a
// breaker moves from open to half-open with time alone, which no event
// would report.
type breakerCollector struct{ f *Fallback }

func (c breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.f.breakerState }

func (c breakerCollector) Collect(ch chan<- prometheus.Metric) {
	for name, b := range *c.f.breakers.Load() {
		ch <- prometheus.MustNewConstMetric(c.f.breakerState, prometheus.GaugeValue, float64(b.cb.State()), name)
	}
}
