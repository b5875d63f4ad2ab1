package redisstream_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// The helpers of the operations tests (restart, poison, trim, claim, …):
// real redis-server processes, intervals small enough to keep each test
// well under a second or two, and metrics gathered from a registry of the
// test's own.

// opsConfig is a configuration with short intervals for url. Each call
// names a new consumer.
func opsConfig(url, group string) redisstream.Config {
	return redisstream.Config{
		URL:             url,
		ConsumerGroup:   group,
		Consumer:        "c-" + watermill.NewShortUUID(),
		StartID:         "0",
		Block:           50 * time.Millisecond,
		ClaimInterval:   50 * time.Millisecond,
		ClaimMinIdle:    time.Minute, // tests about claiming lower it
		RetryBackoff:    time.Millisecond,
		MaxRetryBackoff: 10 * time.Millisecond,
		TrimInterval:    20 * time.Millisecond,
		// trimRound's canary, a stream without groups, is trimmed at once.
		TrimUngroupedAfter: time.Nanosecond,
		DepthInterval:      20 * time.Millisecond,
	}
}

// opsPublisher returns a publisher that makes its own client from cfg.
func opsPublisher(t *testing.T, cfg redisstream.Config) *redisstream.Publisher {
	t.Helper()
	pub, err := redisstream.NewPublisher(cfg, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })
	return pub
}

// opsSubscriber returns a subscriber that makes its own client from cfg and
// counts into a registry of its own, which it returns.
func opsSubscriber(t *testing.T, cfg redisstream.Config) (*redisstream.Subscriber, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	sub, err := redisstream.NewSubscriber(cfg, nil, nil, redisstream.NewMetrics(reg))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	return sub, reg
}

func subscribe(t *testing.T, sub message.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	return ch
}

// msg returns a message with payload and metadata pairs kv.
func msg(payload string, kv ...string) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), []byte(payload))
	for i := 0; i+1 < len(kv); i += 2 {
		m.Metadata.Set(kv[i], kv[i+1])
	}
	return m
}

// receive returns the next message of ch, failing t if none comes within d.
func receive(t *testing.T, ch <-chan *message.Message, d time.Duration) *message.Message {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case m, ok := <-ch:
		require.True(t, ok, "subscription closed")
		return m
	case <-timer.C:
		t.Fatalf("no message within %v", d)
		return nil
	}
}

// receiveAckOne acks and returns the next message of ch.
func receiveAckOne(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	m := receive(t, ch, 5*time.Second)
	m.Ack()
	return m
}

// receiveAck acks and returns the payloads of n messages of ch, failing t
// if they take longer than d.
func receiveAck(t *testing.T, ch <-chan *message.Message, n int, d time.Duration) []string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	got := make([]string, 0, n)
	for len(got) < n {
		select {
		case m, ok := <-ch:
			require.True(t, ok, "subscription closed")
			got = append(got, string(m.Payload))
			m.Ack()
		case <-timer.C:
			t.Fatalf("%d of %d messages within %v", len(got), n, d)
		}
	}
	return got
}

// metricValue returns the value of the counter or gauge name whose labels
// include the pairs kv, or 0 when there is none.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, kv ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(kv); i += 2 {
				if labels[kv[i]] != kv[i+1] {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// redisCLI is what the checks need of a redistest server or cluster.
type redisCLI interface {
	Do(t testing.TB, args ...string) string
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	require.NoError(t, err, "not a number: %q", s)
	return n
}

func xlen(t testing.TB, c redisCLI, stream string) int { return atoi(t, c.Do(t, "XLEN", stream)) }

// pendingCount is the size of group's pending entries list on stream.
func pendingCount(t testing.TB, c redisCLI, stream, group string) int {
	out := c.Do(t, "XPENDING", stream, group)
	first, _, _ := strings.Cut(out, "\n")
	return atoi(t, first)
}

// xadd appends an entry of field/value pairs with redis-cli and returns its ID.
func xadd(t testing.TB, c redisCLI, stream string, fv ...string) string {
	return c.Do(t, append([]string{"XADD", stream, "*"}, fv...)...)
}

// commandCalls returns the calls of a command from INFO commandstats
// (cmdstat_xreadgroup:calls=12,…).
func commandCalls(t testing.TB, srv *redistest.Server, command string) int {
	t.Helper()
	for _, line := range strings.Split(srv.Do(t, "INFO", "commandstats"), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+command+":calls=")
		if ok {
			n, _, _ := strings.Cut(rest, ",")
			return atoi(t, n)
		}
	}
	return 0
}

// infoField returns a field of INFO section, such as process_id of server.
func infoField(t testing.TB, srv *redistest.Server, section, field string) string {
	t.Helper()
	for _, line := range strings.Split(srv.Do(t, "INFO", section), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	t.Fatalf("no %s in INFO %s", field, section)
	return ""
}

func payloads(prefix string, n int) []string {
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return p
}
