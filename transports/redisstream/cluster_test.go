package redisstream_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestCluster publishes and consumes on a 3-node Redis Cluster, configured
// by its seed addresses, with hash-tagged streams in different slots; a
// poison entry goes to the dead-letter stream, which stays in its stream's
// slot thanks to the hash tag.
func TestCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	streams := []string{"events:{chat}", "events:{typing}"}
	slot := func(key string) int { return atoi(t, cluster.Do(t, "CLUSTER", "KEYSLOT", key)) }
	require.NotEqual(t, slot(streams[0]), slot(streams[1]), "the streams are in different slots")
	for _, s := range streams {
		require.Equal(t, slot(s), slot(s+":dead"), "a dead-letter stream shares its stream's slot")
	}

	cfg := opsConfig("", "hub")
	cfg.Addrs = cluster.Addrs()
	cfg.MaxLen = 100
	pub := opsPublisher(t, cfg)
	sub, reg := opsSubscriber(t, cfg)
	for _, stream := range streams {
		ch := subscribe(t, sub, stream)
		publishN(t, pub, stream, stream+"-", 300) // pipelines split by slot
		xadd(t, cluster, stream, "foo", "bar")
		require.NoError(t, pub.Publish(stream, msg("last")))
		got := receiveAck(t, ch, 301, 10*time.Second)
		require.Equal(t, append(payloads(stream+"-", 300), "last"), got)
		require.Eventually(t, func() bool { return xlen(t, cluster, stream+":dead") == 1 },
			5*time.Second, 10*time.Millisecond)
		require.Equal(t, 1.0, metricValue(t, reg, "switchyard_redis_dead_lettered_total", "stream", stream, "reason", "malformed"))
		// Trimmed on its node once read and acked.
		require.Eventually(t, func() bool { return xlen(t, cluster, stream) <= 200 },
			5*time.Second, 10*time.Millisecond)
		require.Eventually(t, func() bool {
			return metricValue(t, reg, "event_queue_depth", "stream", stream) == 0 &&
				pendingCount(t, cluster, stream, "hub") == 0
		}, 5*time.Second, 10*time.Millisecond)
	}
	require.NotEqual(t, slotOwner(t, cluster, streams[0]), slotOwner(t, cluster, streams[1]), "the streams live on different nodes")

	t.Run("acl", func(t *testing.T) {
		for _, node := range cluster.Nodes() {
			node.Do(t, append([]string{"ACL", "SETUSER", "switchyard", "on", ">s3cret"}, aclRule(aclClusterCommands...)...)...)
		}
		cfg := cfg
		cfg.Username, cfg.Password = "switchyard", "s3cret"
		cfg.ConsumerGroup = "acl"
		pub := opsPublisher(t, cfg)
		sub, _ := opsSubscriber(t, cfg)
		for _, stream := range streams {
			ch := subscribe(t, sub, stream)
			require.NoError(t, pub.Publish(stream, msg("acl")))
			for { // the group starts at 0: what the first test left comes first
				if string(receiveAckOne(t, ch).Payload) == "acl" {
					break
				}
			}
		}
		for _, node := range cluster.Nodes() {
			require.Empty(t, node.Do(t, "ACL", "LOG"))
		}
	})
}

// slotOwner returns the index of the node that holds key: the others answer
// MOVED.
func slotOwner(t *testing.T, cluster *redistest.Cluster, key string) int {
	t.Helper()
	for i, node := range cluster.Nodes() {
		if out, err := node.Exec("EXISTS", key); err == nil && out == "1" {
			return i
		}
	}
	t.Fatalf("no node holds %s", key)
	return -1
}
