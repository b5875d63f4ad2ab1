package redistest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// ErrNotFound is returned by [RedisServerPath] when redis-server or
// redis-cli is not on the PATH.
var ErrNotFound = errors.New("redistest: redis binary not found")

// RedisServerPath returns the path of the redis-server binary found on the
// PATH. It also checks that redis-cli is there, because the helpers need both;
// when either is missing the error wraps [ErrNotFound] and names it.
func RedisServerPath() (string, error) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("%w: redis-server: %w", ErrNotFound, err)
	}
	if _, err := redisCLIPath(); err != nil {
		return "", err
	}
	return server, nil
}

func redisCLIPath() (string, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return "", fmt.Errorf("%w: redis-cli: %w", ErrNotFound, err)
	}
	return cli, nil
}

// Require returns the path of redis-server, or ends the test when it is
// missing: a skip on a developer's machine, a failure when the environment
// variable CI is true, so that a CI image without Redis cannot pass by
// skipping every Redis test.
func Require(t testing.TB) string {
	t.Helper()
	path, err := RedisServerPath()
	if err == nil {
		return path
	}
	name := "redis-server"
	if _, serverErr := exec.LookPath("redis-server"); serverErr == nil {
		name = "redis-cli"
	}
	if inCI() {
		t.Fatalf("%s not found; CI must install it (%v)", name, err)
	}
	t.Skipf("%s not found; skipping (%v)", name, err)
	return ""
}

// inCI reports whether the environment says it is a CI run: CI=true, as
// GitHub Actions, GitLab and most others set it, or any other true value that
// strconv.ParseBool accepts (1, TRUE…).
func inCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}
