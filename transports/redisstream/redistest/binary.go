package redistest

import (
	"os"
	"os/exec"
	"strconv"
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
	var paths [2]string
	for i, name := range []string{"redis-server", "redis-cli"} {
		path, err := exec.LookPath(name)
		if err != nil && inCI() {
			t.Fatalf("%s not found; CI must install it (%v)", name, err)
		}
		if err != nil {
			t.Skipf("%s not found; skipping (%v)", name, err)
		}
		paths[i] = path
	}
	return paths[0], paths[1]
}

// inCI reports whether the environment says it is a CI run: CI=true, as
// GitHub Actions, GitLab and most others set it, or any other true value that
// strconv.ParseBool accepts (1, TRUE…).
func inCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}
