//go:build soak

package bus_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// soakDuration is how long TestSoakRolloutUnderChaos publishes:
// SWITCHYARD_SOAK_DURATION (a Go duration), 2 minutes by default.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("SWITCHYARD_SOAK_DURATION")
	if v == "" {
		return 2 * time.Minute
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, "SWITCHYARD_SOAK_DURATION")
	return d
}

// TestSoakRolloutUnderChaos runs the chat backend's traffic for
// soakDuration through a rollout from HTTP to Redis Streams while the
// rollout moves (the percentage steps through 0, 10, 50, 100 and back by
// Reload every 3s) and Redis dies (SIGKILL every 15s, restarted from its
// AOF 3s later). Four publishers send chat_message events, each on keys of
// its own with a sequence number, and typing events coalesced in 100ms
// windows.
//
// It checks what must hold however long it runs: every chat_message
// Publish accepted reaches the hub (none lost, none dead-lettered); typing
// events are coalesced (fewer reach the hub than were sent) and the last
// of every key's arrives; the goroutines and the heap stay bounded (their
// peaks in the last quarter at most about twice those of the first: the
// hub's bookkeeping is a bit per event); and everything stops cleanly
// (goleak, in TestMain).
func TestSoakRolloutUnderChaos(t *testing.T) {
	duration := soakDuration(t)
	if duration < 20*time.Second {
		t.Fatalf("SWITCHYARD_SOAK_DURATION is %s: the soak needs at least 20s (a kill and a restart, and time to compare)", duration)
	}
	// go-redis logs every dial that fails while Redis is down: expected here.
	redis.SetLogger(logging.NewBlacklistLogger([]string{"failed to dial"}))
	srv := redistest.Start(t, redistest.WithAOF())
	hub := startSoakHub(t, srv.URL())

	settings := func(percentage int) map[string]any {
		return map[string]any{
			"transports": map[string]any{
				"redis": map[string]any{"type": "redisstream", "url": srv.URL()},
				"http":  map[string]any{"type": "http", "url": hub.url, "timeout": "5s"},
			},
			"routing": map[string]any{
				"baseline": "http", "candidate": "redis", "enabled": true, "percentage": percentage,
				"fallback": map[string]any{
					"enabled": true, "publish_timeout": "1s", "cooldown": "300ms",
					"failure_threshold": 3, "probe_interval": "1s",
				},
			},
			"bus":        map[string]any{"close_timeout": "120s"},
			"coalescing": map[string]any{"enabled": true, "window": "100ms", "event_types": []any{"typing"}},
			"consume":    map[string]any{"from": []any{}},
		}
	}
	load := func(percentage int) bus.Config {
		cfg, err := bus.LoadConfig(bus.FromMap(settings(percentage)))
		require.NoError(t, err)
		return cfg
	}
	reg := prometheus.NewRegistry()
	app, err := bus.New(load(0), quiet, bus.WithRegisterer(reg))
	require.NoError(t, err)
	appDone := make(chan error, 1)
	go func() { appDone <- app.Run(context.Background()) }()
	<-app.Running()
	var closeApp sync.Once
	closeAll := func() (err error) {
		closeApp.Do(func() { err = errors.Join(app.Close(), <-appDone) })
		return err
	}

	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	start := time.Now()

	// Publishers: each owns 50 conversations.
	const publishers, keysEach = 4, 50
	var (
		mu          sync.Mutex
		chatSent    = map[string]int{} // key → chat_message events accepted
		typingSent  = map[string]int{} // key → typing events accepted
		publishErrs atomic.Int64
		wg          sync.WaitGroup
	)
	// A failure below ends the test early: the publishers stop and the bus
	// closes first, so that goleak reports what leaked, not them.
	t.Cleanup(func() {
		stop()
		wg.Wait()
		_ = closeAll()
	})
	for p := range publishers {
		wg.Go(func() {
			seq := map[string]int{}
			typing := map[string]int{} // also the next typing event's number
			pace := time.NewTicker(2 * time.Millisecond)
			defer pace.Stop()
			// publish sends the event numbered sent[key] and counts it.
			publish := func(eventType, key string, sent map[string]int) bool {
				m := bus.NewMessage(eventType, key, []byte(strconv.Itoa(sent[key])))
				if err := app.Publish("events:chat", m); err != nil {
					publishErrs.Add(1)
					t.Errorf("publish %s: %v", eventType, err)
					return false
				}
				sent[key]++
				return true
			}
			for i := 0; ctx.Err() == nil; i++ {
				key := "conv-" + strconv.Itoa(p) + "-" + strconv.Itoa(i%keysEach)
				if !publish("chat_message", key, seq) {
					return
				}
				for range 3 { // a burst of typing for the same conversation
					if !publish("typing", key, typing) {
						return
					}
				}
				select {
				case <-pace.C:
				case <-ctx.Done():
				}
			}
			mu.Lock()
			maps.Copy(chatSent, seq)
			maps.Copy(typingSent, typing)
			mu.Unlock()
		})
	}

	// Chaos: the rollout moves every 3s; Redis dies every 15s for 3s.
	type sample struct {
		at         time.Duration
		goroutines int
		heap       uint64
	}
	var samples []sample
	steps := []int{0, 10, 50, 100, 50, 10}
	reloads, kills := 0, 0
	move := time.NewTicker(3 * time.Second)
	defer move.Stop()
	measure := time.NewTicker(time.Second)
	defer measure.Stop()
	var restartAt <-chan time.Time
	nextKill := time.After(15 * time.Second)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-move.C:
			reloads++
			require.NoError(t, app.Reload(load(steps[reloads%len(steps)])))
		case <-nextKill:
			srv.Kill()
			kills++
			restartAt = time.After(3 * time.Second)
		case <-restartAt:
			srv.Restart()
			restartAt = nil
			nextKill = time.After(12 * time.Second)
		case <-measure.C:
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			samples = append(samples, sample{time.Since(start), runtime.NumGoroutine(), ms.HeapInuse})
		}
	}
	wg.Wait()
	if restartAt != nil {
		srv.Restart() // the hub needs its Redis back to drain
	}
	require.Zero(t, publishErrs.Load())
	require.NoError(t, closeAll())

	// Every chat_message reaches the hub.
	totalChat := 0
	for _, n := range chatSent {
		totalChat += n
	}
	if !assert.Eventually(t, func() bool { return hub.missing(chatSent) == 0 }, 2*time.Minute, 100*time.Millisecond) {
		t.Fatalf("chat_message events lost: %d of %d", hub.missing(chatSent), totalChat)
	}

	mfs, err := reg.Gather()
	require.NoError(t, err)
	var deadLettered float64
	for _, mf := range mfs {
		if mf.GetName() == "switchyard_ingress_dead_lettered_total" {
			deadLettered = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}

	hub.mu.Lock()
	defer hub.mu.Unlock()
	totalTyping, totalTypingAtHub := 0, 0
	for k, n := range typingSent {
		totalTyping += n
		totalTypingAtHub += hub.typing[k]
		// Coalescing sends a window's latest event at its end, and Close
		// flushes what waits: the last one sent arrives.
		assert.Equal(t, n-1, hub.lastTyping[k], "key %s: the last typing event reached the hub", k)
	}

	quarter := len(samples) / 4
	require.Positive(t, quarter, "too short to compare the first quarter with the last")
	peak := func(ss []sample) (g int, h uint64) {
		for _, s := range ss {
			g, h = max(g, s.goroutines), max(h, s.heap)
		}
		return g, h
	}
	firstG, firstH := peak(samples[:quarter])
	lastG, lastH := peak(samples[len(samples)-quarter:])
	f := fallbacks(t, reg)
	t.Logf("%s: %d chat_message and %d typing events accepted; %d typing reached the hub (%.1f%% saved); %d reloads, %d kills; fallbacks %v; dead-lettered %v",
		duration, totalChat, totalTyping, totalTypingAtHub, 100*(1-float64(totalTypingAtHub)/float64(totalTyping)), reloads, kills, f, deadLettered)
	t.Logf("peaks, first quarter → last: goroutines %d → %d, heap in use %d MB → %d MB", firstG, lastG, firstH>>20, lastH>>20)

	assert.Zero(t, deadLettered, "nothing dead-lettered")
	assert.Positive(t, kills, "Redis was killed at least once")
	assert.Less(t, totalTypingAtHub, totalTyping, "typing was coalesced")
	assert.LessOrEqual(t, lastG, 2*firstG+100, "goroutines bounded")
	assert.LessOrEqual(t, lastH, 2*firstH+64<<20, "heap bounded")
}

// soakHub is the consumer side of the soak: like startHub's, but it keeps a
// bit per chat_message (by key and sequence number) and a count of typing
// events per key, so that its own memory does not grow with the traffic.
type soakHub struct {
	url    string
	mu     sync.Mutex
	chat   map[string][]uint64 // key → bitset of the sequence numbers seen
	typing map[string]int      // key → typing deliveries
	// key → the highest typing event number seen
	lastTyping map[string]int
}

func startSoakHub(t *testing.T, redisURL string) *soakHub {
	t.Helper()
	b, url := newHubBus(t, redisURL)
	h := &soakHub{url: url, chat: map[string][]uint64{}, typing: map[string]int{}, lastTyping: map[string]int{}}
	require.NoError(t, b.Handle("hub", "events:chat", h.handle))
	start(t, b)
	return h
}

func (h *soakHub) handle(m *message.Message) error {
	key := m.Metadata.Get(bus.MetaEventKey)
	h.mu.Lock()
	defer h.mu.Unlock()
	seq, err := strconv.Atoi(string(m.Payload))
	if err != nil {
		return fmt.Errorf("payload %q: %w", m.Payload, err)
	}
	if m.Metadata.Get(bus.MetaEventType) == "typing" {
		h.typing[key]++
		if last, ok := h.lastTyping[key]; !ok || seq > last {
			h.lastTyping[key] = seq
		}
		return nil
	}
	bits := h.chat[key]
	for len(bits) <= seq/64 {
		bits = append(bits, 0)
	}
	bits[seq/64] |= 1 << (seq % 64)
	h.chat[key] = bits
	return nil
}

// missing counts the chat_message events of sent (key → how many, numbered
// from 0) the hub has not seen.
func (h *soakHub) missing(sent map[string]int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for key, count := range sent {
		bits := h.chat[key]
		for seq := range count {
			if seq/64 >= len(bits) || bits[seq/64]&(1<<(seq%64)) == 0 {
				n++
			}
		}
	}
	return n
}
