package redistest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	startTimeout = 10 * time.Second // from exec to the first PONG
	stopGrace    = 10 * time.Second // from SIGTERM to SIGKILL
	killTimeout  = 5 * time.Second  // from SIGKILL to giving up

	// readyMarker is what redis-server logs once it listens and has loaded
	// its data. Waiting for it as well as for PING makes sure the PONG comes
	// from our process, not from one that took the port before it could.
	readyMarker = "Ready to accept connections"

	logFile = "redis.log"
)

var errAddrInUse = errors.New("redistest: address already in use")

// Server is a redis-server process owned by one test.
type Server struct {
	t       testing.TB
	cfg     config
	bin     string
	cli     string
	dir     string
	port    int
	busPort int    // cluster bus port, 0 outside a cluster
	admin   string // the password of RestartCommand's ACL user, with WithACL

	mu   sync.Mutex
	cmd  *exec.Cmd     // the running process, if any
	done chan struct{} // closed once cmd has been reaped
}

// Option configures a server started by [Start].
type Option func(*config)

type config struct {
	aof      bool
	args     []string
	password string
	tls      *TLSFiles
	acl      []string
	cluster  bool
}

// WithAOF turns on the append-only file, fsynced on every write
// (appendonly yes, appendfsync always), so that everything acknowledged
// survives Kill, Restart and RestartCommand. Without it a server keeps
// nothing across a restart.
func WithAOF() Option { return func(c *config) { c.aof = true } }

// WithArgs appends redis-server arguments, such as "--maxmemory", "10mb".
// They come last, so they override the helpers' defaults.
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// WithPassword sets the password of the default user (requirepass). URL,
// Do and RestartCommand use it.
func WithPassword(password string) Option {
	return func(c *config) { c.password = password }
}

// WithTLS makes the server listen with TLS only, using files from
// [NewTLSFiles]; URL then starts with rediss://.
func WithTLS(files *TLSFiles) Option { return func(c *config) { c.tls = files } }

// WithACL writes lines to an ACL file for the server (aclfile), such as
//
//	user writer on >secret ~events:* +@stream +ping
//
// redis-server resets the default user to "on nopass" when it loads an ACL
// file that does not mention it, which would drop a WithPassword password;
// so unless a line defines the default user, one that keeps the password is
// added. So is a user of the package's own, for RestartCommand.
func WithACL(lines ...string) Option {
	return func(c *config) { c.acl = append(c.acl, lines...) }
}

func withCluster() Option { return func(c *config) { c.cluster = true } }

// Start runs a redis-server on a free loopback port, with its own temporary
// directory, no RDB snapshots and no AOF unless asked, and returns once it
// answers PING. The server is stopped when the test ends. Start skips or
// fails the test as [Require] does when redis-server is missing.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := newServer(t, opts)
	t.Cleanup(s.cleanup) // before the start, to stop a server half-started
	var err error
	for range 5 {
		s.pickPorts()
		if err = s.launch(); !errors.Is(err, errAddrInUse) {
			break
		}
		t.Logf("redistest: %v; trying another port", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newServer(t testing.TB, opts []Option) *Server {
	t.Helper()
	bin, cli := binaries(t)
	s := &Server{t: t, bin: bin, cli: cli, dir: t.TempDir()}
	for _, opt := range opts {
		opt(&s.cfg)
	}
	if len(s.cfg.acl) > 0 {
		s.admin = rand.Text()
		if err := os.WriteFile(s.path("users.acl"), []byte(s.aclText()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the port the server listens on (its TLS port WithTLS).
func (s *Server) Port() int { return s.port }

// URL returns redis://127.0.0.1:port/0, rediss:// WithTLS, with the password
// of WithPassword as user info.
func (s *Server) URL() string {
	u := url.URL{Scheme: "redis", Host: s.Addr(), Path: "/0"}
	if s.cfg.tls != nil {
		u.Scheme = "rediss"
	}
	if s.cfg.password != "" {
		u.User = url.UserPassword("", s.cfg.password)
	}
	return u.String()
}

// Stop shuts the server down gracefully (SIGTERM; SIGKILL if it takes more
// than 10 s) and waits until it has exited. Stopping a stopped server does
// nothing. Like Kill and Restart, it fails the test that started the server.
func (s *Server) Stop() { s.t.Helper(); s.locked(s.stop) }

// Kill ends the server with SIGKILL, as a crash would, and waits until it
// has exited.
func (s *Server) Kill() { s.t.Helper(); s.locked(s.kill) }

// Restart stops the server if it runs, starts it again on the same port
// with the same directory and waits until it answers PING. WithAOF, the data
// written before comes back.
func (s *Server) Restart() { s.t.Helper(); s.locked(s.stop, s.launch) }

func (s *Server) stop() error { return s.terminate(syscall.SIGTERM) }
func (s *Server) kill() error { return s.terminate(syscall.SIGKILL) }

// locked runs steps under s.mu until one fails, which fails the test.
func (s *Server) locked(steps ...func() error) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, step := range steps {
		if err := step(); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *Server) cleanup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stop(); err != nil {
		s.t.Error(err)
	}
	if s.t.Failed() {
		s.t.Logf("redistest: last lines of %s:\n%s", s.path(logFile), lastLines(s.log(), 30))
	}
}

func (s *Server) path(name string) string { return filepath.Join(s.dir, name) }

// pickPorts takes ports that were free on 127.0.0.1 a moment ago. Another
// process may take one before redis-server binds it; Start then tries again.
func (s *Server) pickPorts() {
	ports := []*int{&s.port}
	if s.cfg.cluster {
		ports = append(ports, &s.busPort)
	}
	for _, p := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.t.Fatalf("redistest: find a free port: %v", err)
		}
		defer l.Close()
		*p = l.Addr().(*net.TCPAddr).Port
	}
}

// serverArgs is the redis-server command line.
func (s *Server) serverArgs() []string {
	args := []string{"--bind", "127.0.0.1", "--dir", s.dir, "--save", "", "--logfile", s.path(logFile),
		"--daemonize", "no", "--appendonly", "no"}
	if debugOption(s.bin) {
		args = append(args, "--enable-debug-command", "local") // for RestartCommand
	}
	if f := s.cfg.tls; f != nil {
		auth := map[bool]string{false: "optional", true: "yes"}[f.RequireClientCert]
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(s.port), "--tls-cert-file", f.ServerCert,
			"--tls-key-file", f.ServerKey, "--tls-ca-cert-file", f.CACert, "--tls-auth-clients", auth)
	} else {
		args = append(args, "--port", strconv.Itoa(s.port))
	}
	if s.cfg.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	if len(s.cfg.acl) > 0 {
		args = append(args, "--aclfile", s.path("users.acl"))
	} else if s.cfg.password != "" {
		args = append(args, "--requirepass", s.cfg.password)
	}
	if s.cfg.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000", "--cluster-port", strconv.Itoa(s.busPort))
	}
	return append(args, s.cfg.args...)
}

func (s *Server) aclText() string {
	var b strings.Builder
	definesDefault := slices.ContainsFunc(s.cfg.acl, func(line string) bool {
		f := strings.Fields(line)
		return len(f) >= 2 && f[0] == "user" && f[1] == "default"
	})
	if !definesDefault && s.cfg.password != "" {
		// A hash, because the ACL file cannot quote a password with spaces.
		sum := sha256.Sum256([]byte(s.cfg.password))
		fmt.Fprintf(&b, "user default on #%s ~* &* +@all\n", hex.EncodeToString(sum[:]))
	}
	fmt.Fprintf(&b, "user %s on >%s +ping +debug\n", adminUser, s.admin)
	for _, line := range s.cfg.acl {
		b.WriteString(strings.TrimSpace(line) + "\n")
	}
	return b.String()
}

// launch starts redis-server as a child of the test and waits until it
// answers PING. The caller holds s.mu, or owns s alone.
func (s *Server) launch() error {
	logOffset := len(s.log())
	var stdio bytes.Buffer // what redis-server prints before it opens its log; read once it has exited
	cmd := exec.Command(s.bin, s.serverArgs()...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = &stdio, &stdio
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(startTimeout)
	var pingErr error
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		select {
		case <-done:
			out := stdio.String() + s.log()[logOffset:]
			err := fmt.Errorf("redistest: redis-server on port %d exited while starting (%v):\n%s", s.port, cmd.ProcessState, out)
			if strings.Contains(out, "Address already in use") {
				err = fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return err
		default:
		}
		if strings.Contains(s.log()[logOffset:], readyMarker) {
			// Any reply but LOADING or BUSY: NOAUTH too proves the server is up.
			out, err := s.runCLI(nil, "PING")
			if pingErr = err; err == nil && (strings.Contains(out, "LOADING") || strings.Contains(out, "BUSY")) {
				pingErr = errors.New(out)
			}
			if pingErr == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redistest: redis-server on port %d did not answer PING within %v (last error: %v):\n%s",
				s.port, startTimeout, pingErr, lastLines(s.log(), 20))
		}
		time.Sleep(delay)
	}
}

// terminate sends sig to the server, escalates to SIGKILL after stopGrace
// and waits until it has exited (been reaped: its main thread shows as a
// zombie while other threads still hold its port). The caller holds s.mu.
func (s *Server) terminate(sig syscall.Signal) error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(sig)
	if sig != syscall.SIGKILL {
		select {
		case <-s.done:
			return nil
		case <-time.After(stopGrace):
			s.t.Logf("redistest: redis-server on port %d ignored SIGTERM for %v; sending SIGKILL", s.port, stopGrace)
			_ = s.cmd.Process.Kill()
		}
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(killTimeout):
		return fmt.Errorf("redistest: redis-server on port %d still runs %v after SIGKILL", s.port, killTimeout)
	}
}

// log returns the server's log file, or "" while there is none.
func (s *Server) log() string {
	data, _ := os.ReadFile(s.path(logFile))
	return string(data)
}

func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
