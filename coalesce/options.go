package coalesce

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults applied to zero fields of Config.
const (
	DefaultMaxKeys = 100000
	DefaultTick    = time.Millisecond
)

// MaxWindow is the longest window: windows are kept in microseconds, in 31
// bits. Add cuts a longer one to it.
const MaxWindow = time.Duration(maxMicros) * time.Microsecond

// maxKeysLimit keeps slot indexes in the table's 24 bits.
const maxKeysLimit = indexMask - 1

// Config configures a Coalescer. The zero value is usable: every zero field
// takes its default.
type Config struct {
	// MaxKeys bounds the keys tracked at once, and so the memory used. A key
	// is tracked from its leading edge until a window of it ends with nothing
	// pending. Past the bound Add returns Overflow and takes nothing.
	// Default 100,000; at most 16,777,214.
	MaxKeys int `koanf:"max_keys"`
	// Tick is the resolution of window ends: a window ends on the first tick
	// (counted from New) at or after its deadline, so that the goroutine
	// that ends them wakes at most once a tick however many keys there are.
	// Default 1ms.
	Tick time.Duration `koanf:"tick"`
}

func (c *Config) setDefaults() {
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.Tick == 0 {
		c.Tick = DefaultTick
	}
}

// Validate reports every invalid field, each error naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.MaxKeys < 0 || c.MaxKeys > maxKeysLimit {
		errs = append(errs, fmt.Errorf("coalesce: max_keys: must be between 1 and %d, got %d", maxKeysLimit, c.MaxKeys))
	}
	if c.Tick < 0 {
		errs = append(errs, fmt.Errorf("coalesce: tick: must not be negative, got %s", c.Tick))
	}
	return errors.Join(errs...)
}

// Option sets what a configuration file cannot hold.
type Option func(*options)

type options struct {
	merge      any // func(T, T) T, checked by New
	registerer prometheus.Registerer
}

// WithMerge makes a value added to a window that already holds a pending
// one replace it with merge(pending, next) instead of next alone (latest
// wins). merge runs with a lock held: keep it short, and never call the
// Coalescer from it. New fails if T is not the Coalescer's value type.
// NewMiddleware ignores it: there the latest message wins.
func WithMerge[T any](merge func(pending, next T) T) Option {
	return func(o *options) { o.merge = merge }
}

// WithRegisterer registers the middleware's metrics with r (New registers
// none). Without it they are registered nowhere, never with the global
// registry.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) { o.registerer = r }
}

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
