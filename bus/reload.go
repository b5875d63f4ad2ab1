package bus

import (
	"bytes"
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
	"github.com/prometheus/client_golang/prometheus"
)

// reloadable are the keys Reload applies to a running bus. A change to any
// other key is logged as needing a restart.
var reloadable = []string{
	"routing.enabled",
	"routing.percentage",
	"routing.event_types",
	"routing.salt",
	"routing.fallback.enabled",
	"routing.fallback.publish_timeout",
	"routing.fallback.cooldown",
	"coalescing.window",
}

// reloads guards b.cfg after New, serializes Reload, and remembers the last
// outcome for the admin handler.
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
	if err := b.reg.Register(b.reloads.total); err != nil {
		return fmt.Errorf("bus: register metrics: %w", err)
	}
	return nil
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
	restart, err := b.reload(next)
	b.reloads.lastAt = time.Now()
	b.reloads.lastErr = err
	if err != nil {
		b.reloads.total.WithLabelValues("rejected").Inc()
		b.logger.Error("Configuration reload rejected; the old configuration stays", err, nil)
		return err
	}
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
// apply.
func (b *Bus) reload(next Config) ([]string, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	next.setDefaults()
	if next.Consume.From == nil {
		next.Consume.From = b.cfg.Consume.From
	}
	if err := errors.Join(next.Validate(), next.validateTransportTypes(b.registry)); err != nil {
		return nil, err
	}
	cur := b.cfg
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
		return nil, newConfigError("routing", err.Error())
	}
	if applied.Routing.Enabled && applied.Routing.Candidate == "" {
		return nil, newConfigError("routing.enabled", "the rollout needs routing.candidate, which is set only at start")
	}
	windowChanged := applied.Coalescing.Window != cur.Coalescing.Window
	if windowChanged && b.coalescing != nil {
		for _, typ := range cur.Coalescing.EventTypes {
			if err := b.coalescing.mw.SetWindow(typ, applied.Coalescing.Window); err != nil {
				return nil, newConfigError("coalescing.window", err.Error())
			}
		}
	}
	if err := b.routing.split.Update(split); err != nil {
		return nil, newConfigError("routing", err.Error())
	}
	if err := b.routing.fallback.Update(fallbackConfig(applied.Routing)); err != nil {
		return nil, newConfigError("routing.fallback", err.Error())
	}
	// Only the fields Reload owns: the rest is read without the lock.
	b.cfg.Routing = applied.Routing
	b.cfg.Coalescing.Window = applied.Coalescing.Window

	var restart []string
	for _, key := range changedKeys(cur, next) {
		if !slices.Contains(reloadable, key) || (key == "coalescing.window" && b.coalescing == nil) {
			restart = append(restart, key)
		}
	}
	return restart, nil
}

// changedKeys lists the dotted keys whose values differ between a and b.
func changedKeys(a, b Config) []string {
	var out []string
	var walk func(prefix string, x, y any)
	walk = func(prefix string, x, y any) {
		mx, okx := x.(map[string]any)
		my, oky := y.(map[string]any)
		if !okx || !oky {
			if !reflect.DeepEqual(x, y) {
				out = append(out, prefix)
			}
			return
		}
		keys := make(map[string]struct{}, len(mx)+len(my))
		for k := range mx {
			keys[k] = struct{}{}
		}
		for k := range my {
			keys[k] = struct{}{}
		}
		for k := range keys {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			walk(p, mx[k], my[k])
		}
	}
	walk("", configValues(reflect.ValueOf(a)), configValues(reflect.ValueOf(b)))
	slices.Sort(out)
	return out
}

// WatchConfig reloads the bus (see Reload) each time the configuration file
// at path changes, until ctx ends; then it returns nil. Each reload reads
// sources in order, as LoadConfig does; without sources, FromFile(path) and
// then FromEnv(), so an EVENT_* variable set in the environment still wins
// over the file. A file that cannot be read or is invalid is rejected, with
// its reason logged, and the bus keeps its configuration.
//
// It watches the file's directory, so that editors that write a new file
// and rename it, and Kubernetes ConfigMap volumes that swap a symlink, are
// seen too.
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
	last := fileDigest(path)
	// Writes come in bursts (truncate, write, chmod): read once they settle.
	const settle = 20 * time.Millisecond
	pending := time.NewTimer(time.Hour)
	pending.Stop()
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
			digest := fileDigest(path)
			if bytes.Equal(digest, last) {
				continue
			}
			last = digest
			cfg, err := LoadConfig(sources...)
			if err != nil {
				b.reloads.mu.Lock()
				b.reloads.lastAt, b.reloads.lastErr = time.Now(), err
				b.reloads.mu.Unlock()
				b.reloads.total.WithLabelValues("rejected").Inc()
				b.logger.Error("Configuration reload rejected; the old configuration stays", err, watermill.LogFields{"path": path})
				continue
			}
			_ = b.Reload(cfg) // logs its own outcome
		}
	}
}

// fileDigest is the SHA-256 of the file's content, nil when unreadable.
func fileDigest(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(data)
	return sum[:]
}
