package bus_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestRolloutSurvivesRedisPasswordRotation: the application publishes 2,000
// events, half with PublishSync and half with Publish, through a rollout at
// 100% on Redis Streams with fallback to HTTP; a quarter of the way through,
// its Redis user's password changes and its connections are closed, so
// every new one is refused at AUTH. Every event reaches the hub, on Redis
// or HTTP; PublishSync returns nil only for an event that was written; and
// the refused publishes count as Redis publishes with the error outcome.
func TestRolloutSurvivesRedisPasswordRotation(t *testing.T) {
	const (
		events      = 2000
		keys        = 50
		appPassword = "app-Pw-k4q"
		newPassword = "app-N3w-m8z"
	)
	srv := redistest.Start(t, redistest.WithPassword("hub-Adm-p2x"),
		redistest.WithACL("user app on >"+appPassword+" ~* &* +@all"))
	hub := startHub(t, srv.URL()) // the default user, whose password stays

	reg := prometheus.NewRegistry()
	cfg, err := bus.LoadConfig(bus.FromMap(map[string]any{
		"transports": map[string]any{
			"redis": map[string]any{"type": "redisstream", "url": "redis://app:" + appPassword + "@" + srv.Addr() + "/0"},
			"http":  map[string]any{"type": "http", "url": hub.url, "timeout": "5s"},
		},
		"routing": map[string]any{
			"baseline": "http", "candidate": "redis", "enabled": true, "percentage": 100,
			"fallback": map[string]any{
				"enabled": true, "publish_timeout": "1s", "cooldown": "300ms",
				"failure_threshold": 3, "probe_interval": "200ms",
			},
		},
		"bus":        map[string]any{"close_timeout": "60s"},
		"coalescing": map[string]any{"enabled": false},
		"consume":    map[string]any{"from": []any{}},
	}))
	require.NoError(t, err)
	app, err := bus.New(cfg, quiet, bus.WithRegisterer(reg))
	require.NoError(t, err)
	start(t, app)

	synced := map[string]bool{} // UUIDs PublishSync returned nil for
	accepted := 0
	for i := range events {
		if i == events/4 {
			srv.Do(t, "ACL", "SETUSER", "app", "resetpass", ">"+newPassword)
			srv.Do(t, "CLIENT", "KILL", "USER", "app")
		}
		m := bus.NewMessage("chat_message", "conv-"+strconv.Itoa(i%keys), []byte(strconv.Itoa(i)))
		if i%2 == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := app.PublishSync(ctx, "events:chat", m)
			cancel()
			if assert.NoError(t, err, "event %d: HTTP takes what Redis refuses", i) {
				synced[m.UUID] = true
				accepted++
			}
			continue
		}
		require.NoError(t, app.Publish("events:chat", m))
		accepted++
	}

	deadline := time.After(60 * time.Second)
	for n := 0; n < accepted; n++ {
		select {
		case <-hub.unique:
		case <-deadline:
			t.Fatalf("the hub has %d of the %d accepted events", hub.uniqueCount(), accepted)
		}
	}
	hub.mu.Lock()
	onHTTP, onRedis := 0, 0
	for uuid := range synced {
		assert.NotEmpty(t, hub.byUUID[uuid], "PublishSync returned nil for an event written nowhere")
	}
	for _, ts := range hub.byUUID {
		if slices.Contains(ts, "http") {
			onHTTP++
		}
		if slices.Contains(ts, "redis") {
			onRedis++
		}
	}
	hub.mu.Unlock()
	assert.Equal(t, events, accepted)
	assert.Equal(t, accepted, hub.uniqueCount(), "0 lost")
	assert.Positive(t, onHTTP, "events fell back to HTTP")

	// The refused publishes are Redis publishes that failed: the duration
	// histogram times them, and the outcome counter says error.
	families := metricsGather(t, reg)
	sum := func(family string, labels map[string]string) float64 {
		total := 0.0
		for _, s := range families[family] {
			match := true
			for k, v := range labels {
				match = match && s.labels[k] == v
			}
			if match {
				total += s.value
			}
		}
		return total
	}
	failed := sum("switchyard_events_published_total", map[string]string{"transport": "redis", "outcome": "error"})
	ok := sum("switchyard_events_published_total", map[string]string{"transport": "redis", "outcome": "ok"})
	timed := sum("event_publish_duration_seconds", map[string]string{"transport": "redis"})
	t.Logf("redis publishes: %v ok, %v failed; %d events on HTTP", ok, failed, onHTTP)
	assert.Positive(t, failed, "the refused publishes count as errors")
	assert.Equal(t, ok+failed, timed, "every Redis publish is timed, the failed ones too")
	assert.LessOrEqual(t, ok, float64(onRedis), "a publish counted ok is on Redis")
}
