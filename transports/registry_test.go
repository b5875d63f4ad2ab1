package transports_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
)

// factoryNamed returns a factory whose transport's publisher records name, so
// a test can tell which factory Lookup returned (funcs are not comparable).
func factoryNamed(name string) transports.Factory {
	return func(transports.Settings) (transports.Transport, error) {
		return transports.Transport{Publisher: namedPublisher(name)}, nil
	}
}

type namedPublisher string

func (namedPublisher) Publish(string, ...*message.Message) error { return nil }
func (namedPublisher) Close() error                              { return nil }

func built(t *testing.T, f transports.Factory) string {
	t.Helper()
	tr, err := f(transports.Settings{})
	require.NoError(t, err)
	return string(tr.Publisher.(namedPublisher))
}

func TestRegistryLookup(t *testing.T) {
	tests := []struct {
		name       string
		registered []string
		lookup     string
		wantErr    string // empty: the lookup succeeds
	}{
		{name: "only one", registered: []string{"memory"}, lookup: "memory"},
		{name: "among several", registered: []string{"redis", "memory", "http"}, lookup: "http"},
		{
			name:       "unknown lists the known sorted",
			registered: []string{"redis", "memory", "http"},
			lookup:     "nats",
			wantErr:    `transports: unknown transport type "nats" (known: http, memory, redis; is its package imported?`,
		},
		{
			name:    "unknown in an empty registry",
			lookup:  "memory",
			wantErr: `transports: unknown transport type "memory" (known: ;`,
		},
		{
			name:       "names are case sensitive",
			registered: []string{"memory"},
			lookup:     "Memory",
			wantErr:    `unknown transport type "Memory" (known: memory;`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := transports.NewRegistry()
			for _, n := range tt.registered {
				r.Register(n, factoryNamed(n))
			}
			f, err := r.Lookup(tt.lookup)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, transports.ErrUnknown)
				require.Contains(t, err.Error(), tt.wantErr)
				require.Contains(t, err.Error(), "transports/all", "the error hints at the forgotten import")
				require.Nil(t, f)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.lookup, built(t, f))
		})
	}
}

func TestRegistryNamesSorted(t *testing.T) {
	r := transports.NewRegistry()
	require.Empty(t, r.Names())
	for _, n := range []string{"zeta", "alpha", "mid", "Beta"} {
		r.Register(n, factoryNamed(n))
	}
	require.Equal(t, []string{"Beta", "alpha", "mid", "zeta"}, r.Names())
}

func TestRegistryRegisterPanics(t *testing.T) {
	tests := []struct {
		name      string
		register  string
		factory   transports.Factory
		wantPanic string
	}{
		{name: "empty name", register: "", factory: factoryNamed(""), wantPanic: "transports: Register with an empty name"},
		{name: "nil factory", register: "nilly", factory: nil, wantPanic: "transports: Register factory is nil for nilly"},
		{name: "duplicate", register: "memory", factory: factoryNamed("other"), wantPanic: "transports: Register called twice for memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := transports.NewRegistry()
			r.Register("memory", factoryNamed("memory"))
			require.PanicsWithValue(t, tt.wantPanic, func() { r.Register(tt.register, tt.factory) })

			// A refused registration leaves the registry as it was.
			require.Equal(t, []string{"memory"}, r.Names())
			f, err := r.Lookup("memory")
			require.NoError(t, err)
			require.Equal(t, "memory", built(t, f))
		})
	}
}

func TestRegistryCloneIsIndependent(t *testing.T) {
	orig := transports.NewRegistry()
	orig.Register("memory", factoryNamed("memory"))

	clone := orig.Clone()
	require.Equal(t, orig.Names(), clone.Names())
	f, err := clone.Lookup("memory")
	require.NoError(t, err)
	require.Equal(t, "memory", built(t, f), "a clone holds the same factories")

	clone.Register("fake", factoryNamed("fake"))
	orig.Register("redis", factoryNamed("redis"))

	require.Equal(t, []string{"memory", "redis"}, orig.Names())
	require.Equal(t, []string{"fake", "memory"}, clone.Names())
	_, err = orig.Lookup("fake")
	require.ErrorIs(t, err, transports.ErrUnknown)
	_, err = clone.Lookup("redis")
	require.ErrorIs(t, err, transports.ErrUnknown)

	// The clone may take a name the original already has, and the other way round.
	require.NotPanics(t, func() { clone.Register("redis", factoryNamed("clone-redis")) })
	f, err = clone.Lookup("redis")
	require.NoError(t, err)
	require.Equal(t, "clone-redis", built(t, f))
	f, err = orig.Lookup("redis")
	require.NoError(t, err)
	require.Equal(t, "redis", built(t, f))
}

func TestRegistryConcurrentUse(t *testing.T) {
	r := transports.NewRegistry()
	var wg sync.WaitGroup
	for i := range 8 {
		name := fmt.Sprintf("t%d", i)
		wg.Go(func() {
			r.Register(name, factoryNamed(name))
			for range 100 {
				f, err := r.Lookup(name)
				if err != nil || f == nil {
					t.Errorf("Lookup(%q) after Register: %v", name, err)
					return
				}
				_ = r.Names()
				_ = r.Clone()
			}
		})
	}
	wg.Wait()
	require.Len(t, r.Names(), 8)
}

func TestFactoryErrorIsReturnedAsIs(t *testing.T) {
	errBoom := errors.New("boom")
	r := transports.NewRegistry()
	r.Register("broken", func(transports.Settings) (transports.Transport, error) {
		return transports.Transport{}, errBoom
	})
	f, err := r.Lookup("broken")
	require.NoError(t, err)
	_, err = f(transports.Settings{Name: "x"})
	require.ErrorIs(t, err, errBoom)
}

func TestDefaultRegistry(t *testing.T) {
	require.NotNil(t, transports.Default())
	require.Equal(t, transports.Default().Names(), transports.Names())
	_, err := transports.Default().Lookup("no-such-transport")
	require.ErrorIs(t, err, transports.ErrUnknown)
	require.True(t, strings.Contains(err.Error(), "transports/all"))
}
