package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestMakeDemoRedis runs `make demo-redis` as a user does, on free ports
// and a copy of rollout.yaml, then `make redis-stop`: ten rapid typing
// events make one or two entries in the stream (coalescing), and once the
// master switch is off in the file the next messages go over HTTP.
func TestMakeDemoRedis(t *testing.T) {
	redistest.Require(t)
	makePath, err := exec.LookPath("make")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("make not found")
		}
		t.Skip("make not found")
	}
	goPath, err := exec.LookPath("go")
	require.NoError(t, err, "the make target runs go")

	dir := t.TempDir()
	redisPort, hubPort, port := freePort(t), freePort(t), freePort(t)
	configPath := filepath.Join(dir, "rollout.yaml")
	shipped, err := os.ReadFile("rollout.yaml")
	require.NoError(t, err)
	writeConfig(t, configPath, string(shipped))
	hub := "127.0.0.1:" + strconv.Itoa(hubPort)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	makeVars := []string{
		"DEMO_REDIS_PORT=" + strconv.Itoa(redisPort),
		"DEMO_REDIS_DIR=" + filepath.Join(dir, "redis"),
		"DEMO_CONFIG=" + configPath,
		"GO=" + goPath,
	}
	env := append(os.Environ(),
		"ADDR="+addr,
		// The file's hub address, moved to a free port.
		"SWITCHYARD_TRANSPORTS__HTTP__URL=http://"+hub+"/api/v1/events/{topic}",
		"SWITCHYARD_TRANSPORTS__HTTP__RECEIVER__LISTEN="+hub,
		// A window wide enough for ten requests on a slow machine.
		"EVENT_COALESCING_WINDOW_MS=1000",
	)

	logs := &syncBuffer{}
	demo := exec.Command(makePath, append([]string{"-C", "../..", "--no-print-directory", "demo-redis"}, makeVars...)...)
	demo.Env, demo.Stdout, demo.Stderr = env, logs, logs
	// A group of its own: make, go run and the demo stop together, as
	// they do on Ctrl-C.
	demo.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, demo.Start())
	exited := make(chan error, 1)
	go func() { exited <- demo.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-demo.Process.Pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-demo.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Error("the demo did not stop on SIGINT")
		}
		stop := exec.Command(makePath, append([]string{"-C", "../..", "--no-print-directory", "redis-stop"}, makeVars...)...)
		out, err := stop.CombinedOutput()
		assert.NoError(t, err, "make redis-stop: %s", out)
		assert.Contains(t, string(out), "stopped")
		_, err = os.Stat(filepath.Join(dir, "redis", "redis.pid"))
		assert.True(t, os.IsNotExist(err), "make redis-stop removes the pid file")
		if t.Failed() {
			t.Logf("make demo-redis said:\n%s", logs.String())
		}
	})
	// go run builds the demo first.
	require.Eventually(t, func() bool {
		select {
		case err := <-exited:
			exited <- err
			return true
		default:
		}
		return strings.Contains(logs.String(), "chat service listening")
	}, 4*time.Minute, 50*time.Millisecond)
	require.Contains(t, logs.String(), "chat service listening", "make demo-redis:\n%s", logs.String())
	require.Contains(t, logs.String(), "demo redis-server on 127.0.0.1:"+strconv.Itoa(redisPort))

	redisCLI := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(redisPort)}, args...)...).Output()
		require.NoError(t, err)
		return strings.TrimSpace(string(out))
	}
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	post := func(path, body string) string {
		resp, err := client.Post("http://"+addr+path, "application/json", strings.NewReader(body))
		if !assert.NoError(t, err) {
			return ""
		}
		defer resp.Body.Close()
		var accepted struct{ ID string }
		assert.NoError(t, json.NewDecoder(resp.Body).Decode(&accepted))
		assert.Equal(t, http.StatusAccepted, resp.StatusCode)
		return accepted.ID
	}

	// Ten rapid typing events: one or two entries in events:chat.
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 10 {
		wg.Go(func() {
			<-start
			post("/api/v1/requests/demo/typing", `{"user":"Ada"}`)
		})
	}
	close(start)
	wg.Wait()
	require.Eventually(t, func() bool {
		return strings.Count(logs.String(), "event_type=typing") == 2
	}, 10*time.Second, 10*time.Millisecond, "the leading and the trailing typing event reach the hub")
	xlen := redisCLI("XLEN", Topic)
	assert.Contains(t, []string{"1", "2"}, xlen, "XLEN %s after ten typing events", Topic)
	assert.Equal(t, 2, countLines(logs.String(), "event_type=typing", "transport=redis"), "both over Redis")

	// The master switch off in the file: the next messages go over HTTP.
	const on, off = "enabled: true      # the master switch", "enabled: false     # the master switch"
	require.Contains(t, string(shipped), on)
	writeConfig(t, configPath, strings.Replace(string(shipped), on, off, 1))
	require.Eventually(t, func() bool {
		resp, err := client.Get("http://" + addr + "/api/v1/routing")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st routingState
		return json.NewDecoder(resp.Body).Decode(&st) == nil && !st.Enabled && st.Reloads == 1
	}, 10*time.Second, 20*time.Millisecond, "the demo reloads the file")
	ids := []string{
		post("/api/v1/messages", `{"request_id":"demo","content":"one","user":"Ada"}`),
		post("/api/v1/messages", `{"request_id":"demo","content":"two","user":"Ada"}`),
	}
	require.Eventually(t, func() bool {
		l := logs.String()
		for _, id := range ids {
			if !strings.Contains(l, "transport=http uuid="+id) {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "the hub gets both messages over HTTP")
	assert.Equal(t, xlen, redisCLI("XLEN", Topic), "nothing more in the stream")
}

// countLines counts the lines of text that hold every one of words.
func countLines(text string, words ...string) int {
	n := 0
	for line := range strings.Lines(text) {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			n++
		}
	}
	return n
}
