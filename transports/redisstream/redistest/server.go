package redistest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	portAttempts = 5

	// readyMarker is what redis-server logs once it listens and has loaded
	// its data. Waiting for it as well as for PING makes sure the PONG comes
	// from our process, not from one that took the port before it could.
	readyMarker = "Ready to accept connections"

	logFile   = "redis.log"
	stdioFile = "stdio.log" // what redis-server prints before it opens its log
	pidFile   = "redis.pid"
	aclFile   = "users.acl"
	script    = "restart.sh"

	restartingFile = "restarting.pid" // the pid of a running restart script
)

var errAddrInUse = errors.New("redistest: address already in use")

// Server is a redis-server process owned by one test.
type Server struct {
	t       testing.TB
	cfg     config
	bin     string
	cli     string
	dir     string
	realDir string // dir with symlinks resolved, as /proc/<pid>/cwd shows it
	port    int
	busPort int // cluster bus port, 0 outside a cluster

	mu        sync.Mutex
	child     *exec.Cmd     // the process the Go side started last, if any
	childDone chan struct{} // closed once child has been reaped
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
// added.
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
	for range portAttempts {
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
	var err error
	if s.realDir, err = filepath.EvalSymlinks(s.dir); err != nil {
		t.Fatal(err)
	}
	if len(s.cfg.acl) > 0 {
		if err := os.WriteFile(s.path(aclFile), []byte(s.aclText()), 0o600); err != nil {
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
func (s *Server) Kill() {
	s.t.Helper()
	s.locked(func() error { return s.terminate(syscall.SIGKILL) })
}

// Restart stops the server if it runs, starts it again on the same port
// with the same directory and waits until it answers PING. WithAOF, the data
// written before comes back.
func (s *Server) Restart() { s.t.Helper(); s.locked(s.stop, s.launch) }

func (s *Server) stop() error { return s.terminate(syscall.SIGTERM) }

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
	if err := s.terminate(syscall.SIGTERM); err != nil {
		s.t.Error(err)
	}
	if s.t.Failed() {
		s.t.Logf("redistest: last lines of %s:\n%s", s.path(logFile), lastLines(s.path(logFile), 30))
	}
}

func (s *Server) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Server) pickPorts() {
	n := 1
	if s.cfg.cluster {
		n = 2
	}
	ports, err := freePorts(n)
	if err != nil {
		s.t.Fatal(err)
	}
	s.port = ports[0]
	if s.cfg.cluster {
		s.busPort = ports[1]
	}
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment
// ago. Another process may take one before redis-server binds it; Start then
// tries again.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("redistest: find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// serverArgs is the redis-server command line, but for --daemonize.
func (s *Server) serverArgs() []string {
	args := []string{
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--logfile", s.path(logFile),
		"--pidfile", s.path(pidFile),
	}
	if s.cfg.tls != nil {
		auth := "optional"
		if s.cfg.tls.RequireClientCert {
			auth = "yes"
		}
		args = append(args,
			"--port", "0",
			"--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", s.cfg.tls.ServerCert,
			"--tls-key-file", s.cfg.tls.ServerKey,
			"--tls-ca-cert-file", s.cfg.tls.CACert,
			"--tls-auth-clients", auth)
	} else {
		args = append(args, "--port", strconv.Itoa(s.port))
	}
	if s.cfg.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if s.cfg.password != "" && len(s.cfg.acl) == 0 {
		args = append(args, "--requirepass", s.cfg.password)
	}
	if len(s.cfg.acl) > 0 {
		args = append(args, "--aclfile", s.path(aclFile))
	}
	if s.cfg.cluster {
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
			"--cluster-port", strconv.Itoa(s.busPort))
	}
	return append(args, s.cfg.args...)
}

func (s *Server) aclText() string {
	var b strings.Builder
	definesDefault := false
	for _, line := range s.cfg.acl {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "user" && f[1] == "default" {
			definesDefault = true
		}
	}
	if !definesDefault && s.cfg.password != "" {
		// A hash, because the ACL file cannot quote a password with spaces.
		sum := sha256.Sum256([]byte(s.cfg.password))
		fmt.Fprintf(&b, "user default on #%s ~* &* +@all\n", hex.EncodeToString(sum[:]))
	}
	for _, line := range s.cfg.acl {
		b.WriteString(strings.TrimSpace(line))
		b.WriteByte('\n')
	}
	return b.String()
}

// launch starts redis-server as a child of the test and waits until it
// answers PING. The caller holds s.mu, or owns s alone.
func (s *Server) launch() error {
	logOffset, stdioOffset := fileSize(s.path(logFile)), fileSize(s.path(stdioFile))
	stdio, err := os.OpenFile(s.path(stdioFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, append(s.serverArgs(), "--daemonize", "no")...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = stdio, stdio
	err = cmd.Start()
	stdio.Close()
	if err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // reap at once: a zombie would look alive to the restart script
		close(done)
	}()
	s.child, s.childDone = cmd, done

	deadline := time.Now().Add(startTimeout)
	delay := 5 * time.Millisecond
	var pingErr error
	for {
		select {
		case <-done:
			out := sinceOffset(s.path(stdioFile), stdioOffset) + sinceOffset(s.path(logFile), logOffset)
			err := fmt.Errorf("redistest: redis-server on port %d exited while starting (%v):\n%s",
				s.port, cmd.ProcessState, out)
			if strings.Contains(out, "Address already in use") {
				err = fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return err
		default:
		}
		if strings.Contains(sinceOffset(s.path(logFile), logOffset), readyMarker) {
			if pingErr = s.ping(); pingErr == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redistest: redis-server on port %d did not answer PING within %v (last error: %v):\n%s",
				s.port, startTimeout, pingErr, lastLines(s.path(logFile), 20))
		}
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// ping accepts any reply to PING but LOADING or BUSY: NOAUTH still proves
// that the server is up.
func (s *Server) ping() error {
	out, err := runCLI(s.cli, s.pingArgs(), s.cliEnv(), []string{"PING"})
	if err == nil && (strings.Contains(out, "LOADING") || strings.Contains(out, "BUSY")) {
		err = errors.New(out)
	}
	return err
}

// terminate sends sig to every process of the server (the Go side's child
// and whatever the pid file names), escalates to SIGKILL after stopGrace and
// waits until they have exited. The caller holds s.mu.
func (s *Server) terminate(sig syscall.Signal) error {
	if err := s.awaitRestartScript(); err != nil {
		return err
	}
	// The child's end is known from its reaping: its main thread shows as
	// a zombie while other threads still hold its port.
	childPID := 0
	if s.child != nil && !isClosed(s.childDone) {
		childPID = s.child.Process.Pid
	}
	var others []int
	if pid := readPIDFile(s.path(pidFile)); pid != 0 && pid != childPID && alive(pid) && runsIn(pid, s.realDir) {
		others = append(others, pid)
	}
	if childPID == 0 && len(others) == 0 {
		return nil
	}
	send := func(sig syscall.Signal) {
		if childPID != 0 {
			_ = s.child.Process.Signal(sig)
		}
		for _, pid := range others {
			_ = signalPID(pid, sig)
		}
	}
	running := func() bool {
		return childPID != 0 && !isClosed(s.childDone) || slices.ContainsFunc(others, alive)
	}
	send(sig)
	deadline := time.Now().Add(stopGrace)
	if sig == syscall.SIGKILL {
		deadline = time.Now().Add(killTimeout)
	}
	for running() {
		if time.Now().After(deadline) {
			if sig == syscall.SIGKILL {
				return fmt.Errorf("redistest: redis-server on port %d still runs %v after SIGKILL", s.port, killTimeout)
			}
			s.t.Logf("redistest: redis-server on port %d ignored SIGTERM for %v; sending SIGKILL", s.port, stopGrace)
			sig = syscall.SIGKILL
			send(sig)
			deadline = time.Now().Add(killTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A graceful shutdown removes the pid file, a kill leaves it behind.
	if err := os.Remove(s.path(pidFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// awaitRestartScript waits until no RestartCommand script is running, as
// one could otherwise start a server after terminate has stopped the last.
func (s *Server) awaitRestartScript() error {
	deadline := time.Now().Add(stopGrace + startTimeout + killTimeout)
	for {
		pid := readPIDFile(s.path(restartingFile))
		if pid == 0 || !alive(pid) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: the restart script (pid %d) of the redis-server on port %d still runs", pid, s.port)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func fileSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

func sinceOffset(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	data, _ := io.ReadAll(io.NewSectionReader(f, offset, 1<<30))
	return string(data)
}

func lastLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
