package bus_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
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
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// hubSide is the consumer of a rollout: one bus that fans in the Redis
// consumer group and an HTTP receiver, recording every delivery.
type hubSide struct {
	b   *bus.Bus
	url string // where the HTTP receiver takes events: {topic} in it

	mu         sync.Mutex
	deliveries []hubDelivery
	byUUID     map[string][]string // UUID → transports that hubDelivery it
	unique     chan struct{}       // one tick per first delivery of a UUID
}

type hubDelivery struct {
	uuid, key, transport string
	seq                  int
	publishedAt          time.Time
}

func startHub(t *testing.T, redisURL string) *hubSide {
	t.Helper()
	b, url := newHubBus(t, redisURL)
	h := &hubSide{
		b:      b,
		url:    url,
		byUUID: map[string][]string{},
		unique: make(chan struct{}, 1<<20),
	}
	require.NoError(t, b.Handle("hub", "events:chat", h.handle))
	start(t, b)
	return h
}

// newHubBus returns the bus of the hub's side, not yet running, and the URL
// its HTTP receiver takes events on ({topic} in it): it consumes the Redis
// consumer group "hub" from the start of the stream and the receiver.
func newHubBus(t *testing.T, redisURL string) (*bus.Bus, string) {
	t.Helper()
	cfg, err := bus.LoadConfig(bus.FromMap(map[string]any{
		"transports": map[string]any{
			"redis": map[string]any{
				"type": "redisstream", "url": redisURL, "consumer_group": "hub", "start_id": "0",
			},
			"http": map[string]any{
				"type": "http", "receiver": map[string]any{"listen": "127.0.0.1:0", "handler_timeout": "5s"},
			},
		},
		"routing":    map[string]any{"baseline": "memory"},
		"coalescing": map[string]any{"enabled": false},
		"consume":    map[string]any{"from": []any{"redis", "http"}},
	}))
	require.NoError(t, err)
	b, err := bus.New(cfg, quiet)
	require.NoError(t, err)
	tr, ok := b.Transport("http")
	require.True(t, ok)
	addr := tr.Subscriber.(*httptransport.Server).Addr().(*net.TCPAddr)
	return b, fmt.Sprintf("http://%s/api/v1/events/{topic}", addr)
}

// handle records a delivery. The transport is the one the event arrived
// on: the handler's name ends with @redis or @http.
func (h *hubSide) handle(m *message.Message) error {
	name := message.HandlerNameFromCtx(m.Context())
	_, transport, _ := strings.Cut(name, "@")
	seq, _ := strconv.Atoi(string(m.Payload))
	publishedAt, _ := time.Parse(time.RFC3339Nano, m.Metadata.Get(bus.MetaPublishedAt))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deliveries = append(h.deliveries, hubDelivery{
		uuid: m.UUID, key: m.Metadata.Get(bus.MetaEventKey), transport: transport, seq: seq, publishedAt: publishedAt,
	})
	if len(h.byUUID[m.UUID]) == 0 {
		h.unique <- struct{}{}
	}
	h.byUUID[m.UUID] = append(h.byUUID[m.UUID], transport)
	return nil
}

func (h *hubSide) uniqueCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byUUID)
}

// fallbacks sums switchyard_fallbacks_total by reason.
func fallbacks(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "switchyard_fallbacks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// TestRolloutSurvivesRedisKill9: the application publishes a stream of
// 50,000 events through a rollout at 100% on Redis Streams with fallback to
// HTTP; redis-server is killed with SIGKILL a third of the way through and
// restarted later. Every event Publish accepted reaches the hub (Redis or
// the HTTP receiver); the only events seen twice across the two paths are
// ambiguous publishes (failed or timed out, yet written); fallback engages
// within the publish deadline + 50ms; traffic returns to Redis within two
// probe intervals of the restart; per key, each path keeps publish order
// and a key switches paths at most twice (to HTTP, and back).
func TestRolloutSurvivesRedisKill9(t *testing.T) {
	const (
		events         = 50000
		keys           = 200
		batches        = 100
		publishTimeout = time.Second
		probeInterval  = time.Second
	)
	srv := redistest.Start(t, redistest.WithAOF())
	hub := startHub(t, srv.URL())

	reg := prometheus.NewRegistry()
	cfg, err := bus.LoadConfig(bus.FromMap(map[string]any{
		"transports": map[string]any{
			"redis": map[string]any{"type": "redisstream", "url": srv.URL()},
			"http":  map[string]any{"type": "http", "url": hub.url, "timeout": "5s"},
		},
		"routing": map[string]any{
			"baseline": "http", "candidate": "redis", "enabled": true, "percentage": 100,
			"fallback": map[string]any{
				"enabled": true, "publish_timeout": publishTimeout.String(), "cooldown": "300ms",
				"failure_threshold": 3, "probe_interval": probeInterval.String(),
			},
		},
		"bus":        map[string]any{"close_timeout": "120s"},
		"coalescing": map[string]any{"enabled": false},
		"consume":    map[string]any{"from": []any{}},
	}))
	require.NoError(t, err)
	app, err := bus.New(cfg, quiet, bus.WithRegisterer(reg))
	require.NoError(t, err)
	appDone := make(chan error, 1)
	go func() { appDone <- app.Run(context.Background()) }()
	<-app.Running()

	// Watch for the first fallback from the moment of the kill.
	var killedAt, engagedAt, restartedAt, closedAt time.Time
	engaged := make(chan time.Time, 1)
	closed := make(chan time.Time, 1)
	seq := make([]int, keys)
	accepted := 0
	for batch := range batches {
		switch batch {
		case batches / 3:
			srv.Kill()
			killedAt = time.Now()
			go func() {
				for time.Since(killedAt) < 10*time.Second {
					f := fallbacks(t, reg)
					if f["error"]+f["timeout"]+f["breaker_open"] > 0 {
						engaged <- time.Now()
						return
					}
					time.Sleep(time.Millisecond)
				}
				close(engaged)
			}()
		case 2 * batches / 3:
			srv.Restart()
			restartedAt = time.Now()
			go func() {
				for time.Since(restartedAt) < 30*time.Second {
					if app.AdminState().Breakers["redis"] == "closed" {
						closed <- time.Now()
						return
					}
					time.Sleep(time.Millisecond)
				}
				close(closed)
			}()
		}
		for i := range events / batches {
			k := (batch*(events/batches) + i) % keys
			m := bus.NewMessage("chat_message", "conv-"+strconv.Itoa(k), []byte(strconv.Itoa(seq[k])))
			seq[k]++
			require.NoError(t, app.Publish("events:chat", m))
			accepted++
		}
		time.Sleep(40 * time.Millisecond) // the pace of the stream, not a synchronisation
	}
	engagedAt = <-engaged
	closedAt = <-closed
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

	hub.mu.Lock()
	defer hub.mu.Unlock()
	f := fallbacks(t, reg)
	ambiguous := int(f["error"] + f["timeout"])
	cross, sameRedis, sameHTTP := 0, 0, 0
	for _, ts := range hub.byUUID {
		counts := map[string]int{}
		for _, tr := range ts {
			counts[tr]++
		}
		if counts["redis"] > 0 && counts["http"] > 0 {
			cross++
		}
		sameRedis += max(0, counts["redis"]-1)
		sameHTTP += max(0, counts["http"]-1)
	}
	t.Logf("accepted %d, unique at the hub %d, deliveries %d; fallbacks %v",
		accepted, len(hub.byUUID), len(hub.deliveries), f)
	t.Logf("duplicates: %d across paths (ambiguous publishes %d), %d redelivered by Redis, %d by HTTP",
		cross, ambiguous, sameRedis, sameHTTP)
	t.Logf("fallback engaged %s after the kill; breaker closed %s after the restart",
		engagedAt.Sub(killedAt), closedAt.Sub(restartedAt))

	assert.Equal(t, events, accepted)
	assert.Equal(t, accepted, len(hub.byUUID), "0 lost")
	assert.LessOrEqual(t, cross, ambiguous, "events on both paths are ambiguous publishes")
	assert.Zero(t, sameHTTP, "a synchronous HTTP delivery is not repeated")
	require.False(t, engagedAt.IsZero(), "fallback never engaged")
	assert.LessOrEqual(t, engagedAt.Sub(killedAt), publishTimeout+50*time.Millisecond)
	require.False(t, closedAt.IsZero(), "traffic never returned to Redis")
	assert.LessOrEqual(t, closedAt.Sub(restartedAt), 2*probeInterval)

	// Per key: each path in publish order (first deliveries), and at most two
	// switches between paths in publish order.
	firstOn := map[string]string{} // UUID → the path it counts for: HTTP if it took both
	for uuid, ts := range hub.byUUID {
		firstOn[uuid] = ts[0]
		for _, tr := range ts {
			if tr == "http" {
				firstOn[uuid] = "http"
			}
		}
	}
	type ev struct {
		seq       int
		transport string
	}
	perKey := map[string][]ev{}
	lastSeq := map[string]int{}
	seen := map[string]bool{}
	outOfOrder := 0
	for _, d := range hub.deliveries {
		if seen[d.uuid+d.transport] {
			continue // a redelivery
		}
		seen[d.uuid+d.transport] = true
		pk := d.key + "@" + d.transport
		if last, ok := lastSeq[pk]; ok && d.seq < last {
			outOfOrder++
			if outOfOrder <= 5 {
				t.Logf("out of order on %s: seq %d after %d (paths %v)", pk, d.seq, last, hub.byUUID[d.uuid])
			}
		}
		lastSeq[pk] = d.seq
		if firstOn[d.uuid] == d.transport {
			perKey[d.key] = append(perKey[d.key], ev{d.seq, d.transport})
		}
	}
	assert.Zero(t, outOfOrder, "each path delivers a key's events in publish order")
	maxSwitches := 0
	for _, evs := range perKey {
		sort.Slice(evs, func(i, j int) bool { return evs[i].seq < evs[j].seq })
		switches := 0
		for i := 1; i < len(evs); i++ {
			if evs[i].transport != evs[i-1].transport {
				switches++
			}
		}
		maxSwitches = max(maxSwitches, switches)
	}
	assert.LessOrEqual(t, maxSwitches, 2, "a key goes to HTTP and back once per outage")
}

// TestRolloutMasterSwitchFlippedInFile: with traffic flowing on Redis, the
// master switch is turned off in the watched configuration file. Within 1s
// every new event goes on HTTP, without a restart, and none is lost.
func TestRolloutMasterSwitchFlippedInFile(t *testing.T) {
	srv := redistest.Start(t)
	hub := startHub(t, srv.URL())

	dir := t.TempDir()
	path := filepath.Join(dir, "switchyard.yaml")
	write := func(enabled bool) {
		t.Helper()
		content := fmt.Sprintf(`
bus: {close_timeout: 60s}
transports:
  redis: {type: redisstream, url: %q}
  http: {type: http, url: %q}
routing:
  baseline: http
  candidate: redis
  enabled: %t
  percentage: 100
coalescing: {enabled: false}
consume: {from: []}
`, srv.URL(), hub.url, enabled)
		tmp := filepath.Join(dir, "next.yaml")
		require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
		require.NoError(t, os.Rename(tmp, path))
	}
	write(true)
	cfg, err := bus.LoadConfig(bus.FromFile(path))
	require.NoError(t, err)
	app, err := bus.New(cfg, quiet)
	require.NoError(t, err)
	appDone := make(chan error, 1)
	go func() { appDone <- app.Run(context.Background()) }()
	<-app.Running()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watching := make(chan error, 1)
	go func() { watching <- app.WatchConfig(watchCtx, path, bus.FromFile(path)) }()

	// Traffic: 50 keys, one event every millisecond or so, until told to stop.
	stop := make(chan struct{})
	published := make(chan int, 1)
	go func() {
		n := 0
		defer func() { published <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			m := bus.NewMessage("chat_message", "conv-"+strconv.Itoa(n%50), []byte(strconv.Itoa(n)))
			if err := app.Publish("events:chat", m); err != nil {
				t.Error(err)
				return
			}
			n++
			time.Sleep(time.Millisecond) // the pace of the traffic
		}
	}()

	// Some events on Redis first.
	require.Eventually(t, func() bool {
		hub.mu.Lock()
		defer hub.mu.Unlock()
		for _, d := range hub.deliveries {
			if d.transport == "redis" {
				return true
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond)

	write(false)
	flippedAt := time.Now()
	require.Eventually(t, func() bool { return !app.Config().Routing.Enabled }, 5*time.Second, time.Millisecond)
	appliedAfter := time.Since(flippedAt)
	// Traffic goes on for 2 more seconds, then stops.
	time.Sleep(2 * time.Second) // the length of the traffic after the flip, not a synchronisation
	close(stop)
	total := <-published
	stopWatch()
	require.NoError(t, <-watching)
	require.NoError(t, app.Close())
	require.NoError(t, <-appDone)

	deadline := time.After(60 * time.Second)
	for n := 0; n < total; n++ {
		select {
		case <-hub.unique:
		case <-deadline:
			t.Fatalf("the hub has %d of the %d accepted events", hub.uniqueCount(), total)
		}
	}
	hub.mu.Lock()
	defer hub.mu.Unlock()
	onRedisLate, onHTTPLate, lastOnRedis := 0, 0, time.Time{}
	for _, d := range hub.deliveries {
		if d.transport == "redis" && d.publishedAt.After(lastOnRedis) {
			lastOnRedis = d.publishedAt
		}
		if d.publishedAt.After(flippedAt.Add(time.Second)) {
			if d.transport == "redis" {
				onRedisLate++
			} else {
				onHTTPLate++
			}
		}
	}
	t.Logf("%d events; switch applied %s after the file was written; last event on Redis created %s after it; %d events on HTTP after the first second",
		total, appliedAfter, lastOnRedis.Sub(flippedAt), onHTTPLate)
	assert.Equal(t, total, len(hub.byUUID), "none lost")
	assert.Less(t, appliedAfter, time.Second)
	assert.Zero(t, onRedisLate, "no event created a second after the flip went on Redis")
	assert.Positive(t, onHTTPLate)
}
