package redistest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Require returns the path of redis-server, or ends the test when
// redis-server or redis-cli (which the helpers also need) is missing: a skip
// on a developer's machine, a failure when the environment variable CI is
// true, so that a CI image without Redis cannot pass by skipping every
// Redis test.
func Require(t testing.TB) string {
	t.Helper()
	server, _ := binaries(t)
	return server
}

func binaries(t testing.TB) (server, cli string) {
	t.Helper()
	return lookPath(t, "redis-server"), lookPath(t, "redis-cli")
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); err != nil && ci {
		t.Fatalf("%s not found; CI must install it (%v)", name, err)
	} else if err != nil {
		t.Skipf("%s not found; skipping (%v)", name, err)
	}
	return path
}

// debugOption reports whether redis-server at bin has enable-debug-command,
// without which Redis 7 and later refuse DEBUG RESTART; 6.2 knows no such
// option.
func debugOption(bin string) bool {
	out, err := exec.Command(bin, "--version").Output() // "Redis server v=7.0.15 sha=…"
	return err == nil && !strings.Contains(string(out), " v=6.")
}
