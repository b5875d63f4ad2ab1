package redistest

import (
	"errors"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Start retries on another port when redis-server cannot bind the one it
// was given; these tests check that launch reports exactly that case, even
// when whatever holds the port answers PING as a Redis would.
func TestLaunchReportsTakenPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []Option
		bus  bool
	}{
		{name: "port"},
		{name: "TLS port", opts: []Option{WithTLS(NewTLSFiles(t))}},
		{name: "cluster bus port", opts: []Option{withCluster()}, bus: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			taken := fakeRedis(t)
			s := newServer(t, tc.opts)
			t.Cleanup(s.cleanup)
			s.pickPorts()
			if tc.bus {
				s.busPort = taken
			} else {
				s.port = taken
			}

			err := s.launch()

			require.ErrorIs(t, err, errAddrInUse)
			require.ErrorContains(t, err, "Address already in use")
		})
	}
}

// fakeRedis listens on a free port and answers +PONG to anything.
func fakeRedis(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				_, _ = conn.Write([]byte("+PONG\r\n"))
				conn.Close()
			}
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return l.Addr().(*net.TCPAddr).Port
}

// A test may end while its RestartCommand still runs, as Watermill's suite
// runs the command in a goroutine: no server outlives the cleanup, as the
// restart is the same process's.
func TestNoServerOutlivesARestartScript(t *testing.T) {
	t.Parallel()
	var script *exec.Cmd
	var addr string
	t.Run("ends mid-restart", func(t *testing.T) {
		s := Start(t)
		addr = s.Addr()
		command := s.RestartCommand()
		script = exec.Command(command[0], command[1:]...)
		require.NoError(t, script.Start())
	})
	_ = script.Wait() // it fails when the server is gone before it restarts
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
	}
	require.Error(t, err, "a redis-server outlived the cleanup on %s", addr)
}
