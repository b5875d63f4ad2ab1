package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestTypingStormOnRedis is the original service's manual check: ten
// concurrent POST /typing for one request make one or two entries in the
// stream events:chat. The service runs on its Redis configuration
// (redis.yaml) against a redis-server of its own, coalescing from the
// original environment variables.
func TestTypingStormOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	yaml, err := os.ReadFile("redis.yaml")
	require.NoError(t, err)
	const fileURL = "redis://127.0.0.1:6380/0"
	require.Contains(t, string(yaml), fileURL)
	config := filepath.Join(t.TempDir(), "redis.yaml")
	require.NoError(t, os.WriteFile(config, []byte(strings.Replace(string(yaml), fileURL, srv.URL(), 1)), 0o600))
	// A window wide enough for ten requests on a slow machine under -race.
	t.Setenv("EVENT_COALESCING_ENABLED", "true")
	t.Setenv("EVENT_COALESCING_WINDOW_MS", "1000")

	env := map[string]string{"ADDR": "127.0.0.1:0"}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-config", config}, func(k string) string { return env[k] }, logs, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	const n = 10
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		ids   = map[string]bool{}
		start = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			<-start
			resp, err := client.Post("http://"+addr+"/api/v1/requests/r1/typing", "application/json", nil)
			if !assert.NoError(t, err) {
				return
			}
			defer resp.Body.Close()
			var body struct{ ID string }
			assert.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			assert.Equal(t, http.StatusAccepted, resp.StatusCode)
			mu.Lock()
			ids[body.ID] = true
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	require.Len(t, ids, n, "ten events accepted")

	// The leading event at once, the latest at the window's end; the hub
	// reads both from Redis.
	require.Eventually(t, func() bool {
		return srv.Do(t, "XLEN", Topic) == "2" && strings.Count(logs.String(), "event_type=typing") == 2
	}, 10*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	xlen := srv.Do(t, "XLEN", Topic)
	assert.Contains(t, []string{"1", "2"}, xlen, "XLEN %s", Topic)

	entries := streamUUIDs(srv.Do(t, "XRANGE", Topic, "-", "+"))
	require.Len(t, entries, 2)
	assert.NotEqual(t, entries[0], entries[1], "the trailing entry is a later event than the leading one")
	for _, id := range entries {
		assert.True(t, ids[id], "entry %s is one of the events accepted", id)
	}
	assert.Equal(t, 2, strings.Count(logs.String(), "event_type=typing"), "nothing more at Close")
}

// streamUUIDs reads the message UUIDs out of redis-cli's XRANGE output, in
// stream order: each follows its field name on a line of its own.
func streamUUIDs(xrange string) []string {
	var uuids []string
	lines := strings.Split(xrange, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "_watermill_message_uuid" && i+1 < len(lines) {
			uuids = append(uuids, strings.TrimSpace(lines[i+1]))
		}
	}
	return uuids
}
