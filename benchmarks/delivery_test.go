package benchmarks

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/bus"
)

// deliveryRate is the fixed publish rate of BenchmarkDelivery, events per
// second.
const deliveryRate = 2000

// BenchmarkDelivery answers the question the bus was built for: how long an
// event takes from the application's Publish to a hub-like consumer, on
// each path, at the same fixed rate (2,000 events/s, one publishing
// goroutine, async Publish of events with 1,000 keys). Latency runs from
// when the event was due (its published_at) to the hub receiving it.
//
//   - path=memory: the default bus, consumed with Handle in process (the
//     floor of the other paths).
//   - path=http: the HTTP transport (CloudEvents binary) posting to a
//     loopback hub that reads the event's time (published_at) from its
//     Ce-Time header.
//   - path=redis: the redisstream transport; the hub reads the stream with
//     go-redis (XREADGROUP COUNT 256, one XACK per read), as the original
//     service's hub does, on a redis-server of the benchmark's own.
//   - path=split10: HTTP the baseline, Redis the candidate at 10% of keys.
func BenchmarkDelivery(b *testing.B) {
	env := newRedisEnv(b)
	for _, path := range []string{"memory", "http", "redis", "split10"} {
		b.Run("path="+path, func(b *testing.B) {
			lat := newLatencies(latencyWarmup + b.N)
			stream := env.newStream(b)
			cfg := bus.DefaultConfig()
			var handler message.NoPublishHandlerFunc
			if path == "memory" {
				handler = func(m *message.Message) error {
					lat.receivedMessage(m)
					return nil
				}
			} else {
				cfg.Consume.From = []string{}
				cfg.Transports["http"] = map[string]any{"type": "http", "url": httpHub(b, lat) + "/api/v1/events/{topic}"}
				cfg.Transports["redis"] = map[string]any{"type": "redisstream", "url": env.srv.URL()}
				env.rawConsumer(b, env.client(b), stream, func(x redis.XMessage) { lat.record(rawPublishedAt(x.Values)) }, lat.handled.fail)
				switch path {
				case "http":
					cfg.Routing.Baseline = "http"
				case "redis":
					cfg.Routing.Baseline = "redis"
				default:
					cfg.Routing.Baseline, cfg.Routing.Candidate = "http", "redis"
					cfg.Routing.Enabled, cfg.Routing.Percentage = true, 10
				}
			}
			bs := runningBus(b, cfg, stream, handler)
			pacedLatency(b, deliveryRate, lat, func(i int, due time.Time) error {
				return bs.Publish(stream, scheduledEvent(i, due))
			})
		})
	}
}

// httpHub starts a loopback hub, closed when b's run ends, that records
// each event's latency from its Ce-Time header and answers 204.
func httpHub(b *testing.B, lat *latencies) string {
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		lat.record(time.Parse(time.RFC3339Nano, r.Header.Get("Ce-Time")))
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(hub.Close)
	return hub.URL
}
