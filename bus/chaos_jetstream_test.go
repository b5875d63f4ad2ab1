//go:build chaos

package bus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
func startJetStreamChaos(t *testing.T, rec *recorder, fallback bool) (*jstest.Cluster, *chaosHub, *chaosApp) {
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
	return cluster, hub, startChaosApp(t, rec, settings)
}

// consumerLeader is the node that leads the hub's consumer of events:chat.
func consumerLeader(t *testing.T, c *jstest.Cluster) *jstest.Server {
	t.Helper()
	var leader *jstest.Server
	require.Eventually(t, func() bool {
		for _, n := range c.Nodes {
			if srv := n.NATS(); srv != nil && srv.JetStreamIsConsumerLeader("$G", "events:chat", "hub") {
				leader = n
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "no leader for the consumer")
	return leader
}

// awaitDelivered waits, up to max, until every accepted event was
// delivered or dead-lettered: a consumer that stalls for longer than
// settle's patience is late, not lost, and the row shows how late.
func awaitDelivered(app *chaosApp, max time.Duration) {
	deadline := time.Now().Add(max)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		if n, _ := app.rec.missing(app.accepted); n == 0 || time.Now().After(deadline) {
			return
		}
	}
}

// logStream logs what the hub logged, and what the stream of events:chat
// and its consumer "hub" hold, to tell a publisher's loss from a
// consumer's.
func logStream(t *testing.T, c *jstest.Cluster, hub *chaosHub) {
	t.Helper()
	hub.logs.mu.Lock()
	t.Logf("the hub saw %d distinct events and logged:\n%s", hub.rec.distinct(), hub.logs.buf.String())
	hub.logs.mu.Unlock()
	nc, err := nats.Connect(strings.Join(c.URLs(), ","))
	require.NoError(t, err)
	defer nc.Close()
	j, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := j.Stream(ctx, "events:chat")
	if err != nil {
		t.Logf("stream: %v", err)
		return
	}
	si, err := s.Info(ctx)
	if err == nil {
		t.Logf("stream: %+v; cluster %+v", si.State, si.Cluster)
	}
	cons, err := s.Consumer(ctx, "hub")
	if err != nil {
		t.Logf("consumer: %v", err)
		return
	}
	ci, err := cons.Info(ctx)
	if err == nil {
		t.Logf("consumer: delivered %+v ack floor %+v pending %d ack pending %d waiting %d redelivered %d; cluster %+v",
			ci.Delivered, ci.AckFloor, ci.NumPending, ci.NumAckPending, ci.NumWaiting, ci.NumRedelivered, ci.Cluster)
	}
}

// chaosJetStreamNodeKilled: the node that leads the hub's consumer (the
// worst node to lose: the pull requests the hub is waiting on are there)
// is shut down after 1s of traffic and started again 2s later; no
// fallback. The other two elect leaders, the bus's retries cover the
// election, and the hub reads on within seconds: 0 lost, nothing
// dead-lettered, recovered within 5s.
func chaosJetStreamNodeKilled(t *testing.T, table *chaosTable) {
	rec := newRecorder()
	cluster, hub, app := startJetStreamChaos(t, rec, false)

	app.pump(t, time.Second, nil, nil)
	leader := consumerLeader(t, cluster)
	leader.Shutdown()
	app.pump(t, 2*time.Second, nil, nil)
	require.NoError(t, leader.StartAgain())
	faultEnd := time.Now()
	app.pump(t, time.Second, nil, nil)
	app.settle(40 * time.Second)
	awaitDelivered(app, 40*time.Second)

	row := app.row("jetstream/node_killed/fallback=off", false, 0, "jetstream", faultEnd)
	table.add(row)
	t.Logf("%+v", row)
	if row.lost > 0 {
		logStream(t, cluster, hub)
	}
	assert.Zero(t, row.lost, "lost: %v", app.lostSeqs(10))
	assert.Zero(t, row.dead, "a stream with three replicas rides out one node's loss")
	require.GreaterOrEqual(t, row.recovered, time.Duration(0), "deliveries on JetStream after the restart")
	assert.Less(t, row.recovered, 5*time.Second, "the hub's consumer reads on within seconds of its leader's loss, "+
		"not after its pull requests' missed heartbeats (2 × the heartbeat, 30s by default)")
}

// chaosJetStreamQuorumLost: two of the three nodes are shut down after 1s
// of traffic, so the stream has no quorum, and started again 2s later;
// fallback to HTTP on. What JetStream cannot take goes through HTTP: 0
// lost, and traffic returns to JetStream once the cluster has a quorum.
func chaosJetStreamQuorumLost(t *testing.T, table *chaosTable) {
	rec := newRecorder()
	cluster, hub, app := startJetStreamChaos(t, rec, true)

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
	awaitDelivered(app, 40*time.Second)

	row := app.row("jetstream/quorum_lost/fallback=on", false, 0, "jetstream", faultEnd)
	table.add(row)
	f := fallbacks(t, app.reg)
	t.Logf("%+v; fallbacks %v", row, f)
	if row.lost > 0 {
		logStream(t, cluster, hub)
	}
	assert.Positive(t, f["error"]+f["timeout"]+f["breaker_open"], "the lost quorum made the bus fall back")
	assert.Zero(t, row.lost, "lost: %v", app.lostSeqs(10))
	assert.GreaterOrEqual(t, row.recovered, time.Duration(0), "traffic returned to JetStream")
}
