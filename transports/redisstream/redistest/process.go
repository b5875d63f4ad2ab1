package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The helpers find a server through its pid file rather than through the
// *os.Process that started it, because RestartCommand's script replaces the
// process behind the Go side's back. A pid read from the file is trusted
// only if that process runs in the server's directory, so a stale pid file
// can never make the helpers signal an unrelated process, and a zombie
// (the restarted server is an orphan that nobody may reap) counts as gone.

var haveProcFS = func() bool {
	_, err := os.Stat("/proc/self/status")
	return err == nil
}()

// readPIDFile returns the pid in path, or 0 when there is none.
func readPIDFile(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// alive reports whether pid is a running process (not a zombie).
func alive(pid int) bool {
	if !haveProcFS {
		p, err := os.FindProcess(pid)
		if err != nil {
			return false
		}
		defer p.Release()
		err = p.Signal(syscall.Signal(0))
		return err == nil || errors.Is(err, syscall.EPERM)
	}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		if state, ok := bytes.CutPrefix(lines.Bytes(), []byte("State:")); ok {
			state = bytes.TrimSpace(state)
			return len(state) > 0 && state[0] != 'Z' && state[0] != 'X'
		}
	}
	return true
}

// runsIn reports whether pid's working directory is dir (symlinks resolved).
// Without /proc it cannot tell and trusts the pid file, which the helpers
// remove whenever they see its process end.
func runsIn(pid int, dir string) bool {
	if !haveProcFS {
		return true
	}
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	return err == nil && cwd == dir
}

func signalPID(pid int, sig os.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	defer p.Release()
	err = p.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}
