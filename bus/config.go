package bus

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchyard-go/switchyard/coalesce"
	"github.com/switchyard-go/switchyard/internal/queue"
	"github.com/switchyard-go/switchyard/middleware"
	"github.com/switchyard-go/switchyard/transports"
)

// Config is the whole configuration of a bus. Build it with LoadConfig
// (defaults < file < environment) or start from DefaultConfig; a zero scalar
// field takes its default, but a false bool or an empty list is kept as a
// choice. docs/configuration.md lists every key.
type Config struct {
	Bus BusConfig `koanf:"bus"`
	// Transports maps a transport's name to its settings: `type`, the
	// registered factory that builds it, and the keys that type documents.
	Transports map[string]map[string]any `koanf:"transports"`
	Routing    RoutingConfig             `koanf:"routing"`
	Coalescing CoalescingConfig          `koanf:"coalescing"`
	Consume    ConsumeConfig             `koanf:"consume"`
	Metrics    MetricsConfig             `koanf:"metrics"`
}

// MetricsConfig shapes the bus's Prometheus metrics.
type MetricsConfig struct {
	// EventTypes are the event types that get their own event_type label
	// value; any other type is counted as "other", so that event types from
	// untrusted input cannot grow the number of series. The types listed
	// in routing.event_types and coalescing.event_types are added.
	EventTypes []string `koanf:"event_types"`
	// NativeHistograms adds Prometheus native (sparse) buckets to every
	// histogram, beside the classic ones.
	NativeHistograms bool `koanf:"native_histograms"`
	// InProcessDeliveryLatency observes event_delivery_latency_seconds on
	// in-process transports (memory, gochannel) too, not only on those that
	// carry events between processes: in process, the ingress wait and the
	// memory transport's queue depth show where an event waits, at less
	// cost per event.
	InProcessDeliveryLatency bool `koanf:"in_process_delivery_latency"`
}

// BusConfig configures the ingress (the bounded, per-key ordered queue that
// Publish feeds) and the bus's lifecycle.
type BusConfig struct {
	// Lanes is the number of per-key ordered lanes of the ingress.
	Lanes int `koanf:"lanes"`
	// QueueSize bounds the messages accepted and not yet handed to a transport.
	QueueSize int `koanf:"queue_size"`
	// OnFull is "block" (wait until the message context's deadline) or
	// "reject" (fail with ErrQueueFull).
	OnFull string `koanf:"on_full"`
	// MaxRetries is how many times a message whose publish failed is tried
	// again before it is dead-lettered; negative retries without limit, and
	// 0 takes the default, 5.
	MaxRetries int `koanf:"max_retries"`
	// RetryBackoff is the wait before the first retry; it doubles up to
	// MaxRetryBackoff.
	RetryBackoff    time.Duration `koanf:"retry_backoff"`
	MaxRetryBackoff time.Duration `koanf:"max_retry_backoff"`
	// CloseTimeout bounds Close, drain included.
	CloseTimeout time.Duration `koanf:"close_timeout"`
	// DeadLetter is where messages go that could not be published.
	DeadLetter DeadLetterConfig `koanf:"dead_letter"`
}

// DeadLetterConfig names a configured transport and a topic.
type DeadLetterConfig struct {
	Transport string `koanf:"transport"`
	Topic     string `koanf:"topic"`
}

// RoutingConfig chooses the transport of each event: the baseline, or the
// candidate for a sticky percentage of keys while the rollout is enabled.
type RoutingConfig struct {
	Baseline  string `koanf:"baseline"`
	Candidate string `koanf:"candidate"`
	// Enabled is the rollout's master switch: false sends every event to
	// the baseline whatever Percentage says.
	Enabled bool `koanf:"enabled"`
	// Percentage, 0 to 100, is the share of keys sent to the candidate.
	Percentage float64 `koanf:"percentage"`
	// EventTypes limits the rollout to these types; empty means every type.
	EventTypes []string `koanf:"event_types"`
	// Salt changes which keys a given percentage picks.
	Salt     string         `koanf:"salt"`
	Fallback FallbackConfig `koanf:"fallback"`
}

// FallbackConfig says where an event goes when its transport fails.
type FallbackConfig struct {
	Enabled bool `koanf:"enabled"`
	// To is the transport to fall back to; empty means the baseline.
	To string `koanf:"to"`
	// PublishTimeout is how long a publish may take before it counts as a
	// failure.
	PublishTimeout time.Duration `koanf:"publish_timeout"`
	// Cooldown is how long a key whose publish failed (error or timeout)
	// keeps to the fallback, so that its events are not spread over two
	// transports (and reordered) while the failing one flaps.
	Cooldown time.Duration `koanf:"cooldown"`
	// FailureThreshold is how many publishes in a row must fail on a
	// transport before its circuit breaker opens: events then go to the
	// fallback at once, without paying PublishTimeout.
	FailureThreshold int `koanf:"failure_threshold"`
	// ProbeInterval is how long an open breaker waits before it lets one
	// publish through to probe its transport; success closes it.
	ProbeInterval time.Duration `koanf:"probe_interval"`
	// MaxKeys bounds the keys held on the fallback by their cooldown.
	MaxKeys int `koanf:"max_keys"`
}

// CoalescingConfig throttles bursty event types per key.
type CoalescingConfig struct {
	Enabled bool          `koanf:"enabled"`
	Window  time.Duration `koanf:"window"`
	// EventTypes are the types coalesced; other types pass through.
	EventTypes []string `koanf:"event_types"`
	// MaxKeys bounds the keys tracked at once, and so the memory used.
	MaxKeys int `koanf:"max_keys"`
}

// ConsumeConfig lists the inbound transports that Handle and Subscribe fan
// in. Left unset (nil), it is every transport of routing (baseline,
// candidate, fallback) that can subscribe, so that a consumer reads both
// paths of a rollout.
type ConsumeConfig struct {
	From []string `koanf:"from"`
}

// The defaults that are the bus's own; the others are those of the
// packages that do the work (internal/queue, middleware, coalesce).
const (
	defaultTransport    = "memory"
	defaultCloseTimeout = 10 * time.Second
	defaultWindow       = 100 * time.Millisecond
	maxLanes            = 1 << 16
)

// DefaultConfig returns the configuration a bus runs with when nothing is
// configured: everything on the in-process memory transport, coalescing of
// typing events on, no rollout. Go code that builds a Config should start
// from it: a zero bool in a Config literal means false, not the default.
func DefaultConfig() Config {
	return Config{
		Bus: BusConfig{
			Lanes:           queue.DefaultLanes,
			QueueSize:       queue.DefaultQueueSize,
			OnFull:          string(queue.Block),
			MaxRetries:      queue.DefaultMaxRetries,
			RetryBackoff:    queue.DefaultRetryBackoff,
			MaxRetryBackoff: queue.DefaultMaxRetryBackoff,
			CloseTimeout:    defaultCloseTimeout,
			DeadLetter:      DeadLetterConfig{Transport: defaultTransport, Topic: queue.DefaultDeadLetterTopic},
		},
		Transports: defaultTransports(),
		Routing: RoutingConfig{
			Baseline:   defaultTransport,
			EventTypes: []string{},
			Fallback: FallbackConfig{
				PublishTimeout:   middleware.DefaultPublishTimeout,
				Cooldown:         middleware.DefaultCooldown,
				FailureThreshold: middleware.DefaultFailureThreshold,
				ProbeInterval:    middleware.DefaultProbeInterval,
				MaxKeys:          middleware.DefaultCooldownKeys,
			},
		},
		Coalescing: CoalescingConfig{
			Enabled:    true,
			Window:     defaultWindow,
			EventTypes: []string{"typing"},
			MaxKeys:    coalesce.DefaultMaxKeys,
		},
		// Consume.From nil: every routed transport that can subscribe.
		Metrics: MetricsConfig{EventTypes: []string{"chat_message", "typing"}},
	}
}

func defaultTransports() map[string]map[string]any {
	return map[string]map[string]any{defaultTransport: {"type": defaultTransport}}
}

// setDefaults gives each zero string, number and duration of c its value
// in DefaultConfig, so that a Config literal means the same as a file that
// leaves those keys out. Bools and lists are choices, left alone; so is a
// nil Consume.From, for New.
func (c *Config) setDefaults() {
	fillZero(reflect.ValueOf(c).Elem(), reflect.ValueOf(DefaultConfig()))
	if c.Transports == nil {
		c.Transports = defaultTransports()
	}
}

func fillZero(v, def reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fillZero(v.Field(i), def.Field(i))
		}
	case reflect.String, reflect.Int, reflect.Int64, reflect.Float64:
		if v.IsZero() {
			v.Set(def)
		}
	}
}

// ErrInvalidConfig matches, with errors.Is, every *ConfigError.
var ErrInvalidConfig = errors.New("bus: invalid config")

// ConfigError is one problem with a configuration. Key is the dotted key
// (`routing.percentage`), an environment variable, or a file path: whatever
// the user has to change.
type ConfigError struct {
	Key    string
	Reason string
	err    error // the cause, when there is one worth errors.Is (fs.ErrNotExist)
}

func (e *ConfigError) Error() string { return redactString("bus: config: " + e.Key + ": " + e.Reason) }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns the cause, if any.
func (e *ConfigError) Unwrap() error { return e.err }

func newConfigError(key, reason string) *ConfigError {
	return &ConfigError{Key: key, Reason: redactString(reason)}
}

// Validate reports every problem of c at once, joined, each a *ConfigError
// naming its key. It checks c as given: New and LoadConfig apply the
// defaults first.
func (c Config) Validate() error {
	var v validation
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			v.add(key, "must be positive, got %s", d)
		}
	}
	notNegative := func(key string, d time.Duration) {
		if d < 0 {
			v.add(key, "must not be negative, got %s", d)
		}
	}
	atLeastOne := func(key string, n int) {
		if n < 1 {
			v.add(key, "must be at least 1, got %d", n)
		}
	}
	b := c.Bus
	if b.Lanes < 1 || b.Lanes > maxLanes {
		v.add("bus.lanes", "must be between 1 and %d, got %d", maxLanes, b.Lanes)
	}
	atLeastOne("bus.queue_size", b.QueueSize)
	if b.OnFull != "block" && b.OnFull != "reject" {
		v.add("bus.on_full", `must be "block" or "reject", got %q`, b.OnFull)
	}
	positive("bus.close_timeout", b.CloseTimeout)
	notNegative("bus.retry_backoff", b.RetryBackoff)
	notNegative("bus.max_retry_backoff", b.MaxRetryBackoff)
	c.checkTransport(&v, "bus.dead_letter.transport", b.DeadLetter.Transport)
	if b.DeadLetter.Topic == "" {
		v.add("bus.dead_letter.topic", "must not be empty")
	}

	for _, name := range c.transportNames() {
		key := "transports." + name + ".type"
		switch typ, ok := c.Transports[name]["type"]; {
		case !ok || typ == nil:
			v.add(key, "is required: it names the transport's registered factory")
		case typ == "":
			v.add(key, "must not be empty")
		default:
			if _, isString := typ.(string); !isString {
				v.add(key, "must be a string, got %v", typ)
			}
		}
	}

	r := c.Routing
	c.checkTransport(&v, "routing.baseline", r.Baseline)
	switch {
	case r.Candidate != "":
		c.checkTransport(&v, "routing.candidate", r.Candidate)
	case r.Enabled:
		v.add("routing.candidate", "must name a configured transport when routing.enabled is true")
	}
	if !(r.Percentage >= 0 && r.Percentage <= 100) { // written so that NaN fails
		v.add("routing.percentage", "must be between 0 and 100, got %g", r.Percentage)
	}
	if r.Fallback.To != "" {
		c.checkTransport(&v, "routing.fallback.to", r.Fallback.To)
	}
	// Checked even while fallback is off: it can be switched on later.
	positive("routing.fallback.publish_timeout", r.Fallback.PublishTimeout)
	positive("routing.fallback.cooldown", r.Fallback.Cooldown)
	atLeastOne("routing.fallback.failure_threshold", r.Fallback.FailureThreshold)
	positive("routing.fallback.probe_interval", r.Fallback.ProbeInterval)
	atLeastOne("routing.fallback.max_keys", r.Fallback.MaxKeys)

	co := c.Coalescing
	if co.Window < 0 || (co.Enabled && co.Window == 0) {
		v.add("coalescing.window", "must be positive, got %s", co.Window)
	}
	atLeastOne("coalescing.max_keys", co.MaxKeys)

	// Event types and transport names are metric label values, which
	// Prometheus wants in UTF-8: a scrape would fail.
	for _, list := range []struct {
		key   string
		types []string
	}{{"metrics.event_types", c.Metrics.EventTypes}, {"routing.event_types", r.EventTypes}, {"coalescing.event_types", co.EventTypes}} {
		for _, t := range list.types {
			if !utf8.ValidString(t) {
				v.add(list.key, "%q is not valid UTF-8 (event types are metric label values)", t)
			}
		}
	}
	for _, name := range c.transportNames() {
		if !utf8.ValidString(name) {
			v.add("transports", "the name %q is not valid UTF-8 (transport names are metric label values)", name)
		}
	}

	for i, name := range c.Consume.From {
		if slices.Contains(c.Consume.From[:i], name) {
			v.add("consume.from", "lists %q twice", name)
		} else {
			c.checkTransport(&v, "consume.from", name)
		}
	}
	if len(v) == 0 {
		return nil
	}
	// A reason may quote a value (a transport name that is a URL, say).
	return joinConfigErrors(v, configSecrets(c))
}

// validateTransportTypes reports each configured transport whose type no
// factory in reg is registered for; the reason lists the known types.
func (c Config) validateTransportTypes(reg *transports.Registry) error {
	var errs []error
	for _, name := range c.transportNames() {
		typ, ok := c.Transports[name]["type"].(string)
		if !ok || typ == "" {
			continue // Validate reports it
		}
		if _, err := reg.Lookup(typ); err != nil {
			errs = append(errs, &ConfigError{Key: "transports." + name + ".type", Reason: err.Error(), err: err})
		}
	}
	return errors.Join(errs...)
}

func (c Config) checkTransport(v *validation, key, name string) {
	configured := strings.Join(c.transportNames(), ", ")
	if name == "" {
		v.add(key, "must name a configured transport (configured: %s)", configured)
	} else if _, ok := c.Transports[name]; !ok {
		v.add(key, "names no configured transport: %q (configured: %s)", name, configured)
	}
}

func (c Config) transportNames() []string {
	return slices.Sorted(maps.Keys(c.Transports))
}

type validation []error

func (v *validation) add(key, format string, args ...any) {
	*v = append(*v, newConfigError(key, fmt.Sprintf(format, args...)))
}
