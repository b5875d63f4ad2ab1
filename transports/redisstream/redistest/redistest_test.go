package redistest_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartPingStop(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)

	assert.Equal(t, "PONG", srv.Do(t, "PING"))
	assert.NotEqual(t, 6379, srv.Port())
	assert.Equal(t, "127.0.0.1:"+strconv.Itoa(srv.Port()), srv.Addr())
	assert.Equal(t, "redis://"+srv.Addr()+"/0", srv.URL())
	for key, want := range map[string]string{
		"bind":       "127.0.0.1",
		"save":       "",
		"appendonly": "no",
		"daemonize":  "no",
		"port":       strconv.Itoa(srv.Port()),
	} {
		assert.Equal(t, strings.TrimSpace(key+"\n"+want), srv.Do(t, "CONFIG", "GET", key), key)
	}

	srv.Stop()
	_, err := srv.Exec("PING")
	require.ErrorContains(t, err, "Could not connect")
	srv.Stop() // a stopped server stays stopped
}

func TestRestartWithoutAOFForgets(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	port := srv.Port()
	srv.Do(t, "SET", "k", "v")

	srv.Restart()

	assert.Equal(t, port, srv.Port())
	assert.Equal(t, "0", srv.Do(t, "EXISTS", "k"), `save "" and no AOF: nothing survives`)
}

func TestKillThenRestartWithAOF(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithAOF())
	assert.Equal(t, "appendfsync\nalways", srv.Do(t, "CONFIG", "GET", "appendfsync"))
	srv.Do(t, "SET", "k", "v")
	srv.Do(t, "XADD", "events:x", "*", "f", "1")
	before := processID(t, srv)

	srv.Kill()
	_, err := srv.Exec("PING")
	require.ErrorContains(t, err, "Could not connect")
	srv.Restart()

	assert.NotEqual(t, before, processID(t, srv))
	assert.Equal(t, "v", srv.Do(t, "GET", "k"))
	assert.Equal(t, "1", srv.Do(t, "XLEN", "events:x"))
}

func TestRestartCommand(t *testing.T) {
	t.Parallel()
	var last int
	t.Run("restarts", func(t *testing.T) {
		srv := redistest.Start(t, redistest.WithAOF())
		srv.Do(t, "SET", "k", "v")
		pid, run := processID(t, srv), infoField(t, srv, "run_id")

		// The server restarts in place: the same process, started anew.
		for range 2 {
			runRestart(t, srv)
			assert.Equal(t, pid, processID(t, srv))
			next := infoField(t, srv, "run_id")
			assert.NotEqual(t, run, next)
			assert.Equal(t, "v", srv.Do(t, "GET", "k"))
			run = next
		}

		// The Go side still controls the server the script started.
		srv.Kill()
		assert.False(t, running(pid), "pid %d outlived Kill", pid)
		srv.Restart()
		assert.Equal(t, "v", srv.Do(t, "GET", "k"))

		runRestart(t, srv)
		last = processID(t, srv)
		assert.True(t, running(last))
	})
	assert.False(t, running(last), "pid %d outlived the cleanup", last)
}

func TestPassword(t *testing.T) {
	t.Parallel()
	const password = `p@ss w:rd/'"$x`
	srv := redistest.Start(t, redistest.WithPassword(password))

	assert.Equal(t, "PONG", srv.Do(t, "PING"))
	u, err := url.Parse(srv.URL())
	require.NoError(t, err)
	pw, _ := u.User.Password()
	assert.Equal(t, password, pw)
	assert.Equal(t, srv.Addr(), u.Host)

	_, err = srv.Exec("--pass", "wrong", "PING")
	require.ErrorContains(t, err, "WRONGPASS")
	assert.NotContains(t, err.Error(), "wrong", "the password is redacted")

	runRestart(t, srv) // the script authenticates for its PING
	assert.Equal(t, "PONG", srv.Do(t, "PING"))
}

func TestACL(t *testing.T) {
	t.Parallel()
	const writer = "user writer on >wpw ~events:* +@stream +ping"
	as := func(args ...string) []string { return append([]string{"--user", "writer", "--pass", "wpw"}, args...) }

	t.Run("key and command limits", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t, redistest.WithACL(writer))

		assert.Equal(t, "PONG", srv.Do(t, as("PING")...))
		id := srv.Do(t, as("XADD", "events:x", "*", "f", "1")...)
		assert.Regexp(t, `^\d+-\d+$`, id)

		_, err := srv.Exec(as("SET", "other", "1")...)
		require.ErrorContains(t, err, "NOPERM this user has no permissions to run the 'set' command")
		_, err = srv.Exec(as("XADD", "other:x", "*", "f", "1")...)
		require.ErrorContains(t, err, "NOPERM this user has no permissions to access one of the keys")

		assert.Equal(t, "1", srv.Do(t, "XLEN", "events:x"))
		assert.Equal(t, "0", srv.Do(t, "EXISTS", "other", "other:x"))
	})

	t.Run("with a password", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t, redistest.WithPassword("top secret"), redistest.WithACL(writer))

		assert.Equal(t, "PONG", srv.Do(t, "PING"))
		_, err := srv.Exec("--pass", "wrong", "PING")
		require.ErrorContains(t, err, "WRONGPASS")
		assert.Equal(t, "PONG", srv.Do(t, as("PING")...))
	})

	t.Run("default user off", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t, redistest.WithACL("user default off", writer))

		_, err := srv.Exec("PING")
		require.ErrorContains(t, err, "NOAUTH")
		assert.Equal(t, "PONG", srv.Do(t, as("PING")...))
		runRestart(t, srv) // NOAUTH tells the script the server is up
		assert.Equal(t, "PONG", srv.Do(t, as("PING")...))
	})
}

func TestTLS(t *testing.T) {
	t.Parallel()
	files := redistest.NewTLSFiles(t)
	srv := redistest.Start(t, redistest.WithTLS(files))
	port := strconv.Itoa(srv.Port())
	cli := func(args ...string) (string, error) {
		out, err := exec.Command("redis-cli", append([]string{"-p", port, "-e"}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}

	assert.Equal(t, "rediss://"+srv.Addr()+"/0", srv.URL())
	assert.Equal(t, "PONG", srv.Do(t, "PING"))

	out, err := cli("--tls", "--cacert", files.CACert, "--cert", files.ClientCert, "--key", files.ClientKey, "PING")
	require.NoError(t, err, out)
	assert.Equal(t, "PONG", out)

	out, err = cli("--tls", "--cacert", files.CACert, "PING")
	require.NoError(t, err, "a client certificate is optional by default: %s", out)

	out, err = cli("--tls", "--cacert", files.OtherCACert, "--cert", files.ClientCert, "--key", files.ClientKey, "PING")
	require.Error(t, err)
	assert.Contains(t, out, "certificate verify failed")

	out, err = cli("PING")
	require.Error(t, err, "plain text on the TLS port: %s", out)

	assert.Equal(t, "+PONG", goPing(t, srv.Addr(), files.ClientTLSConfig()))
	other := files.ClientTLSConfig()
	other.RootCAs = certPool(t, files.OtherCACert)
	_, err = tls.Dial("tcp", srv.Addr(), other)
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknown)

	runRestart(t, srv)
	assert.Equal(t, "PONG", srv.Do(t, "PING"))

	t.Run("client certificate required", func(t *testing.T) {
		t.Parallel()
		files := redistest.NewTLSFiles(t)
		files.RequireClientCert = true
		srv := redistest.Start(t, redistest.WithTLS(files))

		assert.Equal(t, "PONG", srv.Do(t, "PING"))
		out, err := exec.Command("redis-cli", "-p", strconv.Itoa(srv.Port()), "-e",
			"--tls", "--cacert", files.CACert, "PING").CombinedOutput()
		require.Error(t, err, "no client certificate: %s", out)
	})
}

func TestCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, 3)

	addrs := c.Addrs()
	require.Len(t, addrs, 3)
	assert.Len(t, map[string]bool{addrs[0]: true, addrs[1]: true, addrs[2]: true}, 3)
	for _, node := range c.Nodes() {
		info := node.Do(t, "CLUSTER", "INFO")
		assert.Contains(t, info, "cluster_state:ok")
		assert.Contains(t, info, "cluster_slots_assigned:16384")
		assert.Contains(t, info, "cluster_known_nodes:3")
	}

	// Keys in slots all over the ring: redis-cli -c follows the MOVED replies.
	keys := make([]string, 30)
	slots := make(map[string]bool)
	for i := range keys {
		keys[i] = fmt.Sprintf("events:%d", i)
		slots[c.Do(t, "CLUSTER", "KEYSLOT", keys[i])] = true
		c.Do(t, "SET", keys[i], strconv.Itoa(i))
	}
	assert.Greater(t, len(slots), 1)
	for i, key := range keys {
		assert.Equal(t, strconv.Itoa(i), c.Do(t, "GET", key))
	}
	moved := 0
	for _, node := range c.Nodes() {
		assert.NotEqual(t, "0", node.Do(t, "DBSIZE"), "every node holds some of the keys")
		for _, key := range keys {
			if _, err := node.Exec("GET", key); err != nil {
				assert.ErrorContains(t, err, "MOVED")
				moved++
			}
		}
	}
	assert.Equal(t, 2*len(keys), moved, "each key lives on exactly one node")
}

func TestRequire(t *testing.T) {
	assert.Equal(t, "redis-server", filepath.Base(redistest.Require(t)))

	empty := t.TempDir()
	serverOnly := t.TempDir()
	server, err := exec.LookPath("redis-server")
	require.NoError(t, err)
	require.NoError(t, os.Symlink(server, filepath.Join(serverOnly, "redis-server")))

	for _, tc := range []struct {
		name, path, ci string
		start          bool
		skipped        bool
		message        string
	}{
		{name: "missing", path: empty, skipped: true, message: "redis-server not found"},
		{name: "missing in CI", path: empty, ci: "true", message: "redis-server not found; CI must install it"},
		{name: "CI=1", path: empty, ci: "1", message: "redis-server not found; CI must install it"},
		{name: "CI=false", path: empty, ci: "false", skipped: true, message: "redis-server not found"},
		{name: "redis-cli missing in CI", path: serverOnly, ci: "true", message: "redis-cli not found; CI must install it"},
		{name: "Start skips", path: empty, start: true, skipped: true, message: "redis-server not found"},
		{name: "Start fails in CI", path: empty, ci: "true", start: true, message: "CI must install it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", tc.path)
			t.Setenv("CI", tc.ci)
			r := runTB(t, func(tb testing.TB) {
				if tc.start {
					redistest.Start(tb)
				} else {
					redistest.Require(tb)
				}
			})

			assert.Equal(t, tc.skipped, r.skipped, "skipped")
			assert.Equal(t, !tc.skipped, r.failed, "failed")
			assert.Contains(t, r.message, tc.message)
		})
	}
}

// recorder is a testing.TB that records a skip or a fatal failure instead of
// reporting it.
type recorder struct {
	testing.TB
	skipped, failed bool
	message         string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped, r.message = true, fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) { r.Skip(fmt.Sprintf(format, args...)) }
func (r *recorder) Fatal(args ...any) {
	r.failed, r.message = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }

func runTB(t *testing.T, f func(testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// runRestart runs srv's RestartCommand as Watermill's suite does.
func runRestart(t *testing.T, srv *redistest.Server) {
	t.Helper()
	command := srv.RestartCommand()
	start := time.Now()
	out, err := exec.Command(command[0], command[1:]...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("%s (%v)", strings.TrimSpace(string(out)), time.Since(start).Round(time.Millisecond))
}

func processID(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	pid, err := strconv.Atoi(infoField(t, srv, "process_id"))
	require.NoError(t, err)
	return pid
}

func infoField(t *testing.T, srv *redistest.Server, name string) string {
	t.Helper()
	for _, line := range strings.Split(srv.Do(t, "INFO", "server"), "\n") {
		if value, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return value
		}
	}
	t.Fatalf("no %s in INFO server", name)
	return ""
}

// running reports whether pid is a live process; a zombie is not.
func running(pid int) bool {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	return err == nil && !strings.Contains(string(status), "State:\tZ")
}

func goPing(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(conn, "PING\r\n")
	require.NoError(t, err)
	line, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSpace(line)
}

func certPool(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(data))
	return pool
}

var _ net.Conn = (*tls.Conn)(nil)
