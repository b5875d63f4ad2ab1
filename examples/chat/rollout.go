package main

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/bus"
)

// routingState is what the page's routing panel shows: the rollout's
// knobs as the bus runs them (reloads included), its circuit breakers,
// and how the events published over the last minute split by transport.
type routingState struct {
	Enabled    bool              `json:"enabled"`
	Percentage float64           `json:"percentage"`
	Baseline   string            `json:"baseline"`
	Candidate  string            `json:"candidate,omitempty"`
	Fallback   fallbackState     `json:"fallback"`
	Breakers   map[string]string `json:"breakers,omitempty"`
	Reloads    int               `json:"reloads"`
	// Split counts the events each transport took in the last
	// WindowSeconds (a minute, once the service has run that long).
	Split         []transportShare `json:"split"`
	WindowSeconds float64          `json:"window_seconds"`
}

type fallbackState struct {
	Enabled bool   `json:"enabled"`
	To      string `json:"to,omitempty"`
	// Recent counts the events published on the fallback instead of their
	// own transport over the split's window.
	Recent float64 `json:"recent"`
}

type transportShare struct {
	Transport string  `json:"transport"`
	Events    float64 `json:"events"`
	Percent   float64 `json:"percent"`
}

// publishedFamily counts publish attempts by transport, event type and
// outcome; its ok rate per transport is the rollout's real share.
// fallbacksFamily counts the events the fallback stage took over.
const (
	publishedFamily = "switchyard_events_published_total"
	fallbacksFamily = "switchyard_fallbacks_total"
)

// splitWindow keeps, for the last window, samples of the per-transport
// totals of publishedFamily, and tells how many events each transport
// took between the oldest sample and the newest.
type splitWindow struct {
	window  time.Duration
	samples []splitSample
}

type splitSample struct {
	at time.Time
	counters
}

func (w *splitWindow) add(at time.Time, c counters) {
	w.samples = append(w.samples, splitSample{at: at, counters: c})
	// Keep the newest sample at least window old, as the base of the
	// difference, and everything after it.
	cut := 0
	for i := range w.samples {
		if at.Sub(w.samples[i].at) >= w.window {
			cut = i
		}
	}
	w.samples = slices.Delete(w.samples, 0, cut)
}

// split returns the events each transport took over the window, for the
// transports in always and those that took any, sorted by name, and the
// length of time it covers.
func (w *splitWindow) split(always []string) ([]transportShare, time.Duration) {
	if len(w.samples) == 0 {
		return nil, 0
	}
	first, last := w.samples[0], w.samples[len(w.samples)-1]
	counts := map[string]float64{}
	for _, name := range always {
		if name != "" {
			counts[name] = 0
		}
	}
	var total float64
	for name, v := range last.totals {
		if d := v - first.totals[name]; d > 0 {
			counts[name] = d
			total += d
		}
	}
	shares := make([]transportShare, 0, len(counts))
	for name, n := range counts {
		s := transportShare{Transport: name, Events: n}
		if total > 0 {
			s.Percent = 100 * n / total
		}
		shares = append(shares, s)
	}
	slices.SortFunc(shares, func(a, b transportShare) int { return strings.Compare(a.Transport, b.Transport) })
	return shares, last.at.Sub(first.at)
}

// fallbacks returns the events the fallback took over in the window.
func (w *splitWindow) fallbacks() float64 {
	if len(w.samples) == 0 {
		return 0
	}
	return max(w.samples[len(w.samples)-1].fallbacks-w.samples[0].fallbacks, 0)
}

// counters are the bus's counters the panel reads.
type counters struct {
	totals    map[string]float64 // successful publishes per transport
	fallbacks float64            // events published on the fallback
}

// readCounters reads, from g, the successful publishes per transport
// (publishedFamily) and the fallbacks (fallbacksFamily, every reason).
func readCounters(g prometheus.Gatherer) (counters, error) {
	families, err := g.Gather()
	if err != nil {
		return counters{}, err
	}
	c := counters{totals: map[string]float64{}}
	for _, f := range families {
		if f.GetName() == fallbacksFamily {
			for _, m := range f.GetMetric() {
				c.fallbacks += m.GetCounter().GetValue()
			}
			continue
		}
		if f.GetName() != publishedFamily {
			continue
		}
		for _, m := range f.GetMetric() {
			var transport, outcome string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "transport":
					transport = l.GetValue()
				case "outcome":
					outcome = l.GetValue()
				}
			}
			if outcome == "ok" {
				c.totals[transport] += m.GetCounter().GetValue()
			}
		}
	}
	return c, nil
}

// splitWindowSize is how far back the panel's split looks.
const splitWindowSize = time.Minute

// routingInterval is how often the panel is brought up to date: a change
// of the file shows within the bus's reload and this.
const routingInterval = 250 * time.Millisecond

// watchRouting sends the routing state to f every routingInterval until
// ctx ends.
func watchRouting(ctx context.Context, b *bus.Bus, g prometheus.Gatherer, f *feed) {
	w := &splitWindow{window: splitWindowSize}
	tick := time.NewTicker(routingInterval)
	defer tick.Stop()
	for {
		if c, err := readCounters(g); err == nil {
			w.add(time.Now(), c)
		}
		f.routingState(currentRouting(b, w))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func currentRouting(b *bus.Bus, w *splitWindow) routingState {
	r := b.Config().Routing
	admin := b.AdminState()
	fallbackTo := cmp.Or(r.Fallback.To, r.Baseline)
	st := routingState{
		Enabled:    r.Enabled,
		Percentage: r.Percentage,
		Baseline:   r.Baseline,
		Candidate:  r.Candidate,
		Fallback:   fallbackState{Enabled: r.Fallback.Enabled, To: fallbackTo, Recent: w.fallbacks()},
		Breakers:   admin.Breakers,
		Reloads:    admin.Reloads,
	}
	if !r.Fallback.Enabled {
		st.Fallback.To = ""
	}
	split, covered := w.split([]string{r.Baseline, r.Candidate})
	st.Split, st.WindowSeconds = split, covered.Seconds()
	return st
}
