package redistest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const cliTimeout = 30 * time.Second

// Do runs a command with redis-cli against the server, as the default user
// with the WithPassword password (in REDISCLI_AUTH) and over TLS WithTLS, and returns its raw
// output, trimmed. An error reply fails t; see Exec to examine one.
//
//	srv.Do(t, "XLEN", "events:chat") // "3"
func (s *Server) Do(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Exec is Do that returns a failure instead of reporting it: an error reply
// (its text, such as "NOPERM this user has no permissions…", is the error's
// text) or a failure to connect. args may begin with redis-cli options,
// which override the helpers' own: "--user", "writer", "--pass", "pw", "XADD", ….
func (s *Server) Exec(args ...string) (string, error) {
	return runCLI(s.cli, s.cliArgs(), s.cliEnv(), args)
}

// cliArgs connects redis-cli to the server; -e makes error replies fail it.
func (s *Server) cliArgs() []string {
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-e", "--no-auth-warning"}
	if f := s.cfg.tls; f != nil {
		args = append(args, "--tls", "--cacert", f.CACert, "--cert", f.ClientCert, "--key", f.ClientKey)
	}
	return args
}

// cliEnv passes the password in the environment, where ps does not show it;
// a -a or --pass option still overrides it.
func (s *Server) cliEnv() []string {
	if s.cfg.password == "" {
		return nil
	}
	return []string{"REDISCLI_AUTH=" + s.cfg.password}
}

// pingArgs are cliArgs without -e: an error reply such as NOAUTH (the
// default user may be off) also proves that the server is up; only failing
// to connect does not.
func (s *Server) pingArgs() []string {
	return slices.DeleteFunc(s.cliArgs(), func(a string) bool { return a == "-e" })
}

func runCLI(cli string, conn, env, args []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, cli, append(slices.Clone(conn), args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := strings.TrimSpace(stdout.String())
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return out, fmt.Errorf("redistest: redis-cli %s: %s", redact(args), msg)
	}
	return out, nil
}

// redact hides the values of redis-cli's password options.
func redact(args []string) string {
	shown := slices.Clone(args)
	for i := 0; i+1 < len(shown); i++ {
		if shown[i] == "-a" || shown[i] == "--pass" {
			shown[i+1] = "***"
		}
	}
	return strings.Join(shown, " ")
}

// RestartCommand returns a command that restarts the server from outside the
// test: /bin/sh and a script in the server's directory that stops the
// redis-server named by its pid file (SIGTERM, SIGKILL after 10 s), starts
// it again daemonized on the same port with the same directory and waits
// until it answers PING. It is meant for Watermill's
// tests.Features.RestartServiceCommand, which runs it in a subprocess in the
// middle of a test; use WithAOF for the streams and consumer groups to
// survive it. Stop, Kill, Restart and the cleanup keep working afterwards,
// since they too find the server through its pid file.
func (s *Server) RestartCommand() []string {
	s.t.Helper()
	path := s.path(script)
	if err := os.WriteFile(path, []byte(s.restartScript()), 0o700); err != nil {
		s.t.Fatal(err)
	}
	return []string{"/bin/sh", path}
}

func (s *Server) restartScript() string {
	quote := func(args ...string) string {
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'"'"'`) + "'"
		}
		return strings.Join(quoted, " ")
	}
	cliEnv := ""
	if s.cfg.password != "" {
		cliEnv = "REDISCLI_AUTH=" + quote(s.cfg.password) + " "
	}
	r := strings.NewReplacer(
		"@NAME@", strings.ReplaceAll(s.t.Name(), "\n", " "),
		"@ADDR@", s.Addr(),
		"@DIR@", quote(s.realDir),
		"@PIDFILE@", quote(s.path(pidFile)),
		"@RESTARTING@", quote(s.path(restartingFile)),
		"@LOG@", quote(s.path(logFile)),
		"@STDIO@", quote(s.path(stdioFile)),
		"@READY@", quote(readyMarker),
		"@CLI@", cliEnv+quote(append([]string{s.cli}, s.pingArgs()...)...),
		"@SERVER@", quote(append(append([]string{s.bin}, s.serverArgs()...), "--daemonize", "yes")...),
	)
	return r.Replace(restartTemplate)
}

const restartTemplate = `#!/bin/sh
# Written by redistest for @NAME@: restarts its redis-server on @ADDR@.
set -u
dir=@DIR@
pidfile=@PIDFILE@
log=@LOG@
# The Go side waits while this file names a live process before it stops
# the server, so that a test ending mid-restart cannot leave one behind.
restarting=@RESTARTING@
echo $$ >"$restarting"
trap 'rm -f "$restarting"' EXIT

alive() {
	if [ -r /proc/self/status ]; then
		[ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*[ZX]' "/proc/$1/status" 2>/dev/null
	else
		kill -0 "$1" 2>/dev/null
	fi
}
# ours: the pid runs in the server's directory, so a stale pid file never
# makes the script signal an unrelated process.
ours() {
	[ ! -r /proc/self/status ] || [ "$(readlink "/proc/$1/cwd" 2>/dev/null)" = "$dir" ]
}
readies() {
	n=$(grep -c @READY@ "$log" 2>/dev/null)
	echo "${n:-0}"
}

pid=$(cat "$pidfile" 2>/dev/null || true)
if [ -n "$pid" ] && alive "$pid" && ours "$pid"; then
	kill -TERM "$pid"
	i=0
	while alive "$pid"; do
		i=$((i + 1))
		if [ "$i" -eq 1000 ]; then kill -KILL "$pid" 2>/dev/null; fi
		if [ "$i" -gt 1500 ]; then
			echo "redistest: redis-server (pid $pid) on @ADDR@ did not exit" >&2
			exit 1
		fi
		sleep 0.01
	done
fi
rm -f "$pidfile"

before=$(readies)
if ! @SERVER@ </dev/null >>@STDIO@ 2>&1; then
	echo "redistest: redis-server on @ADDR@ failed to start:" >&2
	tail -n 20 @STDIO@ "$log" >&2
	exit 1
fi
i=0
until [ "$(readies)" -gt "$before" ] && out=$(@CLI@ PING 2>&1) && ! echo "$out" | grep -q -e LOADING -e BUSY; do
	i=$((i + 1))
	if [ "$i" -gt 1000 ]; then
		echo "redistest: redis-server on @ADDR@ did not answer PING" >&2
		tail -n 20 "$log" >&2
		exit 1
	fi
	sleep 0.01
done
echo "redistest: restarted redis-server on @ADDR@ (pid $(cat "$pidfile"))"
`
