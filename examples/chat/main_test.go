package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/bustest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestService runs the example as `make run` does (no file, memory
// transport) on a free port and talks to it over HTTP.
func TestService(t *testing.T) {
	env := map[string]string{"ADDR": "127.0.0.1:0"}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, logs, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	base := "http://" + addr
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	post := func(path, body string) *http.Response {
		t.Helper()
		resp, err := client.Post(base+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp
	}
	assert.Equal(t, http.StatusAccepted, post("/api/v1/messages", `{"request_id":"r1","content":"hello"}`).StatusCode)
	assert.Equal(t, http.StatusAccepted, post("/api/v1/requests/r1/typing", ``).StatusCode)
	assert.Equal(t, http.StatusBadRequest, post("/api/v1/messages", `{"request_id":"r1"}`).StatusCode)
	assert.Equal(t, http.StatusBadRequest, post("/api/v1/messages", `not json`).StatusCode)

	require.Eventually(t, func() bool {
		l := logs.String()
		return strings.Contains(l, "event_type=chat_message") && strings.Contains(l, "event_type=typing")
	}, 5*time.Second, 5*time.Millisecond, "the hub logs both deliveries")
	assert.Contains(t, logs.String(), "transport=memory")

	resp, err := client.Get(base + "/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = client.Get(base + "/")
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "GET / is the page")
	assert.Contains(t, string(page), "<title>switchyard chat</title>")

	resp, err = client.Get(base + "/metrics")
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Contains(t, families, "switchyard_ingress_accepted_total")
	assert.EqualValues(t, 2, families["switchyard_ingress_accepted_total"].GetMetric()[0].GetCounter().GetValue())

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

// TestHandlers uses bustest in place of the production bus: the API
// publishes what the hub expects.
func TestHandlers(t *testing.T) {
	b := bustest.New(t)
	srv := newServer(b.Bus, nil)

	req, _ := http.NewRequest(http.MethodPost, "/api/v1/requests/conv-7/typing", nil)
	rec := newRecorder()
	srv.ServeHTTP(rec, req)
	require.Equal(t, http.StatusAccepted, rec.status)

	recs := b.WaitPublishedOfType(t, Topic, EventTyping, 1)
	assert.Equal(t, "conv-7", recs[0].Key)
	assert.Contains(t, string(recs[0].Payload), `"request_id":"conv-7"`)
	assert.NotEmpty(t, recs[0].Metadata[bus.MetaPublishedAt])
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder                    { return &recorder{header: http.Header{}} }
func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

// TestAdminAndReload runs the example with a configuration file, reads the
// admin endpoint, changes the coalescing window in the file and sees it
// applied without a restart.
func TestAdminAndReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "chat.yaml")
	require.NoError(t, os.WriteFile(path, []byte("coalescing: {window: 100ms}\n"), 0o600))
	env := map[string]string{"ADDR": "127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-config", path}, func(k string) string { return env[k] }, io.Discard, ready)
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
	window := func() string {
		t.Helper()
		resp, err := client.Get("http://" + addr + "/admin/switchyard")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var state struct {
			Config struct {
				Coalescing struct {
					Window string `json:"window"`
				} `json:"coalescing"`
			} `json:"config"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&state))
		return state.Config.Coalescing.Window
	}
	assert.Equal(t, "100ms", window())

	require.NoError(t, os.WriteFile(path, []byte("coalescing: {window: 250ms}\n"), 0o600))
	require.Eventually(t, func() bool { return window() == "250ms" }, 5*time.Second, 10*time.Millisecond)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}
