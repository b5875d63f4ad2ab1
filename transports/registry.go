package transports

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrUnknown is returned, wrapped, when a configuration names a transport type
// that no factory was registered for.
var ErrUnknown = errors.New("transports: unknown transport type")

// Transport is what a factory builds: a publisher, a subscriber, or both.
// Either field may be nil when the transport cannot do that side. When both
// are the same value it is closed once.
type Transport struct {
	Publisher  message.Publisher
	Subscriber message.Subscriber
	// InProcess says that events never leave the process: the transport
	// hands them from its publisher to its subscribers in memory. The bus
	// leaves such transports out of the delivery latency unless
	// metrics.in_process_delivery_latency is set.
	InProcess bool
}

// Settings is what a factory gets to build one configured transport.
type Settings struct {
	// Name is the instance name the configuration gave the transport
	// (the key under `transports:`), for logs and metric labels.
	Name string
	// Decode decodes the transport's own configuration section (every key but
	// `type`) into target, a pointer to the factory's config struct whose
	// fields carry `koanf` tags. Unknown keys are an error that names them.
	Decode func(target any) error
	// Logger is never nil.
	Logger watermill.LoggerAdapter
	// Registerer is where the transport registers its metrics; never the
	// global default registry. Never nil. It is shared by every transport
	// of a bus, unlabelled: a transport that two instances may register
	// twice reuses the collector already there (see
	// prometheus.AlreadyRegisteredError) or labels its series with Name.
	Registerer prometheus.Registerer
}

// Factory builds a transport from its settings.
type Factory func(Settings) (Transport, error)

// Drainer is implemented by publishers and subscribers that hold accepted
// messages in process (queues, batches: an HTTP receiver's queue of requests
// it answered 202 for) and can wait until every one of them has been handed
// on, a subscriber's to its subscriptions, which stay open. Drain returns
// once nothing is left or ctx ends; in the latter case the error says how
// many messages were left.
type Drainer interface {
	Drain(ctx context.Context) error
}

// Registry maps transport type names to factories. The zero value is not
// usable; use NewRegistry. Tests build their own Registry so they never touch
// the process-wide one that Register fills.
type Registry struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: make(map[string]Factory)}
}

// Register makes a factory available under name. Like database/sql.Register
// it panics when name is empty, the factory is nil, or the name is taken: all
// three are programming errors found at init.
func (r *Registry) Register(name string, f Factory) {
	if name == "" {
		panic("transports: Register with an empty name")
	}
	if f == nil {
		panic("transports: Register factory is nil for " + name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.factories[name]; dup {
		panic("transports: Register called twice for " + name)
	}
	r.factories[name] = f
}

// Lookup returns the factory registered under name, or an error wrapping
// ErrUnknown that lists the known names, sorted.
func (r *Registry) Lookup(name string) (Factory, error) {
	r.mu.RLock()
	f, ok := r.factories[name]
	r.mu.RUnlock()
	if !ok {
		known := r.Names()
		return nil, fmt.Errorf("%w %q (known: %s; is its package imported? transports/all imports every built-in one)",
			ErrUnknown, name, strings.Join(known, ", "))
	}
	return f, nil
}

// Names returns the registered type names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.factories))
	for n := range r.factories {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Clone returns a new registry holding the same factories, for a test that
// wants the built-ins plus its own.
func (r *Registry) Clone() *Registry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := NewRegistry()
	for n, f := range r.factories {
		c.factories[n] = f
	}
	return c
}

var defaultRegistry = NewRegistry()

// Default returns the process-wide registry that Register fills.
func Default() *Registry { return defaultRegistry }

// Register registers a factory in the process-wide registry; call it from the
// init function of a transport package. It panics on an empty name, a nil
// factory, or a duplicate name.
func Register(name string, f Factory) { defaultRegistry.Register(name, f) }

// Names returns the type names in the process-wide registry, sorted.
func Names() []string { return defaultRegistry.Names() }
