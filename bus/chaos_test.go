//go:build chaos

package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/middleware"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestChaos runs the fault scenarios of docs/chaos.md: each subtest sends
// numbered events through a bus while a fault hits Redis, the HTTP hub or
// the path between them, checks its own expectation (nothing accepted is
// lost, unless said otherwise), and adds a row to the table logged at the
// end.
func TestChaos(t *testing.T) {
	// go-redis logs every dial that fails while Redis is down: expected here.
	redis.SetLogger(logging.NewBlacklistLogger([]string{"failed to dial"}))
	table := &chaosTable{}
	t.Cleanup(func() { t.Log("\n" + table.String()) })

	for _, c := range []struct {
		fallback, aof, lagging bool
	}{
		{fallback: true, aof: true, lagging: true},
		{fallback: true, aof: false, lagging: true},
		{fallback: false, aof: true, lagging: true},
		{fallback: false, aof: false, lagging: true},
		{fallback: true, aof: false, lagging: false},
	} {
		name := fmt.Sprintf("kill9/fallback=%s/aof=%s/consumer=%s",
			onOff(c.fallback), onOff(c.aof), map[bool]string{true: "lagging", false: "idle"}[c.lagging])
		t.Run(name, func(t *testing.T) { chaosKill9(t, table, name, c.fallback, c.aof, c.lagging) })
	}
	t.Run("empty_restart/busy_consumer", func(t *testing.T) { chaosEmptyRestartBusy(t, table) })
	t.Run("empty_restart/consumer_restarts", func(t *testing.T) {
		chaosEmptyRestartConsumerRestarts(t, table, "empty_restart/consumer_restarts", false)
	})
	t.Run("empty_restart/consumer_and_producer_restart", func(t *testing.T) {
		chaosEmptyRestartConsumerRestarts(t, table, "empty_restart/consumer_and_producer_restart", true)
	})
	for _, path := range []string{"redis", "http"} {
		for _, fault := range []string{"blackhole", "reset"} {
			name := "network/" + path + "/" + fault
			t.Run(name, func(t *testing.T) { chaosNetwork(t, table, name, path, fault) })
		}
	}
	t.Run("password_rotation", func(t *testing.T) { chaosPasswordRotation(t, table) })
	t.Run("poison_entry", func(t *testing.T) { chaosPoison(t, table) })
	t.Run("slow_consumer_claimed", func(t *testing.T) { chaosSlowConsumer(t, table) })
	t.Run("ambiguous_publish", func(t *testing.T) { chaosAmbiguous(t, table) })
	t.Run("hub_down", func(t *testing.T) { chaosHubDown(t, table) })
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// assertRedisLossCounted checks that Redis's own loss (an empty restart
// while a consumer had entries unread) is counted by the Redis transport's
// metric for it and logged.
func assertRedisLossCounted(t *testing.T, hub *chaosHub) {
	t.Helper()
	counted := gather(t, hub.reg, func(n string) bool {
		return strings.HasPrefix(n, "switchyard_redis_") &&
			(strings.Contains(n, "restart") || strings.Contains(n, "reset") || strings.Contains(n, "lost"))
	}, nil)
	assert.Positive(t, counted, "Redis restarted empty and lost entries: a switchyard_redis_* metric of "+
		"restarts, resets or lost entries must count it (switchyard_redis_stream_resets_total)")
	assert.True(t, hub.logs.contains("lost"), "the loss is logged")
}

// chaosKill9: Redis is killed with SIGKILL mid-stream (500 events/s) and
// restarted 2s later. A lagging consumer reads on one lane and works 4ms
// per event, so Redis holds a backlog when it dies; an idle one keeps up.
//
// With fallback on, what fails goes to HTTP; with it off, the bus retries
// and dead-letters, and a PublishSync during the outage returns the error:
// never silent. With AOF (appendfsync always) nothing is lost; without,
// the backlog Redis held is its own loss, which the row shows and the Redis
// transport must count and log.
func chaosKill9(t *testing.T, table *chaosTable, name string, fallback, aof, lagging bool) {
	var opts []redistest.Option
	if aof {
		opts = append(opts, redistest.WithAOF())
	}
	srv := redistest.Start(t, opts...)
	rec := newRecorder()
	hub := startChaosHub(t, rec, srv.URL(), nil, func(m map[string]any) {
		if lagging {
			setting(m, "transports.redis.lanes", 1)
			setting(m, "transports.redis.read_count", 10)
		}
	})
	if lagging {
		hub.work.Store(int64(4 * time.Millisecond))
	}
	settings := appSettings(srv.URL(), hubURL(hub.addr))
	setting(settings, "routing.fallback.enabled", fallback)
	app := startChaosApp(t, rec, settings)

	app.pump(t, time.Second, nil, nil)
	srv.Kill()
	var syncErr error
	if !fallback {
		// A PublishSync while Redis is down fails to its caller: Redis stays
		// down until it has returned, however long its retries take.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		syncErr = app.b.PublishSync(ctx, "events:chat", bus.NewMessage("chat_message", "sync", []byte("-1")))
		cancel()
	}
	app.pump(t, 2*time.Second, nil, nil)
	srv.Restart()
	faultEnd := time.Now()
	app.pump(t, time.Second, nil, nil)
	app.settle(40 * time.Second)

	row := app.row(name, false, 0, "redis", faultEnd)
	table.add(row)
	t.Logf("%+v; fallbacks %v", row, fallbacks(t, app.reg))

	if !fallback {
		assert.ErrorIs(t, syncErr, bus.ErrDeadLettered, "PublishSync during the outage fails")
		// At least: an event whose failed publish was written after all is
		// dead-lettered and delivered, and counted with the delivered.
		assert.GreaterOrEqual(t, gather(t, app.reg, named("switchyard_ingress_dead_lettered_total"), nil), float64(row.dead)+1,
			"dead letters are counted (with the PublishSync's)")
	}
	if aof || !lagging {
		if !aof && row.lost > 0 {
			// An idle consumer reads each entry as it is written: only a
			// kill within that instant loses one, and it must be counted.
			assertRedisLossCounted(t, hub)
			return
		}
		assert.Zero(t, row.lost, "lost: %v", app.lostSeqs(10))
		return
	}
	// Without persistence Redis forgets the backlog it held: its own loss.
	assert.Positive(t, row.lost, "a lagging consumer's backlog dies with a Redis without persistence")
	assertRedisLossCounted(t, hub)
}

// chaosEmptyRestartBusy: after 500ms of traffic, the consumer has read as
// much as it may hold (2 × read_count) and its handler is blocked when Redis
// restarts empty; the producer then writes 1,000 events on Redis (maxlen
// 100) before the handler is released. None may be lost: a stream
// re-created without its group must not be trimmed of entries the group has
// yet to read.
func chaosEmptyRestartBusy(t *testing.T, table *chaosTable) {
	srv := redistest.Start(t)
	rec := newRecorder()
	hub := startChaosHub(t, rec, srv.URL(), nil, func(m map[string]any) {
		setting(m, "transports.redis.read_count", 10)
		setting(m, "transports.redis.maxlen", 100)
	})
	settings := appSettings(srv.URL(), hubURL(hub.addr))
	setting(settings, "transports.redis.maxlen", 100)
	setting(settings, "transports.redis.trim_interval", "100ms")
	app := startChaosApp(t, rec, settings)

	// Traffic flows for a while (the producer's trimmer sees the group),
	// then the consumer gets busy.
	app.pump(t, 500*time.Millisecond, nil, nil)
	require.Eventually(t, func() bool { n, _ := rec.missing(app.accepted); return n == 0 }, 20*time.Second, 10*time.Millisecond)
	release := hub.holdRedis()
	defer release()
	// PublishSync: all 20 are in Redis before the check below, so none is
	// stored after it and lost with the restart, as an async Publish's
	// could be (lag 0 says only that the group read what was stored).
	app.publishSyncN(t, 20)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	require.Eventually(t, func() bool {
		groups, err := admin.XInfoGroups(context.Background(), "events:chat").Result()
		return err == nil && len(groups) == 1 && groups[0].Lag == 0 && hub.waiting.Load() > 0
	}, 10*time.Second, 10*time.Millisecond, "the consumer has read every entry and its handler is blocked")
	srv.Kill()
	srv.Restart()
	faultEnd := time.Now()
	app.pump(t, 2*time.Second, nil, nil)
	release()
	app.settle(40 * time.Second)

	row := app.row("empty_restart/busy_consumer", false, 0, "redis", faultEnd)
	table.add(row)
	t.Logf("%+v; fallbacks %v", row, fallbacks(t, app.reg))
	assert.Zero(t, row.lost, "lost: %v", app.lostSeqs(10))
}

// chaosEmptyRestartConsumerRestarts: the consumer closes, Redis restarts
// empty, the producer (with producerRestarts, a new producer process, as
// when a whole host restarts: it never saw the consumer group) writes 1,000
// events (maxlen 100), and the consumer comes back under the same name. None
// may be lost.
func chaosEmptyRestartConsumerRestarts(t *testing.T, table *chaosTable, name string, producerRestarts bool) {
	srv := redistest.Start(t)
	rec := newRecorder()
	tune := func(m map[string]any) { setting(m, "transports.redis.maxlen", 100) }
	hub := startChaosHub(t, rec, srv.URL(), nil, tune)
	settings := appSettings(srv.URL(), hubURL(hub.addr))
	setting(settings, "transports.redis.maxlen", 100)
	setting(settings, "transports.redis.trim_interval", "100ms")
	// While the consumer is away its receiver is too: HTTP would fail, so
	// the fallback goes nowhere useful; events must wait in Redis.
	setting(settings, "routing.fallback.enabled", false)
	app := startChaosApp(t, rec, settings)

	app.pump(t, 500*time.Millisecond, nil, nil)
	require.Eventually(t, func() bool { n, _ := rec.missing(app.accepted); return n == 0 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, hub.b.Close())
	srv.Kill()
	srv.Restart()
	if producerRestarts {
		require.NoError(t, app.b.Close())
		next := startChaosApp(t, rec, settings)
		next.next, next.accepted = app.next, app.accepted
		app = next
	}
	app.pump(t, 2*time.Second, nil, nil)
	faultEnd := time.Now()
	startChaosHub(t, rec, srv.URL(), nil, tune)
	app.settle(40 * time.Second)

	row := app.row(name, false, 0, "redis", faultEnd)
	table.add(row)
	t.Logf("%+v", row)
	assert.Zero(t, row.lost, "lost: %v", app.lostSeqs(10))
}

// chaosNetwork: a blackhole (Toxiproxy's timeout toxic, both directions:
// nothing passes, nothing is closed) or connection resets (reset_peer) on
// the path to Redis or to the HTTP hub for 3s, with fallback between them
// on: Redis → HTTP, or HTTP → Redis. None lost.
func chaosNetwork(t *testing.T, table *chaosTable, name, path, fault string) {
	srv := redistest.Start(t)
	rec := newRecorder()
	hub := startChaosHub(t, rec, srv.URL(), nil, nil)
	x := newToxics(t)
	redisProxy := x.proxy(t, "redis", srv.Addr())
	httpProxy := x.proxy(t, "http", hub.addr)
	settings := appSettings("redis://"+redisProxy.Listen+"/0", hubURL(httpProxy.Listen))
	faulted := redisProxy
	if path == "http" {
		// Everything on HTTP, falling back to Redis.
		setting(settings, "routing.percentage", 0)
		setting(settings, "routing.fallback.to", "redis")
		faulted = httpProxy
	}
	app := startChaosApp(t, rec, settings)

	app.pump(t, time.Second, nil, nil)
	var toxics []string
	switch fault {
	case "blackhole":
		addToxic(t, faulted, "blackhole_up", "timeout", "upstream", `{"timeout":0}`)
		addToxic(t, faulted, "blackhole_down", "timeout", "downstream", `{"timeout":0}`)
		toxics = []string{"blackhole_up", "blackhole_down"}
	case "reset":
		addToxic(t, faulted, "reset", "reset_peer", "upstream", `{"timeout":0}`)
		toxics = []string{"reset"}
	}
	app.pump(t, 3*time.Second, nil, nil)
	removeToxic(t, faulted, toxics...)
	faultEnd := time.Now()
	app.pump(t, time.Second, nil, nil)
	app.settle(40 * time.Second)

	row := app.row(name, false, 0, path, faultEnd)
	table.add(row)
	f := fallbacks(t, app.reg)
	t.Logf("%+v; fallbacks %v", row, f)
	assert.Positive(t, f["error"]+f["timeout"]+f["breaker_open"], "the fault made the bus fall back")
	assert.Zero(t, row.lost, "lost: %v", app.lostSeqs(10))
}

// chaosPasswordRotation: the application's ACL user gets a new password
// mid-stream and its connections are killed (as a rotation followed by a
// failover or a pool's churn would), so its publishes fail with WRONGPASS
// for 2s until the old password is given back; fallback to HTTP on. None
// lost.
func chaosPasswordRotation(t *testing.T, table *chaosTable) {
	srv := redistest.Start(t, redistest.WithACL("user app on >old-secret ~* &* +@all"))
	rec := newRecorder()
	hub := startChaosHub(t, rec, srv.URL(), nil, nil)
	settings := appSettings("redis://app:old-secret@"+srv.Addr()+"/0", hubURL(hub.addr))
	app := startChaosApp(t, rec, settings)

	app.pump(t, time.Second, nil, nil)
	srv.Do(t, "ACL", "SETUSER", "app", "resetpass", ">new-secret")
	srv.Do(t, "CLIENT", "KILL", "USER", "app")
	app.pump(t, 2*time.Second, nil, nil)
	srv.Do(t, "ACL", "SETUSER", "app", "resetpass", ">old-secret")
	faultEnd := time.Now()
	app.pump(t, time.Second, nil, nil)
	app.settle(40 * time.Second)

	row := app.row("password_rotation", false, 0, "redis", faultEnd)
	table.add(row)
	f := fallbacks(t, app.reg)
	t.Logf("%+v; fallbacks %v", row, f)
	assert.Positive(t, f["error"]+f["timeout"]+f["breaker_open"], "WRONGPASS made the bus fall back")
	assert.Zero(t, row.lost, "lost: %v", app.lostSeqs(10))
}

// chaosPoison: a foreign producer adds entries the transport cannot decode
// (XADD with fields of its own) among the bus's events. Each is
// dead-lettered to events:chat:dead and counted; the subscriber delivers
// the rest. None lost.
func chaosPoison(t *testing.T, table *chaosTable) {
	srv := redistest.Start(t)
	rec := newRecorder()
	hub := startChaosHub(t, rec, srv.URL(), nil, nil)
	app := startChaosApp(t, rec, appSettings(srv.URL(), hubURL(hub.addr)))
	foreign := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer foreign.Close()

	const poison = 5
	added := 0
	app.pumpN(t, 1000, func() {
		if app.next%200 == 100 {
			require.NoError(t, foreign.XAdd(context.Background(), &redis.XAddArgs{
				Stream: "events:chat", Values: []any{"foo", "bar", "seq", added},
			}).Err())
			added++
		}
	})
	require.Equal(t, poison, added)
	app.settle(40 * time.Second)

	malformed := gather(t, hub.reg, named("switchyard_redis_dead_lettered_total"), map[string]string{"reason": "malformed"})
	row := app.row("poison_entry", false, int(malformed), "", time.Time{})
	table.add(row)
	t.Logf("%+v", row)
	assert.Equal(t, float64(poison), malformed, "each poison entry is dead-lettered and counted")
	assert.Equal(t, fmt.Sprint(poison), srv.Do(t, "XLEN", "events:chat:dead"))
	assert.Zero(t, row.lost, "lost: %v", app.lostSeqs(10))
}

// chaosSlowConsumer: two consumers of one group; one takes 1s per event,
// longer than claim_min_idle (300ms), so the other claims its entries
// while it works on them. Both run one Dedupe (as a shared store would be
// for replicas of one service): none lost, no duplicate after it.
func chaosSlowConsumer(t *testing.T, table *chaosTable) {
	srv := redistest.Start(t)
	rec := newRecorder()
	dedupe, err := middleware.NewDedupe(middleware.DedupeConfig{})
	require.NoError(t, err)
	tune := func(consumer string) func(map[string]any) {
		return func(m map[string]any) {
			setting(m, "transports.redis.consumer", consumer)
			setting(m, "transports.redis.read_count", 16)
			setting(m, "transports.redis.claim_min_idle", "300ms")
			setting(m, "transports.redis.claim_interval", "200ms")
		}
	}
	fast := startChaosHub(t, rec, srv.URL(), dedupe, tune("fast"))
	slow := startChaosHub(t, rec, srv.URL(), dedupe, tune("slow"))
	slow.work.Store(int64(time.Second))
	app := startChaosApp(t, rec, appSettings(srv.URL(), hubURL(fast.addr)))

	app.pump(t, 2*time.Second, nil, nil)
	app.settle(60 * time.Second)

	row := app.row("slow_consumer_claimed", true, 0, "", time.Time{})
	table.add(row)
	claimed := gather(t, fast.reg, named("switchyard_redis_claimed_total"), nil)
	t.Logf("%+v; claimed by the fast consumer %v", row, claimed)
	assert.Positive(t, claimed, "the fast consumer claimed the slow one's entries")
	assert.Positive(t, row.dupRaw, "claimed entries were delivered twice before Dedupe")
	assert.Zero(t, row.dup, "no duplicate after Dedupe")
	assert.Zero(t, row.lost, "lost: %v", app.lostSeqs(10))
}

// chaosAmbiguous: Redis's replies are lost for 1.5s (a timeout toxic on the
// downstream of the proxy in front of it): each XADD is written, but the
// publish times out and falls back to HTTP, so the event is on both paths.
// The consumer reads both with Dedupe: none lost, none duplicated after
// it; the duplicates before it are counted.
func chaosAmbiguous(t *testing.T, table *chaosTable) {
	srv := redistest.Start(t)
	rec := newRecorder()
	dedupe, err := middleware.NewDedupe(middleware.DedupeConfig{})
	require.NoError(t, err)
	hub := startChaosHub(t, rec, srv.URL(), dedupe, nil)
	x := newToxics(t)
	redisProxy := x.proxy(t, "redis", srv.Addr())
	app := startChaosApp(t, rec, appSettings("redis://"+redisProxy.Listen+"/0", hubURL(hub.addr)))

	app.pump(t, time.Second, nil, nil)
	addToxic(t, redisProxy, "replies_lost", "timeout", "downstream", `{"timeout":0}`)
	// A burst first: its XADDs share the pipelines in flight, so many
	// reach Redis with their replies lost, however the paced events that
	// follow meet the fault.
	app.publishN(t, 100)
	app.pump(t, 1500*time.Millisecond, nil, nil)
	removeToxic(t, redisProxy, "replies_lost")
	faultEnd := time.Now()
	app.pump(t, time.Second, nil, nil)
	app.settle(40 * time.Second)

	row := app.row("ambiguous_publish", true, 0, "redis", faultEnd)
	table.add(row)
	f := fallbacks(t, app.reg)
	t.Logf("%+v; fallbacks %v", row, f)
	assert.Positive(t, f["timeout"], "publishes timed out and fell back")
	assert.Positive(t, row.dupRaw, "ambiguous publishes reached the consumer on both paths")
	assert.Zero(t, row.dup, "no duplicate after Dedupe")
	assert.Zero(t, row.lost, "lost: %v", app.lostSeqs(10))
}

// chaosHubDown: the HTTP hub is unreachable for 30s (the proxy in front of
// it stops listening) under 500 events/s, with no fallback. The ingress is
// bounded (queue_size 1000, on_full reject) and retries without limit:
// Publish returns ErrQueueFull once it is full, the heap stays bounded, and
// every accepted event is delivered once the hub is back.
func chaosHubDown(t *testing.T, table *chaosTable) {
	rec := newRecorder()
	hub := startChaosHub(t, rec, "", nil, nil)
	x := newToxics(t)
	httpProxy := x.proxy(t, "http", hub.addr)
	settings := appSettings("", hubURL(httpProxy.Listen))
	setting(settings, "routing.fallback.enabled", false)
	setting(settings, "bus.queue_size", 1000)
	setting(settings, "bus.on_full", "reject")
	setting(settings, "bus.max_retries", -1)
	app := startChaosApp(t, rec, settings)

	app.pump(t, time.Second, nil, nil)
	heap := newHeapSampler()
	httpProxy.Stop()
	queueFull := func(err error) bool { return errors.Is(err, bus.ErrQueueFull) }
	n := 0
	app.pump(t, 30*time.Second, queueFull, func() {
		if n++; n%250 == 0 {
			heap.sample()
		}
	})
	require.NoError(t, httpProxy.Start())
	faultEnd := time.Now()
	app.pump(t, time.Second, queueFull, nil)
	app.settle(60 * time.Second)

	row := app.row("hub_down", false, 0, "http", faultEnd)
	table.add(row)
	grew := int64(heap.peak) - int64(heap.base)
	t.Logf("%+v; rejected %d (ErrQueueFull); heap in use grew by %d KB at most", row, len(app.rejected), grew>>10)
	assert.Positive(t, len(app.rejected), "a full ingress rejects")
	assert.Less(t, grew, int64(64<<20), "the heap stays bounded")
	assert.Zero(t, row.dead, "retries without limit: nothing dead-lettered")
	assert.Zero(t, row.lost, "lost: %v", app.lostSeqs(10))
}
