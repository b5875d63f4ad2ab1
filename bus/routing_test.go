package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/middleware"
	"github.com/switchyard-go/switchyard/transports"
)

// stubs are publish-only transports that record what they take and fail
// on demand: "http" the baseline and "redis" the candidate of a rollout.
type stubs struct {
	mu   sync.Mutex
	fail map[string]error
	got  map[string][]*message.Message
}

func newStubs() *stubs {
	return &stubs{fail: map[string]error{}, got: map[string][]*message.Message{}}
}

func (s *stubs) registry() *transports.Registry {
	reg := transports.Default().Clone()
	reg.Register("stub", func(set transports.Settings) (transports.Transport, error) {
		name := set.Name
		return transports.Transport{Publisher: publisherFunc(func(_ string, msgs ...*message.Message) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if err := s.fail[name]; err != nil {
				return err
			}
			s.got[name] = append(s.got[name], msgs...)
			return nil
		})}, nil
	})
	return reg
}

func (s *stubs) setFail(name string, err error) {
	s.mu.Lock()
	s.fail[name] = err
	s.mu.Unlock()
}

func (s *stubs) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got[name])
}

// keysOn returns the event keys published on name.
func (s *stubs) keysOn(name string) map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := map[string]bool{}
	for _, m := range s.got[name] {
		keys[m.Metadata.Get(bus.MetaEventKey)] = true
	}
	return keys
}

func rolloutConfig(c *bus.Config) {
	c.Transports["http"] = map[string]any{"type": "stub"}
	c.Transports["redis"] = map[string]any{"type": "stub"}
	c.Routing.Baseline = "http"
	c.Routing.Candidate = "redis"
	c.Routing.Enabled = true
	c.Routing.Percentage = 50
	c.Routing.EventTypes = []string{"chat_message"}
	c.Coalescing.Enabled = false
	c.Consume.From = []string{}
}

func publishKeys(t *testing.T, b *bus.Bus, typ string, keys int) {
	t.Helper()
	for i := range keys {
		m := bus.NewMessage(typ, "conv-"+strconv.Itoa(i), []byte(`{}`))
		require.NoError(t, b.PublishSync(context.Background(), "events:chat", m))
	}
}

func TestBusRoutesAStickyShare(t *testing.T) {
	st := newStubs()
	b := newBus(t, rolloutConfig, bus.WithRegistry(st.registry()))
	start(t, b)

	publishKeys(t, b, "chat_message", 400)
	onRedis := st.keysOn("redis")
	assert.InDelta(t, 200, len(onRedis), 40, "about half the keys at 50%%")
	for _, m := range st.got["redis"] {
		assert.Equal(t, "redis", m.Metadata.Get(bus.MetaTransport))
		assert.Less(t, middleware.Bucket("", m.Metadata.Get(bus.MetaEventKey)), 5000)
	}

	// The same keys again go the same way; other types stay on the baseline.
	publishKeys(t, b, "chat_message", 400)
	assert.Equal(t, onRedis, st.keysOn("redis"))
	before := st.count("redis")
	publishKeys(t, b, "presence", 100)
	assert.Equal(t, before, st.count("redis"), "presence is not in routing.event_types")
}

func TestBusReloadAppliesRoutingKnobs(t *testing.T) {
	st := newStubs()
	reg := prometheus.NewRegistry()
	b := newBus(t, rolloutConfig, bus.WithRegistry(st.registry()), bus.WithRegisterer(reg))
	start(t, b)

	next := b.Config()
	next.Routing.Percentage = 100
	require.NoError(t, b.Reload(next))
	publishKeys(t, b, "chat_message", 50)
	assert.Equal(t, 50, st.count("redis"), "100%% sends every key to the candidate")

	next.Routing.Enabled = false // the master switch
	require.NoError(t, b.Reload(next))
	publishKeys(t, b, "chat_message", 50)
	assert.Equal(t, 50, st.count("redis"), "the master switch off sends everything to the baseline")
	assert.Equal(t, 50, st.count("http"))

	bad := next
	bad.Routing.Enabled = true
	bad.Routing.Percentage = 150
	err := b.Reload(bad)
	require.ErrorIs(t, err, bus.ErrInvalidConfig)
	assert.ErrorContains(t, err, "routing.percentage")
	assert.False(t, b.Config().Routing.Enabled, "a rejected reload changes nothing")
	publishKeys(t, b, "chat_message", 10)
	assert.Equal(t, 60, st.count("http"))

	assert.Equal(t, 2.0, counterOf(t, reg, "switchyard_config_reloads_total", "result", "applied"))
	assert.Equal(t, 1.0, counterOf(t, reg, "switchyard_config_reloads_total", "result", "rejected"))
	state := b.AdminState()
	assert.Equal(t, 2, state.Reloads)
	assert.Contains(t, state.LastReloadError, "routing.percentage")
}

// counterOf finds one sample of a counter family in reg.
func counterOf(t *testing.T, reg *prometheus.Registry, family, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", family, label, value)
	return 0
}

func TestBusFallsBackWhenTheCandidateFails(t *testing.T) {
	st := newStubs()
	reg := prometheus.NewRegistry()
	b := newBus(t, func(c *bus.Config) {
		rolloutConfig(c)
		c.Routing.Percentage = 100
		c.Routing.Fallback.Enabled = true
		c.Routing.Fallback.FailureThreshold = 2
	}, bus.WithRegistry(st.registry()), bus.WithRegisterer(reg))
	start(t, b)

	st.setFail("redis", errors.New("connection refused"))
	publishKeys(t, b, "chat_message", 20)
	assert.Equal(t, 20, st.count("http"), "every event reached the fallback")
	for _, m := range st.got["http"] {
		assert.Equal(t, "http", m.Metadata.Get(bus.MetaTransport))
	}
	assert.Equal(t, 2.0, counterOf(t, reg, "switchyard_fallbacks_total", "reason", "error"))
	assert.Equal(t, 18.0, counterOf(t, reg, "switchyard_fallbacks_total", "reason", "breaker_open"))
	assert.Equal(t, map[string]string{"redis": "open"}, b.AdminState().Breakers)
}

func TestBusFallbackOffFailsThenDeadLetters(t *testing.T) {
	st := newStubs()
	b := newBus(t, func(c *bus.Config) {
		rolloutConfig(c)
		c.Routing.Percentage = 100
		c.Bus.MaxRetries = 1
		c.Bus.RetryBackoff = time.Millisecond
	}, bus.WithRegistry(st.registry()))
	start(t, b)
	st.setFail("redis", errors.New("connection refused"))
	err := b.PublishSync(context.Background(), "events:chat", bus.NewMessage("chat_message", "k", nil))
	require.ErrorIs(t, err, bus.ErrDeadLettered)
	assert.Equal(t, 0, st.count("http"))
}

func TestBusWatchConfigFlipsTheMasterSwitch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "switchyard.yaml")
	const on = `
transports: {http: {type: stub}, redis: {type: stub}}
routing: {baseline: http, candidate: redis, enabled: true, percentage: 100}
coalescing: {enabled: false}
consume: {from: []}
`
	require.NoError(t, os.WriteFile(path, []byte(on), 0o600))
	cfg, err := bus.LoadConfig(bus.FromFile(path))
	require.NoError(t, err)
	st := newStubs()
	reg := prometheus.NewRegistry()
	b, err := bus.New(cfg, quiet, bus.WithRegistry(st.registry()), bus.WithRegisterer(reg))
	require.NoError(t, err)
	start(t, b)

	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan error, 1)
	go func() { watching <- b.WatchConfig(ctx, path, bus.FromFile(path)) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-watching)
	})

	publishKeys(t, b, "chat_message", 10)
	require.Equal(t, 10, st.count("redis"))

	// An invalid file is rejected, and the old configuration stays.
	require.NoError(t, os.WriteFile(path, []byte("routing: {percentage: 150}\n"), 0o600))
	require.Eventually(t, func() bool {
		return b.AdminState().LastReloadError != ""
	}, 5*time.Second, 5*time.Millisecond)
	assert.Contains(t, b.AdminState().LastReloadError, "routing.percentage")
	publishKeys(t, b, "chat_message", 10)
	assert.Equal(t, 20, st.count("redis"))

	// An empty file, as a file rewritten in place is for a moment, would be
	// valid (every key its default: the switch off) but is not applied.
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	require.Eventually(t, func() bool {
		return strings.Contains(b.AdminState().LastReloadError, "is empty")
	}, 5*time.Second, 5*time.Millisecond)
	publishKeys(t, b, "chat_message", 10)
	assert.Equal(t, 30, st.count("redis"))

	// Written the way editors do: a new file renamed over the old one.
	flipped := filepath.Join(dir, "new.yaml.tmp")
	require.NoError(t, os.WriteFile(flipped, []byte(
		"transports: {http: {type: stub}, redis: {type: stub}}\n"+
			"routing: {baseline: http, candidate: redis, enabled: false, percentage: 100}\n"+
			"coalescing: {enabled: false}\nconsume: {from: []}\n"), 0o600))
	flippedAt := time.Now()
	require.NoError(t, os.Rename(flipped, path))
	require.Eventually(t, func() bool { return !b.Config().Routing.Enabled }, time.Second, time.Millisecond,
		"the switch is off within 1s of the write")
	t.Logf("master switch applied %s after the rename", time.Since(flippedAt))
	publishKeys(t, b, "chat_message", 10)
	assert.Equal(t, 30, st.count("redis"))
	assert.Equal(t, 10, st.count("http"))
	// The invalid file and the empty one, at least (a write caught half
	// done is one more).
	assert.GreaterOrEqual(t, counterOf(t, reg, "switchyard_config_reloads_total", "result", "rejected"), 2.0)
}

func TestBusAdminHandler(t *testing.T) {
	st := newStubs()
	b := newBus(t, func(c *bus.Config) {
		rolloutConfig(c)
		c.Transports["redis"]["password"] = "hunter2"
		c.Routing.Fallback.Enabled = true
	}, bus.WithRegistry(st.registry()))
	start(t, b)
	publishKeys(t, b, "chat_message", 20)

	srv := httptest.NewServer(b.AdminHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.NotContains(t, string(body), "hunter2")

	var state struct {
		Config struct {
			Routing struct {
				Percentage float64 `json:"percentage"`
				Enabled    bool    `json:"enabled"`
			} `json:"routing"`
			Transports map[string]map[string]any `json:"transports"`
		} `json:"config"`
		Breakers map[string]string `json:"breakers"`
	}
	require.NoError(t, json.Unmarshal(body, &state))
	assert.Equal(t, 50.0, state.Config.Routing.Percentage)
	assert.True(t, state.Config.Routing.Enabled)
	assert.Equal(t, "xxxxx", state.Config.Transports["redis"]["password"])
	assert.Equal(t, "closed", state.Breakers["redis"])

	resp, err = http.Post(srv.URL, "text/plain", nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestBusConsumeFromDefaultsToRoutedSubscribers(t *testing.T) {
	st := newStubs()
	b := newBus(t, func(c *bus.Config) {
		rolloutConfig(c)
		c.Transports["inbox"] = map[string]any{"type": "memory"}
		c.Routing.Fallback.To = "inbox"
		c.Consume.From = nil
	}, bus.WithRegistry(st.registry()))
	assert.Equal(t, []string{"inbox"}, b.Config().Consume.From, "of the routed transports only inbox subscribes")
	_ = b.Close()

	_, err := bus.New(func() bus.Config {
		c := bus.DefaultConfig()
		rolloutConfig(&c)
		c.Consume.From = []string{"redis"}
		return c
	}(), quiet, bus.WithRegistry(st.registry()))
	require.ErrorIs(t, err, bus.ErrInvalidConfig)
	assert.ErrorContains(t, err, `consume.from: transport "redis" cannot subscribe`)

	none := newBus(t, func(c *bus.Config) { rolloutConfig(c); c.Consume.From = nil }, bus.WithRegistry(st.registry()))
	defer none.Close()
	require.ErrorIs(t, none.Handle("h", "events:chat", func(*message.Message) error { return nil }), bus.ErrNoInbound)
}
