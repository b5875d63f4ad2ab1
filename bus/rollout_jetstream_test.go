package bus_test

import (
	"context"
	"fmt"
	"net"
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
	httptransport "github.com/switchyard-go/switchyard/transports/http"
	"github.com/switchyard-go/switchyard/transports/jetstream/jstest"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestRolloutSplitsRedisAndJetStream: a rollout from Redis Streams
// (baseline) to JetStream (candidate) at 50%, one bus publishing and
// consuming both. Every event arrives once, on the transport its
// `transport` metadata names; each key keeps to one transport, and about
// half the keys are on each.
func TestRolloutSplitsRedisAndJetStream(t *testing.T) {
	const events, keys = 2000, 200
	rds := redistest.Start(t)
	nats := jstest.Start(t)
	cfg, err := bus.LoadConfig(bus.FromMap(map[string]any{
		"transports": map[string]any{
			"redis": map[string]any{
				"type": "redisstream", "url": rds.URL(), "consumer_group": "hub", "start_id": "0",
			},
			"jetstream": map[string]any{
				"type": "jetstream", "url": nats.URL(), "consumer": "hub", "ack_wait": "5s",
			},
		},
		"routing": map[string]any{
			"baseline": "redis", "candidate": "jetstream", "enabled": true, "percentage": 50,
		},
		"bus":        map[string]any{"close_timeout": "30s"},
		"coalescing": map[string]any{"enabled": false},
		"consume":    map[string]any{"from": []any{"redis", "jetstream"}},
	}))
	require.NoError(t, err)
	b, err := bus.New(cfg, quiet)
	require.NoError(t, err)

	var (
		mu       sync.Mutex
		byUUID   = map[string]int{}             // deliveries per event
		keyOn    = map[string]map[string]bool{} // key → transports its events came on
		mismatch []string
		all      = make(chan struct{})
	)
	require.NoError(t, b.Handle("hub", "events:chat", func(m *message.Message) error {
		_, via, _ := strings.Cut(message.HandlerNameFromCtx(m.Context()), "@")
		meta := m.Metadata.Get(bus.MetaTransport)
		key := m.Metadata.Get(bus.MetaEventKey)
		mu.Lock()
		defer mu.Unlock()
		if meta != via {
			mismatch = append(mismatch, fmt.Sprintf("%s: metadata %q, consumed from %q", m.UUID, meta, via))
		}
		if keyOn[key] == nil {
			keyOn[key] = map[string]bool{}
		}
		keyOn[key][meta] = true
		byUUID[m.UUID]++
		if byUUID[m.UUID] == 1 && len(byUUID) == events {
			close(all)
		}
		return nil
	}))
	start(t, b)

	published := map[string]bool{}
	for i := range events {
		m := bus.NewMessage("chat_message", "conv-"+strconv.Itoa(i%keys), []byte(strconv.Itoa(i)))
		published[m.UUID] = true
		require.NoError(t, b.Publish("events:chat", m))
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("received %d of %d events", len(byUUID), events)
	}

	mu.Lock()
	defer mu.Unlock()
	lost := 0
	for uuid := range published {
		if byUUID[uuid] == 0 {
			lost++
		}
	}
	assert.Zero(t, lost, "0 lost")
	assert.Empty(t, mismatch, "each event is consumed from the transport its metadata names")
	perTransport := map[string]int{}
	for key, on := range keyOn {
		assert.Len(t, on, 1, "key %s keeps to one transport: %v", key, on)
		for tr := range on {
			perTransport[tr]++
		}
	}
	t.Logf("keys per transport: %v", perTransport)
	assert.Len(t, keyOn, keys)
	assert.InDelta(t, keys/2, perTransport["jetstream"], keys*0.15, "about half the keys on JetStream")
	assert.InDelta(t, keys/2, perTransport["redis"], keys*0.15, "about half the keys on Redis")
	n, err := strconv.Atoi(rds.Do(t, "XLEN", "events:chat"))
	require.NoError(t, err)
	assert.Positive(t, n, "Redis holds its share")
}

// startJetStreamHub starts the hub's side for a rollout on JetStream: one
// bus that fans in the durable consumer "hub" of a cluster (urls; the
// stream with replicas copies) and an HTTP receiver, recording every
// delivery.
func startJetStreamHub(t *testing.T, urls []string, replicas int) *hubSide {
	t.Helper()
	cfg, err := bus.LoadConfig(bus.FromMap(map[string]any{
		"transports": map[string]any{
			"jetstream": map[string]any{
				"type": "jetstream", "urls": anySlice(urls), "replicas": replicas, "consumer": "hub", "ack_wait": "5s",
			},
			"http": map[string]any{
				"type": "http", "receiver": map[string]any{"listen": "127.0.0.1:0", "handler_timeout": "5s"},
			},
		},
		"routing":    map[string]any{"baseline": "memory"},
		"coalescing": map[string]any{"enabled": false},
		"consume":    map[string]any{"from": []any{"jetstream", "http"}},
	}))
	require.NoError(t, err)
	b, err := bus.New(cfg, quiet)
	require.NoError(t, err)
	tr, ok := b.Transport("http")
	require.True(t, ok)
	addr := tr.Subscriber.(*httptransport.Server).Addr().(*net.TCPAddr)
	h := &hubSide{
		b:      b,
		url:    fmt.Sprintf("http://%s/api/v1/events/{topic}", addr),
		byUUID: map[string][]string{},
		unique: make(chan struct{}, 1<<20),
	}
	require.NoError(t, b.Handle("hub", "events:chat", h.handle))
	start(t, b)
	return h
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// deliveredOn reports whether an event created after since reached the hub
// on transport.
func (h *hubSide) deliveredOn(transport string, since time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.deliveries {
		if d.transport == transport && d.publishedAt.After(since) {
			return true
		}
	}
	return false
}

// TestRolloutJetStreamQuorumLossFallsBackToHTTP: a rollout at 100% on a
// three-node JetStream cluster (stream with three replicas), with fallback
// to HTTP. Two nodes are shut down mid-burst, so the stream has no quorum,
// and publishing goes on: every accepted event reaches the hub, on
// JetStream or through its HTTP receiver, the fallback counter shows the
// switch, and once the nodes are back traffic returns to JetStream.
func TestRolloutJetStreamQuorumLossFallsBackToHTTP(t *testing.T) {
	const keys = 50
	cluster := jstest.StartCluster(t, 3)
	hub := startJetStreamHub(t, cluster.URLs(), 3)

	reg := prometheus.NewRegistry()
	cfg, err := bus.LoadConfig(bus.FromMap(map[string]any{
		"transports": map[string]any{
			"jetstream": map[string]any{
				"type": "jetstream", "urls": anySlice(cluster.URLs()), "replicas": 3, "publish_timeout": "1s",
			},
			"http": map[string]any{"type": "http", "url": hub.url, "timeout": "5s"},
		},
		"routing": map[string]any{
			"baseline": "http", "candidate": "jetstream", "enabled": true, "percentage": 100,
			"fallback": map[string]any{
				"enabled": true, "publish_timeout": "500ms", "cooldown": "300ms",
				"failure_threshold": 3, "probe_interval": "500ms",
			},
		},
		"bus":        map[string]any{"close_timeout": "60s"},
		"coalescing": map[string]any{"enabled": false},
		"consume":    map[string]any{"from": []any{}},
	}))
	require.NoError(t, err)
	app, err := bus.New(cfg, quiet, bus.WithRegisterer(reg))
	require.NoError(t, err)
	appDone := make(chan error, 1)
	go func() { appDone <- app.Run(context.Background()) }()
	<-app.Running()
	defer func() {
		// A failed assertion before the end still closes the bus.
		_ = app.Close()
	}()

	accepted := 0
	publish := func() {
		m := bus.NewMessage("chat_message", "conv-"+strconv.Itoa(accepted%keys), []byte(strconv.Itoa(accepted)))
		require.NoError(t, app.Publish("events:chat", m))
		accepted++
	}
	// pump publishes one event every 2ms until done says stop.
	pump := func(done func() bool) {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			if done() {
				return
			}
			publish()
		}
	}
	engaged := func() bool {
		f := fallbacks(t, reg)
		return f["error"]+f["timeout"]+f["breaker_open"] > 0
	}

	// Traffic flows on JetStream.
	begin := time.Now()
	pump(func() bool { return hub.deliveredOn("jetstream", begin) && time.Since(begin) > 300*time.Millisecond })
	require.False(t, engaged(), "no fallback before the fault")

	// Two of three nodes go: the stream has no quorum.
	cluster.Nodes[1].Shutdown()
	cluster.Nodes[2].Shutdown()
	killedAt := time.Now()
	pump(func() bool { return time.Since(killedAt) > 1500*time.Millisecond })
	require.True(t, engaged(), "the bus fell back while JetStream had no quorum: %v", fallbacks(t, reg))
	outageHTTP := hub.deliveredOn("http", killedAt)

	require.NoError(t, cluster.Nodes[1].StartAgain())
	require.NoError(t, cluster.Nodes[2].StartAgain())
	restartedAt := time.Now()
	// Back on JetStream: its breaker closed again (the hub's reads may
	// lag; what it gets is checked at the end).
	pump(func() bool {
		return time.Since(restartedAt) > 20*time.Second || app.AdminState().Breakers["jetstream"] == "closed"
	})
	backAfter := time.Since(restartedAt)
	// More traffic once JetStream is back: after a cooldown, every key is
	// on it again.
	resumed := time.Now()
	pump(func() bool { return time.Since(resumed) > 600*time.Millisecond })
	breaker := app.AdminState().Breakers["jetstream"]
	require.NoError(t, app.Close())
	require.NoError(t, <-appDone)

	deadline := time.After(60 * time.Second)
	for n := 0; n < accepted; n++ {
		select {
		case <-hub.unique:
		case <-deadline:
			t.Fatalf("the hub has %d of the %d accepted events", hub.uniqueCount(), accepted)
		}
	}

	f := fallbacks(t, reg)
	hub.mu.Lock()
	defer hub.mu.Unlock()
	onHTTP, cross := 0, 0
	for _, ts := range hub.byUUID {
		seen := map[string]bool{}
		for _, tr := range ts {
			seen[tr] = true
		}
		if seen["http"] {
			onHTTP++
		}
		if seen["http"] && seen["jetstream"] {
			cross++
		}
	}
	t.Logf("accepted %d, unique at the hub %d (%d through HTTP, %d on both paths), deliveries %d; fallbacks %v; JetStream breaker closed %s after the restart",
		accepted, len(hub.byUUID), onHTTP, cross, len(hub.deliveries), f, backAfter.Round(time.Millisecond))
	assert.Equal(t, accepted, len(hub.byUUID), "0 lost")
	assert.True(t, outageHTTP, "events went through HTTP during the outage")
	assert.Positive(t, onHTTP)
	assert.LessOrEqual(t, cross, int(f["error"]+f["timeout"]), "events on both paths are ambiguous publishes")
	assert.Less(t, backAfter, 20*time.Second, "traffic returned to JetStream")
	assert.Equal(t, "closed", breaker)
	late := 0
	for _, d := range hub.deliveries {
		if d.publishedAt.After(resumed.Add(300 * time.Millisecond)) {
			late++
			assert.Equal(t, "jetstream", d.transport, "events after the recovery go on JetStream")
		}
	}
	assert.Positive(t, late, "events after the recovery")
}
