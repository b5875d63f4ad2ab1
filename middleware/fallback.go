package middleware

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/switchyard-go/switchyard/internal/metakey"
	"github.com/switchyard-go/switchyard/internal/monotime"
)

// Defaults of FallbackConfig.
const (
	DefaultPublishTimeout   = 500 * time.Millisecond
	DefaultCooldown         = 30 * time.Second
	DefaultProbeInterval    = 5 * time.Second
	DefaultFailureThreshold = 5
	DefaultCooldownKeys     = 100000
)

// Reasons a message fell back, as the reason label of
// switchyard_fallbacks_total. An event that fell back for error or timeout
// may also have reached the transport it failed on: the publish was
// ambiguous, and the consumer may see it twice.
const (
	ReasonError       = "error"        // the publish failed
	ReasonTimeout     = "timeout"      // the publish took longer than its deadline
	ReasonBreakerOpen = "breaker_open" // the transport's circuit breaker is open: not tried
	ReasonCooldown    = "cooldown"     // the key fell back lately and stays: not tried
)

// FallbackConfig configures a Fallback. Update can change every field but
// the last three, which NewFallback fixes.
type FallbackConfig struct {
	// Enabled turns the stage on; off, messages go to their transport only
	// and a failure is the handler's error.
	Enabled bool
	// To is the transport a failed message is published on instead.
	To string
	// PublishTimeout is the deadline of a publish on any other transport:
	// a publish that takes longer counts as failed. Timeouts overrides it
	// per transport. Default 500ms. A message whose context cannot end
	// (an async publish) shares its deadline with those that start within
	// the same slot of timeout/20 (at most 10ms), so that it costs no timer
	// of its own: its publish may run up to one slot longer.
	PublishTimeout time.Duration
	Timeouts       map[string]time.Duration
	// Cooldown is how long a key whose publish failed (error or timeout)
	// keeps to To, so that its events are not spread over two transports
	// (and reordered) while the other one flaps. Default 30s.
	Cooldown time.Duration

	// FailureThreshold is how many publishes in a row must fail on a
	// transport before its circuit breaker opens. Default 5.
	FailureThreshold uint32
	// ProbeInterval is how long an open breaker refuses its transport
	// before it lets one publish through (half-open) to probe it: that
	// publish succeeding closes it. Default 5s.
	ProbeInterval time.Duration
	// CooldownKeys bounds the keys kept on the fallback at once; past it,
	// the key held longest ago is let go first (its transport's breaker
	// still holds it if it stays down). Default 100,000.
	CooldownKeys int
}

func (c *FallbackConfig) setDefaults() {
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.Cooldown == 0 {
		c.Cooldown = DefaultCooldown
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = DefaultFailureThreshold
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.CooldownKeys <= 0 {
		c.CooldownKeys = DefaultCooldownKeys
	}
}

// Validate reports what is wrong with c, defaults applied.
func (c FallbackConfig) Validate() error {
	var errs []error
	if c.Enabled && c.To == "" {
		errs = append(errs, errors.New("middleware: fallback: to must name a transport when enabled"))
	}
	if c.PublishTimeout < 0 {
		errs = append(errs, fmt.Errorf("middleware: fallback: publish timeout must not be negative, got %s", c.PublishTimeout))
	}
	for name, d := range c.Timeouts {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("middleware: fallback: timeout of %q must be positive, got %s", name, d))
		}
	}
	if c.Cooldown < 0 {
		errs = append(errs, fmt.Errorf("middleware: fallback: cooldown must not be negative, got %s", c.Cooldown))
	}
	return errors.Join(errs...)
}

// Fallback is the stage that publishes a message on another transport when
// its own fails. It wraps the handler that publishes (the dispatch): it
// calls it with a deadline on the message's context, and when that fails
// or times out, rewrites the message's transport metadata to To and calls
// it again. Put it after Split.
//
// Each transport but To has a circuit breaker (sony/gobreaker): after
// FailureThreshold failures in a row it opens, and messages go to To at
// once without paying the deadline; after ProbeInterval one message probes
// the transport, and its success closes the breaker. A key whose publish
// failed stays on To for Cooldown, even once the breaker closed. When To fails too, the handler's error joins
// both failures, for the caller (the bus's ingress) to retry and then
// dead-letter.
//
// A publish that failed or timed out may still have reached its transport
// (the request was sent; the answer was lost): that message is then
// delivered twice, once by each transport. Consumers that must not see
// duplicates dedupe by message UUID (see Dedupe).
type Fallback struct {
	state            atomic.Pointer[fallbackState]
	failureThreshold uint32
	probeInterval    time.Duration
	cooldownKeys     int
	transportKey     string
	key              func(*message.Message) string
	logger           watermill.LoggerAdapter
	onFallback       func(m *message.Message, from, to, reason string, err error)

	mu       sync.Mutex // held to add a breaker
	breakers atomic.Pointer[map[string]*breaker]

	cooldown *cooldowns

	fallbacks    *prometheus.CounterVec
	breakerState *prometheus.Desc
}

// NewFallback returns a Fallback with cfg. It reads WithKey,
// WithTransportKey, WithOnFallback, WithLogger and WithRegisterer.
func NewFallback(cfg FallbackConfig, opts ...Option) (*Fallback, error) {
	cfg.setDefaults()
	o := buildOptions(opts)
	f := &Fallback{
		failureThreshold: cfg.FailureThreshold,
		probeInterval:    cfg.ProbeInterval,
		cooldownKeys:     cfg.CooldownKeys,
		transportKey:     o.transportKey,
		key:              o.key,
		logger:           o.logger,
		onFallback:       o.onFallback,
		cooldown:         newCooldowns(cfg.CooldownKeys),
	}
	f.breakers.Store(&map[string]*breaker{})
	if f.transportKey == "" {
		f.transportKey = metakey.Transport
	}
	if f.key == nil {
		f.key = metadataReader(metakey.EventKey)
	}
	if f.logger == nil {
		f.logger = watermill.NopLogger{}
	}
	f.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_fallbacks_total",
		Help: "Events published on the fallback transport instead of their own, by reason: error, timeout (both possibly ambiguous: the event may have reached both), breaker_open, cooldown.",
	}, []string{"from", "to", "reason"})
	f.breakerState = prometheus.NewDesc("switchyard_circuit_breaker_state",
		"State of each transport's circuit breaker when scraped: 0 closed, 1 half-open (the next publish probes), 2 open.",
		[]string{"transport"}, nil)
	if o.registerer != nil {
		for _, c := range []prometheus.Collector{f.fallbacks, breakerCollector{f}} {
			if err := o.registerer.Register(c); err != nil {
				return nil, fmt.Errorf("middleware: fallback: register metrics: %w", err)
			}
		}
	}
	if err := f.Update(cfg); err != nil {
		return nil, err
	}
	return f, nil
}

type fallbackState struct {
	cfg          FallbackConfig
	deadlines    *deadlines
	perTransport map[string]*deadlines
}

// Update replaces the configuration; messages that reach the stage after
// it returns use the new one. An invalid cfg is refused and the old one
// stays. Breakers and the keys held in cooldown are kept, and so are
// FailureThreshold, ProbeInterval and CooldownKeys: Update ignores them.
func (f *Fallback) Update(cfg FallbackConfig) error {
	cfg.FailureThreshold, cfg.ProbeInterval, cfg.CooldownKeys = f.failureThreshold, f.probeInterval, f.cooldownKeys
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.Timeouts = maps.Clone(cfg.Timeouts)
	st := &fallbackState{cfg: cfg, deadlines: newDeadlines(cfg.PublishTimeout)}
	if cfg.Timeouts != nil {
		st.perTransport = make(map[string]*deadlines, len(cfg.Timeouts))
		for k, v := range cfg.Timeouts {
			st.perTransport[k] = newDeadlines(v)
		}
	}
	f.state.Store(st)
	return nil
}

// Config returns the configuration in effect.
func (f *Fallback) Config() FallbackConfig {
	cfg := f.state.Load().cfg
	cfg.Timeouts = maps.Clone(cfg.Timeouts)
	return cfg
}

// BreakerStates returns the state of each transport's breaker: "closed",
// "half-open" or "open". A transport not yet published on has none.
func (f *Fallback) BreakerStates() map[string]string {
	breakers := *f.breakers.Load()
	out := make(map[string]string, len(breakers))
	for name, b := range breakers {
		out[name] = b.cb.State().String()
	}
	return out
}

// Middleware is the stage; h is the handler that publishes a message on the
// transport its metadata names.
func (f *Fallback) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) ([]*message.Message, error) {
		st := f.state.Load()
		cfg := &st.cfg
		from := m.Metadata.Get(f.transportKey)
		if !cfg.Enabled || from == cfg.To || from == "" {
			return h(m)
		}
		key := f.key(m)
		if key != "" && f.cooldown.holds(key) {
			return f.fallBack(h, m, cfg, from, key, ReasonCooldown, nil)
		}
		dl := st.deadlines
		if t, ok := st.perTransport[from]; ok {
			dl = t
		}
		out, err := f.breaker(from).run(func() ([]*message.Message, error) {
			return publishWithin(h, m, dl)
		})
		if err == nil {
			return out, nil
		}
		if m.Context().Err() != nil {
			// The caller gave up (a PublishSync's context): not the
			// transport's failure, and nothing to fall back for.
			return nil, err
		}
		reason := ReasonError
		switch {
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
			reason = ReasonBreakerOpen
		case errors.Is(err, context.DeadlineExceeded):
			reason = ReasonTimeout
		}
		return f.fallBack(h, m, cfg, from, key, reason, err)
	}
}

// publishWithin calls h with m's context bounded by dl's timeout.
func publishWithin(h message.HandlerFunc, m *message.Message, dl *deadlines) ([]*message.Message, error) {
	parent := m.Context()
	var ctx context.Context
	if parent.Done() == nil {
		// The message's context never ends (an async publish): share a
		// deadline instead of paying a timer per message.
		ctx = &sharedDeadline{Context: parent, deadline: dl.get()}
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(parent, dl.timeout)
		defer cancel()
	}
	m.SetContext(ctx)
	out, err := h(m)
	m.SetContext(parent)
	if err != nil && ctx.Err() == context.DeadlineExceeded && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return out, err
}

// deadlines hands out deadline contexts shared by every publish that
// starts within one slot of time, so that a publish costs no timer of its
// own. A publish that starts at t gets a deadline between t+timeout and
// t+timeout+slot, never less than timeout.
type deadlines struct {
	timeout, slot time.Duration
	cur           atomic.Pointer[deadlineSlot]
}

type deadlineSlot struct {
	ctx    context.Context
	cancel context.CancelFunc // its timer ends it; kept for vet's sake
	until  time.Duration      // publishes that start before it (monotime.Now) share ctx
}

// newDeadlines takes a positive timeout: Validate refuses others.
func newDeadlines(timeout time.Duration) *deadlines {
	return &deadlines{timeout: timeout, slot: min(max(timeout/20, time.Microsecond), 10*time.Millisecond)}
}

func (d *deadlines) get() context.Context {
	now := monotime.Now()
	cur := d.cur.Load()
	if cur != nil && now < cur.until {
		return cur.ctx
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout+d.slot)
	next := &deadlineSlot{ctx: ctx, cancel: cancel, until: now + d.slot}
	if d.cur.CompareAndSwap(cur, next) {
		return ctx
	}
	cancel() // another publish made the slot first
	return d.cur.Load().ctx
}

// sharedDeadline is a message's context, for its values, bounded by a
// shared deadline.
type sharedDeadline struct {
	context.Context
	deadline context.Context
}

func (c *sharedDeadline) Deadline() (time.Time, bool) { return c.deadline.Deadline() }
func (c *sharedDeadline) Done() <-chan struct{}       { return c.deadline.Done() }
func (c *sharedDeadline) Err() error                  { return c.deadline.Err() }

// AfterFunc lets contexts derived from a publish's context (a transport's
// context.WithTimeout) register with the shared deadline instead of each
// starting a goroutine to watch Done.
func (c *sharedDeadline) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.deadline, f)
}

func (f *Fallback) fallBack(h message.HandlerFunc, m *message.Message, cfg *FallbackConfig, from, key, reason string, cause error) ([]*message.Message, error) {
	// Only a key whose own publish failed is held. Holding keys that fell
	// back because the breaker is open would keep every busy key off the
	// transport for good: none would be left to probe it.
	if key != "" && (reason == ReasonError || reason == ReasonTimeout) && cfg.Cooldown > 0 {
		f.cooldown.hold(key, cfg.Cooldown)
	}
	m.Metadata.Set(f.transportKey, cfg.To)
	// Counted before the publish, which may be what tells a waiting caller
	// that the event is out.
	f.fallbacks.WithLabelValues(from, cfg.To, reason).Inc()
	out, err := h(m)
	if f.onFallback != nil {
		f.onFallback(m, from, cfg.To, reason, err)
	}
	if err != nil {
		// Back to where it was routed: a retry starts from the top.
		m.Metadata.Set(f.transportKey, from)
		if cause == nil {
			cause = fmt.Errorf("%s on %q", reason, from)
		}
		return nil, fmt.Errorf("middleware: fallback from %q to %q: %w", from, cfg.To, errors.Join(cause, err))
	}
	return out, nil
}

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

// cooldowns holds keys on the fallback until their time is up, in an LRU
// of CooldownKeys keys: past it the key held longest ago goes first.
// golang-lru's expirable cache would expire keys by itself, but its TTL is
// fixed when it is made while Cooldown reloads, and it starts a goroutine
// that nothing stops (v2.0.7); here a key's end (monotime) is its value
// instead, and an ended key stays until the LRU pushes it out.
type cooldowns struct {
	keys *lru.Cache[string, time.Duration]
	// last is the end of the latest hold, or noHold once it has passed:
	// then no key is held, and holds answers from it alone.
	last atomic.Int64
}

const noHold = math.MinInt64

func newCooldowns(maxKeys int) *cooldowns {
	keys, _ := lru.New[string, time.Duration](maxKeys) // errs only on a size <= 0
	c := &cooldowns{keys: keys}
	c.last.Store(noHold)
	return c
}

func (c *cooldowns) holds(key string) bool {
	last := c.last.Load()
	if last == noHold {
		return false
	}
	now := monotime.Now()
	if int64(now) >= last {
		c.last.CompareAndSwap(last, noHold) // unless a hold moved it on
		return false
	}
	until, ok := c.keys.Peek(key)
	return ok && now < until
}

func (c *cooldowns) hold(key string, cooldown time.Duration) {
	until := monotime.Now() + cooldown
	c.keys.Add(key, until)
	for {
		last := c.last.Load()
		if last >= int64(until) || c.last.CompareAndSwap(last, int64(until)) {
			return
		}
	}
}

func (c *cooldowns) held() int {
	now := monotime.Now()
	if int64(now) >= c.last.Load() {
		return 0
	}
	n := 0
	for _, until := range c.keys.Values() {
		if now < until {
			n++
		}
	}
	return n
}

// Held returns how many keys are held on the fallback now.
func (f *Fallback) Held() int { return f.cooldown.held() }
