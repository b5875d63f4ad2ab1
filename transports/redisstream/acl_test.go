package redisstream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// aclCommands are the commands the transport runs, and all it needs:
// docs/redis.md gives the ACL line. A Cluster also needs aclClusterCommands.
var (
	aclCommands = []string{
		"+xadd",          // publish; dead-letter copies
		"+xreadgroup",    // read
		"+xack",          // ack
		"+xgroup|create", // create the group (and the stream), again after a restart that lost it
		"+xautoclaim",    // claim entries of consumers gone
		"+xinfo|groups",  // event_queue_depth; trimming
		"+xlen",          // event_queue_depth; trimming
		"+xpending",      // trimming: a group's oldest pending entry
		"+xrange",        // trimming: the last entry that may go
		"+xtrim",         // trimming
	}
	aclClusterCommands = []string{"+cluster|slots", "+command"}
)

// aclRule is the ACL rule of a user limited to the events:* keys and the
// commands the transport needs.
func aclRule(extra ...string) []string {
	return append(append([]string{"~events:*", "resetchannels", "-@all"}, aclCommands...), extra...)
}

// TestACL runs publish, consume, dead-letter, claim, trim and depth as a
// user limited to the events:* keys and the commands above, and checks that
// Redis refused nothing (ACL LOG is empty), and that a key outside the
// pattern is refused.
func TestACL(t *testing.T) {
	line := "user switchyard on >s3cret " + strings.Join(aclRule(), " ")
	srv := redistest.Start(t, redistest.WithPassword("admin"), redistest.WithACL(line))
	url := "redis://switchyard:s3cret@" + srv.Addr() + "/0"
	const stream = "events:acl"

	cfg := opsConfig(url, "hub")
	cfg.MaxLen = 100
	cfg.ClaimMinIdle = 200 * time.Millisecond
	pub := opsPublisher(t, cfg)
	sub, reg := opsSubscriber(t, cfg)
	srv.Do(t, "XGROUP", "CREATE", stream, "hub", "0", "MKSTREAM")
	require.NoError(t, pub.Publish(stream, msg("claimed")))
	srv.Do(t, "XREADGROUP", "GROUP", "hub", "gone", "COUNT", "1", "STREAMS", stream, ">")

	ch := subscribe(t, sub, stream)
	publishN(t, pub, stream, "m", 300)
	xadd(t, srv, stream, "foo", "bar")
	got := receiveAck(t, ch, 301, 10*time.Second)
	require.Contains(t, got, "claimed")
	require.Eventually(t, func() bool {
		return xlen(t, srv, stream) <= 2*int(cfg.MaxLen) && xlen(t, srv, stream+":dead") == 1 &&
			pendingCount(t, srv, stream, "hub") == 0 &&
			metricValue(t, reg, "event_queue_depth", "stream", stream) == 0 &&
			metricValue(t, reg, "switchyard_redis_claimed_total", "stream", stream) == 1
	}, 5*time.Second, 10*time.Millisecond, "trimmed, dead-lettered, acked, claimed, depth reported")
	require.Empty(t, srv.Do(t, "ACL", "LOG"), "Redis refused none of the transport's commands")

	err := pub.Publish("other:acl", msg("x"))
	require.ErrorContains(t, err, "NOPERM")
	_, err = srv.Exec("--user", "switchyard", "--pass", "s3cret", "GET", "events:acl")
	require.ErrorContains(t, err, "NOPERM", "no command beyond the list")
}
