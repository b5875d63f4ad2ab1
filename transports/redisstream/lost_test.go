package redisstream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestLostEntriesCounted: a pending entry whose data was trimmed or
// deleted before it was acked is counted in
// switchyard_redis_lost_entries_total and leaves the pending list, whether
// the subscription finds it among its own pending entries or claims it
// from a consumer that is gone (Redis 7 lists those apart in XAUTOCLAIM's
// reply, as deleted IDs).
func TestLostEntriesCounted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		owner func(cfgConsumer string) string
	}{
		{"own", func(c string) string { return c }},
		{"claimed", func(string) string { return "dead" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			const stream = "events:lost"
			cfg := opsConfig(srv.URL(), "hub")
			cfg.ClaimMinIdle = time.Millisecond
			cfg.ClaimInterval = 20 * time.Millisecond
			pub := opsPublisher(t, cfg)
			srv.Do(t, "XGROUP", "CREATE", stream, "hub", "0", "MKSTREAM")
			require.NoError(t, pub.Publish(stream, msg("a", "event_key", "1"), msg("b", "event_key", "2"), msg("c", "event_key", "3")))
			out := srv.Do(t, "XREADGROUP", "GROUP", "hub", tc.owner(cfg.Consumer), "COUNT", "10", "STREAMS", stream, ">")
			var ids []string
			for _, line := range strings.Split(out, "\n") {
				if isStreamID(line) {
					ids = append(ids, line)
				}
			}
			require.Len(t, ids, 3)
			// a and b are deleted before anyone acked them; c is there.
			srv.Do(t, "XDEL", stream, ids[0], ids[1])

			sub, reg := opsSubscriber(t, cfg)
			got := receiveAck(t, subscribe(t, sub, stream), 1, 5*time.Second)
			require.Equal(t, []string{"c"}, got)
			require.Eventually(t, func() bool { return pendingCount(t, srv, stream, "hub") == 0 },
				5*time.Second, 10*time.Millisecond)
			require.Eventually(t, func() bool {
				return metricValue(t, reg, "switchyard_redis_lost_entries_total", "stream", stream) == 2
			}, 2*time.Second, 10*time.Millisecond, "the two deleted pending entries are counted")
		})
	}
}
