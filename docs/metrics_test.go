package docs_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports/jetstream/jstest"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestMetricsMatchDocsOnMemory runs a bus with the default configuration
// (memory, coalescing of typing on) and a deduplicating handler, publishes
// and checks the scrape against metrics.md.
func TestMetricsMatchDocsOnMemory(t *testing.T) {
	doc := readMetricsDoc(t)
	b := startBus(t, busSetup{dedupe: true})
	b.publishBoth(t, "r1")
	_, scraped := b.scrapeWhen(t, "the handler got both events", func(f map[string]scrapedFamily) bool {
		return handled(f, "memory", eventChatMessage, eventTyping)
	})
	n, _ := scraped["events_deduplicated_total"].value(map[string]string{})
	assert.Equal(t, 0.0, n, "no copy yet")

	// A copy of a delivered message: acked by dedupe, without reaching the
	// handler, and counted.
	msg := bus.NewMessage(eventChatMessage, "r2", []byte(`{}`))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, b.PublishSync(ctx, topic, msg))
	require.NoError(t, b.PublishSync(ctx, topic, msg.Copy()))
	text, scraped := b.scrapeWhen(t, "the copy is deduplicated", func(f map[string]scrapedFamily) bool {
		n, _ := f["events_deduplicated_total"].value(map[string]string{})
		return n == 1
	})
	checkScrapeMatchesDoc(t, doc, scraped, []string{seriesFromStart, seriesCoalescing, seriesMemory, seriesDedupe}, "switchyard_memory_queue_depth")
	lintExposition(t, text)

	published := scraped["switchyard_events_published_total"]
	for typ, want := range map[string]float64{eventChatMessage: 3, eventTyping: 1} {
		n, ok := published.value(map[string]string{"transport": "memory", "event_type": typ, "outcome": "ok"})
		assert.True(t, ok, typ)
		assert.Equal(t, want, n, typ)
	}
	assert.Len(t, published.series, 6, "one transport × (chat_message, typing, other) × (ok, error)")
	assert.Len(t, scraped["event_publish_duration_seconds"].series, 3, "one transport × (chat_message, typing, other)")
	assert.Len(t, scraped["event_delivery_latency_seconds"].series, 3, "one transport × (chat_message, typing, other)")
	n, _ = scraped["switchyard_ingress_accepted_total"].value(map[string]string{})
	assert.Equal(t, 4.0, n)
	n, _ = scraped["events_coalesced_total"].value(map[string]string{"event_type": eventTyping})
	assert.Equal(t, 0.0, n, "a lone typing event is published, not coalesced")
}

// TestMetricsMatchDocsWithoutCoalescing checks that the families
// documented "with coalescing" are the ones that go with it.
func TestMetricsMatchDocsWithoutCoalescing(t *testing.T) {
	doc := readMetricsDoc(t)
	b := startBus(t, busSetup{config: "coalescing: {enabled: false}\n"})
	b.publishBoth(t, "r1")
	text, scraped := b.scrapeWhen(t, "the handler got both events", func(f map[string]scrapedFamily) bool {
		return handled(f, "memory", eventChatMessage, eventTyping)
	})
	checkScrapeMatchesDoc(t, doc, scraped, []string{seriesFromStart, seriesMemory}, "switchyard_memory_queue_depth")
	lintExposition(t, text)
}

// TestMetricsMatchDocsWithFallback runs a rollout to an HTTP hub that
// fails every request, with fallback to memory: the routing families
// appear, as documented.
func TestMetricsMatchDocsWithFallback(t *testing.T) {
	doc := readMetricsDoc(t)
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(hub.Close)
	b := startBus(t, busSetup{config: `
transports:
  memory: {type: memory}
  hub: {type: http, url: "` + hub.URL + `/api/v1/events/{topic}", max_retries: -1}
routing:
  baseline: memory
  candidate: hub
  enabled: true
  percentage: 100
  fallback: {enabled: true, to: memory}
`})
	b.publishBoth(t, "r1")
	text, scraped := b.scrapeWhen(t, "both events fell back to memory and reached the handler", func(f map[string]scrapedFamily) bool {
		return handled(f, "memory", eventChatMessage, eventTyping)
	})
	checkScrapeMatchesDoc(t, doc, scraped, []string{seriesFromStart, seriesCoalescing, seriesFallback, seriesMemory}, "switchyard_fallbacks_total", "switchyard_memory_queue_depth")
	lintExposition(t, text)

	// The chat message fails on the hub; its key is then held on the
	// fallback for the cooldown, so the typing event is not tried there.
	published := scraped["switchyard_events_published_total"]
	for _, c := range []struct {
		transport, typ, outcome string
		want                    float64
	}{
		{"hub", eventChatMessage, "error", 1},
		{"hub", eventTyping, "error", 0},
		{"memory", eventChatMessage, "ok", 1},
		{"memory", eventTyping, "ok", 1},
	} {
		n, _ := published.value(map[string]string{"transport": c.transport, "event_type": c.typ, "outcome": c.outcome})
		assert.Equal(t, c.want, n, "%+v", c)
	}
	for reason, want := range map[string]float64{"error": 1, "cooldown": 1} {
		n, _ := scraped["switchyard_fallbacks_total"].value(map[string]string{"from": "hub", "to": "memory", "reason": reason})
		assert.Equal(t, want, n, reason)
	}
	state, ok := scraped["switchyard_circuit_breaker_state"].value(map[string]string{"transport": "hub"})
	assert.True(t, ok)
	assert.Equal(t, 0.0, state, "two failures are under the threshold: closed")
}

// TestMetricsMatchDocsOnRedis runs a bus on Redis Streams and makes the
// Redis subscriber count what it counts: a claimed entry, a malformed one,
// a consumer group deleted with its stream.
func TestMetricsMatchDocsOnRedis(t *testing.T) {
	doc := readMetricsDoc(t)
	srv := redistest.Start(t)
	// Claims come at once, so that the test need not wait 30 s for one.
	b := startBus(t, busSetup{config: `
transports:
  redis:
    type: redisstream
    url: "` + srv.URL() + `"
    consumer_group: hub
    maxlen: 100000
    claim_interval: 20ms
    claim_min_idle: 10ms
routing: {baseline: redis}
consume: {from: [redis]}
`})
	b.publishBoth(t, "r1")
	stream := map[string]string{"stream": topic}
	_, _ = b.scrapeWhen(t, "the handler got both events from Redis, and the depth is known", func(f map[string]scrapedFamily) bool {
		_, depth := f["event_queue_depth"].value(stream)
		return handled(f, "redis", eventChatMessage, eventTyping) && depth
	})

	// An entry acked by the handler, made pending for a consumer that is
	// gone: the subscriber claims it back.
	id := strings.TrimSpace(strings.SplitN(srv.Do(t, "XRANGE", topic, "-", "+", "COUNT", "1"), "\n", 2)[0])
	require.NotEmpty(t, id)
	srv.Do(t, "XCLAIM", topic, "hub", "gone", "0", id, "FORCE")
	_, _ = b.scrapeWhen(t, "the entry is claimed", func(f map[string]scrapedFamily) bool {
		n, _ := f["switchyard_redis_claimed_total"].value(stream)
		return n >= 1
	})

	// An entry that is not a message: dead-lettered as malformed.
	srv.Do(t, "XADD", topic, "*", "not", "a message")
	_, _ = b.scrapeWhen(t, "the malformed entry is dead-lettered", func(f map[string]scrapedFamily) bool {
		n, _ := f["switchyard_redis_dead_lettered_total"].value(map[string]string{"stream": topic, "reason": "malformed"})
		return n == 1
	})

	// The stream deleted, and its group with it: created again.
	srv.Do(t, "DEL", topic)
	text, scraped := b.scrapeWhen(t, "the group is created again", func(f map[string]scrapedFamily) bool {
		n, _ := f["switchyard_redis_group_recreated_total"].value(stream)
		return n == 1
	})
	// The default memory transport stays beside Redis (it takes dead
	// letters).
	checkScrapeMatchesDoc(t, doc, scraped, []string{seriesFromStart, seriesCoalescing, seriesRedis, seriesMemory},
		"switchyard_redis_claimed_total", "switchyard_redis_dead_lettered_total", "switchyard_redis_group_recreated_total",
		"switchyard_redis_stream_resets_total")
	lintExposition(t, text)
	_, ok := scraped["switchyard_circuit_breaker_state"]
	assert.False(t, ok, "no rollout, no breaker")
}

// TestMetricsMatchDocsOnJetStream runs a bus on NATS JetStream (a server
// embedded in the test) with a consumer: the stream's depth is exported
// under the family the Redis transport shares, and a message that cannot
// be one is dead-lettered and counted.
func TestMetricsMatchDocsOnJetStream(t *testing.T) {
	doc := readMetricsDoc(t)
	srv := jstest.Start(t)
	b := startBus(t, busSetup{config: `
transports:
  nats:
    type: jetstream
    url: "` + srv.URL() + `"
    consumer: hub
    storage: memory
    depth_interval: 20ms
routing: {baseline: nats}
consume: {from: [nats]}
`})
	b.publishBoth(t, "r1")
	stream := map[string]string{"stream": topic}
	_, _ = b.scrapeWhen(t, "the handler got both events from JetStream, and the depth is down to 0", func(f map[string]scrapedFamily) bool {
		depth, ok := f["event_queue_depth"].value(stream)
		return handled(f, "nats", eventChatMessage, eventTyping) && ok && depth == 0
	})

	// A foreign producer's message with a header metadata cannot hold:
	// dead-lettered as malformed.
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	bad := nats.NewMsg(topic)
	bad.Header.Add("twice", "a")
	bad.Header.Add("twice", "b")
	bad.Data = []byte("bad")
	require.NoError(t, nc.PublishMsg(bad))
	require.NoError(t, nc.Flush())
	text, scraped := b.scrapeWhen(t, "the malformed message is dead-lettered", func(f map[string]scrapedFamily) bool {
		n, _ := f["switchyard_jetstream_dead_lettered_total"].value(map[string]string{"stream": topic, "reason": "malformed"})
		return n == 1
	})
	checkScrapeMatchesDoc(t, doc, scraped, []string{seriesFromStart, seriesCoalescing, seriesJetStream, seriesMemory},
		"switchyard_jetstream_dead_lettered_total")
	lintExposition(t, text)
}
