package bus

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/fsnotify/fsnotify"
	kmaps "github.com/knadh/koanf/maps"
	"github.com/prometheus/client_golang/prometheus"
)

// reloadable are the keys Reload applies to a running bus; a change to any
// other is logged as needing a restart.
var reloadable = []string{
	"routing.enabled", "routing.percentage", "routing.event_types", "routing.salt",
	"routing.fallback.enabled", "routing.fallback.publish_timeout", "routing.fallback.cooldown",
	"coalescing.window",
}

// reloads guards b.cfg after New, serializes Reload, and keeps the last
// outcome for AdminState.
type reloads struct {
	mu      sync.Mutex
	count   int
	lastAt  time.Time
	lastErr error
	total   *prometheus.CounterVec
}

func (b *Bus) setupReloads() error {
	b.reloads.total = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_config_reloads_total",
		Help: "Configuration reloads, by result: applied or rejected (the old configuration stays).",
	}, []string{"result"})
	b.reloads.total.WithLabelValues("applied")
	b.reloads.total.WithLabelValues("rejected")
	return register(b.reg, b.reloads.total)
}

// Reload applies the routing knobs of next to the running bus without a
// restart: routing.enabled (the master switch), routing.percentage,
// routing.event_types, routing.salt, routing.fallback.enabled,
// publish_timeout and cooldown, and coalescing.window. Each stage swaps its
// settings atomically: an event sees the old or the new ones, never a mix
// within a stage. next is checked whole first; if it is invalid, Reload
// returns the error and changes nothing. Changes to other keys (transports,
// the ingress) are not applied; they are logged as needing a restart.
func (b *Bus) Reload(next Config) error {
	b.reloads.mu.Lock()
	defer b.reloads.mu.Unlock()
	restart, changed, err := b.reload(next)
	if err == nil && !changed {
		return nil // nothing to apply, nothing to say
	}
	if err != nil {
		b.rejectedLocked(err, nil)
		return err
	}
	b.reloads.lastAt, b.reloads.lastErr = time.Now(), nil
	b.reloads.count++
	b.reloads.total.WithLabelValues("applied").Inc()
	r := b.cfg.Routing
	b.logger.Info("Configuration reloaded", watermill.LogFields{
		"routing_enabled":    r.Enabled,
		"routing_percentage": r.Percentage,
		"fallback_enabled":   r.Fallback.Enabled,
		"coalescing_window":  b.cfg.Coalescing.Window.String(),
	})
	if len(restart) > 0 {
		b.logger.Info("Configuration changes that apply only after a restart", watermill.LogFields{
			"keys": strings.Join(restart, ", "),
		})
	}
	return nil
}

// reload is Reload under its lock; it returns the changed keys it did not
// apply, and whether any key changed at all.
func (b *Bus) reload(next Config) (restart []string, changed bool, err error) {
	if b.closed.Load() {
		return nil, false, ErrClosed
	}
	next.setDefaults()
	if next.Consume.From == nil {
		next.Consume.From = b.cfg.Consume.From
	}
	if err := errors.Join(next.Validate(), next.validateTransportTypes(b.registry)); err != nil {
		return nil, false, err
	}
	cur := b.cfg
	changes := changedKeys(cur, next)
	if len(changes) == 0 {
		return nil, false, nil
	}
	// What Reload does not apply keeps its running value, so that the
	// stages are built from a consistent configuration.
	applied := cur
	applied.Routing.Enabled = next.Routing.Enabled
	applied.Routing.Percentage = next.Routing.Percentage
	applied.Routing.EventTypes = slices.Clone(next.Routing.EventTypes)
	applied.Routing.Salt = next.Routing.Salt
	applied.Routing.Fallback.Enabled = next.Routing.Fallback.Enabled
	applied.Routing.Fallback.PublishTimeout = next.Routing.Fallback.PublishTimeout
	applied.Routing.Fallback.Cooldown = next.Routing.Fallback.Cooldown
	applied.Coalescing.Window = next.Coalescing.Window

	split := splitConfig(applied.Routing)
	if err := split.Validate(); err != nil {
		return nil, false, newConfigError("routing", err.Error())
	}
	if applied.Routing.Enabled && applied.Routing.Candidate == "" {
		return nil, false, newConfigError("routing.enabled", "the rollout needs routing.candidate, which is set only at start")
	}
	windowChanged := applied.Coalescing.Window != cur.Coalescing.Window
	if windowChanged && b.coalescer != nil {
		for _, typ := range cur.Coalescing.EventTypes {
			if err := b.coalescer.SetWindow(typ, applied.Coalescing.Window); err != nil {
				return nil, false, newConfigError("coalescing.window", err.Error())
			}
		}
	}
	if err := b.split.Update(split); err != nil {
		return nil, false, newConfigError("routing", err.Error())
	}
	if err := b.fallback.Update(fallbackConfig(applied.Routing)); err != nil {
		return nil, false, newConfigError("routing.fallback", err.Error())
	}
	// Only the fields Reload owns: the rest is read without the lock.
	b.cfg.Routing = applied.Routing
	b.cfg.Coalescing.Window = applied.Coalescing.Window

	for _, key := range changes {
		if !slices.Contains(reloadable, key) || (key == "coalescing.window" && b.coalescer == nil) {
			restart = append(restart, key)
		}
	}
	return restart, true, nil
}

// changedKeys lists the dotted keys whose values differ between a and b.
func changedKeys(a, b Config) []string {
	fa, _ := kmaps.Flatten(configValues(reflect.ValueOf(a)).(map[string]any), nil, ".")
	fb, _ := kmaps.Flatten(configValues(reflect.ValueOf(b)).(map[string]any), nil, ".")
	var out []string
	for k, v := range fa {
		if !reflect.DeepEqual(v, fb[k]) {
			out = append(out, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// WatchConfig reloads the bus (see Reload) each time the configuration file
// at path changes, until ctx ends; then it returns nil. Each reload reads
// sources in order, as LoadConfig does; without sources, FromFile(path) and
// then FromEnv(), so an EVENT_* variable still wins over the file. A file
// that cannot be read or is invalid is rejected, with its reason logged,
// and the bus keeps its configuration. Each time it reads the file it
// warns about every key of the file that a later source overrides: a
// change to that key in the file is ignored.
//
// It watches the file's directory, so that editors that rename a new file
// over it, and Kubernetes ConfigMap volumes that swap a symlink, are seen.
func (b *Bus) WatchConfig(ctx context.Context, path string, sources ...Source) error {
	if len(sources) == 0 {
		sources = []Source{FromFile(path), FromEnv()}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("bus: watch %s: %w", path, err)
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(path)); err != nil {
		return fmt.Errorf("bus: watch %s: %w", path, err)
	}
	// The file is read once now, in case it changed between the bus's start
	// and the watch: a reload to what runs already changes nothing.
	var last [sha256.Size]byte
	// Writes come in bursts (truncate, write, chmod): read once they settle.
	const settle = 20 * time.Millisecond
	pending := time.NewTimer(settle)
	defer pending.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			b.logger.Error("Configuration watch error", err, watermill.LogFields{"path": path})
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
			pending.Reset(settle)
		case <-pending.C:
			data, readErr := os.ReadFile(path)
			digest := sha256.Sum256(data)
			if readErr == nil && digest == last {
				continue
			}
			last = digest
			cfg, err := LoadConfig(sources...)
			switch {
			case readErr != nil:
				err = newConfigError(path, "cannot be read: "+readErr.Error())
			case len(data) == 0:
				// A file rewritten in place is empty for a moment, and an
				// empty file is valid: every key its default, the master
				// switch off. Write the file whole and rename it over.
				err = newConfigError(path, "is empty: taken for a file being written, not applied")
			}
			if err != nil {
				b.reloads.mu.Lock()
				b.rejectedLocked(err, watermill.LogFields{"path": path})
				b.reloads.mu.Unlock()
				continue
			}
			b.warnOverrides(path, sources)
			_ = b.Reload(cfg) // logs its own outcome
		}
	}
}

// rejectedLocked records, counts and logs a rejected reload; the caller
// holds b.reloads.mu.
func (b *Bus) rejectedLocked(err error, fields watermill.LogFields) {
	b.reloads.lastAt, b.reloads.lastErr = time.Now(), err
	b.reloads.total.WithLabelValues("rejected").Inc()
	b.logger.Error("Configuration reload rejected; the old configuration stays", err, fields)
}
