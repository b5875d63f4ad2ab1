// Package jstest runs NATS servers with JetStream inside the test process,
// on free loopback ports with a temporary store: one server, or a cluster
// whose nodes can be stopped and started again. Tests never depend on a
// NATS server of the machine.
package jstest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is one embedded NATS server with JetStream on.
type Server struct {
	mu   sync.Mutex
	opts *server.Options
	srv  *server.Server
}

// Option changes a server's options before it starts, to add
// authorization or TLS.
type Option func(*server.Options)

// Start starts a server on a free loopback port with its store in a
// temporary directory; t's cleanup shuts it down.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := baseOptions(t, "")
	for _, f := range opts {
		f(o)
	}
	s := &Server{opts: o}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func baseOptions(t testing.TB, name string) *server.Options {
	return &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
		// No monitoring or leaf ports: nothing listens that a test did
		// not ask for.
		HTTPPort: 0,
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The server reads its options while it runs: it gets a copy, and
	// s.opts stays ours to change for a restart.
	srv, err := server.NewServer(s.opts.Clone())
	if err != nil {
		return fmt.Errorf("jstest: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("jstest: server %s not ready", s.opts.ServerName)
	}
	// A restart comes back on the same ports.
	s.opts.Port = srv.Addr().(*net.TCPAddr).Port
	if a := srv.ClusterAddr(); a != nil {
		s.opts.Cluster.Port = a.Port
	}
	s.srv = srv
	return nil
}

// URL is the server's client URL, nats://127.0.0.1:port.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "nats://127.0.0.1:" + strconv.Itoa(s.opts.Port)
}

// NATS is the running server, for its monitoring calls (JszOptions…); nil
// while it is stopped.
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Shutdown stops the server and waits until it has stopped. The store is
// kept for Restart. Idempotent.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart stops the server and starts it again on the same port with the
// same store: what it had stored is there again.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Shutdown()
	if err := s.StartAgain(); err != nil {
		t.Fatal(err)
	}
}

// StartAgain starts a stopped server on its port, with its store.
func (s *Server) StartAgain() error { return s.start() }

// RestartCommand is a command that restarts the server, for Watermill's
// universal suite (tests.Features.RestartServiceCommand), which runs a
// command: it sends SIGUSR2 to the test process, whose handler restarts
// the server. The handler is removed with t's cleanup. One server of a
// process at a time may have it.
func (s *Server) RestartCommand(t testing.TB) []string {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR2)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-sig:
				s.Shutdown()
				if err := s.StartAgain(); err != nil {
					t.Error(err)
				}
			case <-done:
				return
			}
		}
	})
	t.Cleanup(func() {
		signal.Stop(sig)
		close(done)
		wg.Wait()
	})
	return []string{"kill", "-USR2", strconv.Itoa(os.Getpid())}
}

// Cluster is a JetStream cluster of embedded servers routed on loopback.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n servers (n >= 3 for a quorum that survives one
// loss) as one cluster and waits until JetStream has a meta leader.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{}
	// The first node's route port is known once it listens; the others
	// route to it and learn of each other from it.
	var seed *url.URL
	for i := range n {
		o := baseOptions(t, fmt.Sprintf("n%d", i+1))
		o.Cluster = server.ClusterOpts{Name: "jstest", Host: "127.0.0.1", Port: server.RANDOM_PORT}
		if seed != nil {
			o.Routes = []*url.URL{seed}
		}
		s := &Server{opts: o}
		if i == 0 {
			// JetStream in a cluster needs its routes at start to form a
			// group; the seed lists itself until the others come.
			o.Cluster.Port = freePort(t)
			seed = &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(o.Cluster.Port)}
			o.Routes = []*url.URL{seed}
		}
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Shutdown)
		c.Nodes = append(c.Nodes, s)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !c.hasLeader() {
		if time.Now().After(deadline) {
			t.Fatal("jstest: the cluster elected no JetStream meta leader in 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

func (c *Cluster) hasLeader() bool {
	for _, s := range c.Nodes {
		if srv := s.NATS(); srv != nil && srv.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

// URLs are the client URLs of every node, comma separated, as a client's
// url takes them.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		urls[i] = s.URL()
	}
	return urls
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
