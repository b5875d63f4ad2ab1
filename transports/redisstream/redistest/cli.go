package redistest

import (
	"bytes"
	"cmp"
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
	return s.runCLI([]string{"-e"}, args...)
}

// cliArgs connects redis-cli to the server, then come extra options: -e
// makes error replies fail it.
func (s *Server) cliArgs(extra ...string) []string {
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "--no-auth-warning"}
	if f := s.cfg.tls; f != nil {
		args = append(args, "--tls", "--cacert", f.CACert, "--cert", f.ClientCert, "--key", f.ClientKey)
	}
	return append(args, extra...)
}

// runCLI runs redis-cli with the options that connect it, opts, then args.
// The password is passed in the environment, where ps does not show it; a
// -a or --pass option still overrides it.
func (s *Server) runCLI(opts []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.cli, append(s.cliArgs(opts...), args...)...)
	cmd.Env = os.Environ()
	if s.cfg.password != "" {
		cmd.Env = append(cmd.Env, "REDISCLI_AUTH="+s.cfg.password)
	}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := strings.TrimSpace(stdout.String())
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		msg = cmp.Or(msg, err.Error())
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
// test: /bin/sh and a script in the server's directory that has the server
// restart in place (DEBUG RESTART: it shuts down as on SIGTERM, then the same
// process starts again with the same arguments, on the same port with the
// same directory) and waits until it answers PING. It is meant for
// Watermill's tests.Features.RestartServiceCommand, which runs it in a
// subprocess in the middle of a test; use WithAOF for the streams and
// consumer groups to survive it. The process being the same, Stop, Kill,
// Restart and the cleanup keep working afterwards.
func (s *Server) RestartCommand() []string {
	s.t.Helper()
	quote := func(args ...string) string {
		for i, a := range args {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'"'"'`) + "'"
		}
		return strings.Join(args, " ")
	}
	cli := append([]string{s.cli}, s.cliArgs()...)
	auth := s.cfg.password
	if s.admin != "" {
		cli, auth = append(cli, "--user", adminUser), s.admin
	}
	run := quote(cli...)
	if auth != "" { // in the environment, where ps does not show it
		run = "REDISCLI_AUTH=" + quote(auth) + " " + run
	}
	script := strings.NewReplacer("@NAME@", strings.ReplaceAll(s.t.Name(), "\n", " "), "@ADDR@", s.Addr(),
		"@CLI@", run).Replace(restartScript)
	path := s.path("restart.sh")
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		s.t.Fatal(err)
	}
	return []string{"/bin/sh", path}
}

// adminUser is the ACL user RestartCommand runs DEBUG RESTART as WithACL,
// where the default user may be off.
const adminUser = "redistest"

const restartScript = `#!/bin/sh
# Written by redistest for @NAME@: restarts its redis-server on @ADDR@.
fail() { echo "redistest: redis-server on @ADDR@: $1" >&2; exit 1; }
# The server closes the connection as it restarts; a reply is a refusal.
out=$(@CLI@ DEBUG RESTART 2>&1)
case "$out" in *"closed the connection"*) ;; *) fail "DEBUG RESTART: $out" ;; esac
i=0
until out=$(@CLI@ PING 2>&1) && [ "$out" = PONG ]; do
	i=$((i + 1))
	[ "$i" -le 1000 ] || fail "no PONG after DEBUG RESTART: $out"
	sleep 0.01
done
echo "redistest: restarted redis-server on @ADDR@"
`
