package redistest

import (
	"context"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const clusterTimeout = 30 * time.Second

// Cluster is a Redis Cluster of masters without replicas, owned by one test.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts n servers (at least 3, as redis-cli --cluster create
// requires) in cluster mode, each on its own free port and cluster bus port
// and in its own directory, spreads the 16384 slots over them and returns
// once every node reports cluster_state:ok. The nodes are stopped when the
// test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters, not %d", n)
	}
	c := &Cluster{}
	for range n {
		c.nodes = append(c.nodes, Start(t, withCluster()))
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, c.nodes[0].cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}

	deadline := time.Now().Add(clusterTimeout)
	for _, node := range c.nodes {
		for {
			info, err := node.Exec("CLUSTER", "INFO")
			fields := strings.Fields(info)
			if err == nil && slices.Contains(fields, "cluster_state:ok") &&
				slices.Contains(fields, "cluster_known_nodes:"+strconv.Itoa(n)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not ok after %v: %v\n%s", node.Addr(), clusterTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// Addrs returns the nodes' "127.0.0.1:port" addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, node := range c.nodes {
		addrs[i] = node.Addr()
	}
	return addrs
}

// Nodes returns the cluster's servers, to reach, stop or kill one of them.
func (c *Cluster) Nodes() []*Server { return c.nodes }

// Do runs a command with redis-cli -c, which follows MOVED and ASK
// redirections, starting from the first node; an error reply fails t.
func (c *Cluster) Do(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.nodes[0].runCLI([]string{"-e", "-c"}, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
