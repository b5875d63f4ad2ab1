//go:build chaos

package bus_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/jetstream/jstest"
)

// TestChaosJetStream runs the JetStream scenarios of docs/chaos.md, as
// TestChaos does for Redis: numbered events go through a rollout at 100%
// on a three-node JetStream cluster (a stream with three replicas) while
// nodes are shut down, and a row per scenario is logged at the end.
func TestChaosJetStream(t *testing.T) {
	table := &chaosTable{}
	t.Cleanup(func() { t.Log("\n" + table.String()) })
	t.Run("jetstream/node_killed/fallback=off", func(t *testing.T) { chaosJetStreamNodeKilled(t, table) })
	t.Run("jetstream/quorum_lost/fallback=on", func(t *testing.T) { chaosJetStreamQuorumLost(t, table) })
}

// startJetStreamChaos starts a three-node cluster, a hub that consumes its
// stream (durable consumer "hub") and its HTTP receiver, and an application
// whose rollout sends every event to the cluster, with fallback to the
// hub's receiver when fallback is on.
func startJetStreamChaos(t *testing.T, rec *recorder, fallback bool) (*jstest.Cluster, *chaosApp) {
	t.Helper()
	cluster := jstest.StartCluster(t, 3)
	urls := anySlice(cluster.URLs())
	hub := startChaosHub(t, rec, "", nil, func(m map[string]any) {
		setting(m, "transports.jetstream", map[string]any{
			"type": "jetstream", "urls": urls, "replicas": 3, "consumer": "hub", "ack_wait": "5s",
		})
		setting(m, "consume.from", []any{"jetstream", "http"})
	})
	settings := appSettings("", hubURL(hub.addr))
	setting(settings, "transports.jetstream", map[string]any{
		"type": "jetstream", "urls": urls, "replicas": 3, "publish_timeout": "1s",
	})
	setting(settings, "routing.candidate", "jetstream")
	setting(settings, "routing.enabled", true)
	setting(settings, "routing.percentage", 100)
	setting(settings, "routing.fallback.enabled", fallback)
	return cluster, startChaosApp(t, rec, settings)
}

// streamLeader is the node that leads the stream of events:chat.
func streamLeader(t *testing.T, c *jstest.Cluster) *jstest.Server {
	t.Helper()
	var leader *jstest.Server
	require.Eventually(t, func() bool {
		for _, n := range c.Nodes {
			if srv := n.NATS(); srv != nil && srv.JetStreamIsStreamLeader("$G", "events:chat") {
				leader = n
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "no leader for the stream")
	return leader
}

// chaosJetStreamNodeKilled: the stream's leader is shut down after 1s of
// traffic and started again 2s later; no fallback. The other two elect a
// leader and the bus's retries cover the election: 0 lost, nothing
// dead-lettered.
func chaosJetStreamNodeKilled(t *testing.T, table *chaosTable) {
	rec := newRecorder()
	cluster, app := startJetStreamChaos(t, rec, false)

	app.pump(t, time.Second, nil, nil)
	leader := streamLeader(t, cluster)
	leader.Shutdown()
	app.pump(t, 2*time.Second, nil, nil)
	require.NoError(t, leader.StartAgain())
	faultEnd := time.Now()
	app.pump(t, time.Second, nil, nil)
	app.settle(40 * time.Second)

	row := app.row("jetstream/node_killed/fallback=off", false, 0, "jetstream", faultEnd)
	table.add(row)
	t.Logf("%+v", row)
	assert.Zero(t, row.lost, "lost: %v", app.lostSeqs(10))
	assert.Zero(t, row.dead, "a stream with three replicas rides out one node's loss")
	assert.GreaterOrEqual(t, row.recovered, time.Duration(0), "deliveries on JetStream after the restart")
}

// chaosJetStreamQuorumLost: two of the three nodes are shut down after 1s
// of traffic, so the stream has no quorum, and started again 2s later;
// fallback to HTTP on. What JetStream cannot take goes through HTTP: 0
// lost, and traffic returns to JetStream once the cluster has a quorum.
func chaosJetStreamQuorumLost(t *testing.T, table *chaosTable) {
	rec := newRecorder()
	cluster, app := startJetStreamChaos(t, rec, true)

	app.pump(t, time.Second, nil, nil)
	cluster.Nodes[1].Shutdown()
	cluster.Nodes[2].Shutdown()
	app.pump(t, 2*time.Second, nil, nil)
	require.NoError(t, cluster.Nodes[1].StartAgain())
	require.NoError(t, cluster.Nodes[2].StartAgain())
	faultEnd := time.Now()
	// The cluster elects its leaders again (a few seconds): traffic goes on
	// until it is back on JetStream, and a while after.
	for until := faultEnd.Add(20 * time.Second); time.Now().Before(until) && rec.firstAfter("jetstream", faultEnd) < 0; {
		app.pump(t, 100*time.Millisecond, nil, nil)
	}
	app.pump(t, 500*time.Millisecond, nil, nil)
	app.settle(40 * time.Second)

	row := app.row("jetstream/quorum_lost/fallback=on", false, 0, "jetstream", faultEnd)
	table.add(row)
	f := fallbacks(t, app.reg)
	t.Logf("%+v; fallbacks %v", row, f)
	assert.Positive(t, f["error"]+f["timeout"]+f["breaker_open"], "the lost quorum made the bus fall back")
	assert.Zero(t, row.lost, "lost: %v", app.lostSeqs(10))
	assert.GreaterOrEqual(t, row.recovered, time.Duration(0), "traffic returned to JetStream")
}
