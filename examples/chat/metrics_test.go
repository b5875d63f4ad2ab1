package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What the chat example does with metrics: it serves, at /metrics, the
// registry its bus registers on, with the Go runtime's and the process's
// collectors, and times deliveries on the memory transport unless its file
// says otherwise. That the bus's families match docs/metrics.md is checked
// by the tests of docs/, on buses built directly.

// chatUnderTest is the chat example running for one test.
type chatUnderTest struct {
	base   string
	client *http.Client
	logs   *syncBuffer
}

// startChat runs the example as main does, with args, on a free port, until
// the test ends.
func startChat(t *testing.T, args ...string) *chatUnderTest {
	t.Helper()
	env := map[string]string{"ADDR": "127.0.0.1:0"}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, logs, ready) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("run did not return after its context ended")
		}
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	c := &chatUnderTest{client: &http.Client{Timeout: 5 * time.Second}, logs: logs}
	t.Cleanup(c.client.CloseIdleConnections)
	select {
	case addr := <-ready:
		c.base = "http://" + addr
	case err := <-done:
		done <- err
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	return c
}

// publishBoth publishes a chat_message and a typing event through the API.
func (c *chatUnderTest) publishBoth(t *testing.T, requestID string) {
	t.Helper()
	for _, p := range []struct{ path, body string }{
		{"/api/v1/messages", `{"request_id":"` + requestID + `","content":"hello"}`},
		{"/api/v1/requests/" + requestID + "/typing", ``},
	} {
		resp, err := c.client.Post(c.base+p.path, "application/json", strings.NewReader(p.body))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode, p.path)
	}
}

// scrape reads /metrics over HTTP and parses it.
func (c *chatUnderTest) scrape() (string, map[string]*dto.MetricFamily, error) {
	resp, err := c.client.Get(c.base + "/metrics")
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	return string(body), families, err
}

// value is the value of the series of f with exactly labels (a histogram's:
// its count), and whether there is one.
func value(f *dto.MetricFamily, labels map[string]string) (float64, bool) {
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		if !maps.Equal(have, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// published is the count of events of type typ the memory transport took.
func published(f map[string]*dto.MetricFamily, typ string) float64 {
	n, _ := value(f["switchyard_events_published_total"], map[string]string{"transport": "memory", "event_type": typ, "outcome": "ok"})
	return n
}

// TestMetricsEndpoint runs the example as `make run` does (memory,
// coalescing of typing on), publishes through its API and reads /metrics:
// the bus's families with the example's series (one transport, two event
// types: 3, 3 and 6, as docs/metrics.md says), deliveries timed on the
// memory transport, the runtime's collectors, and nothing promlint (what
// `promtool check metrics` runs) objects to.
func TestMetricsEndpoint(t *testing.T) {
	chat := startChat(t)
	chat.publishBoth(t, "r1")
	var text string
	var families map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		var err error
		text, families, err = chat.scrape()
		if err != nil {
			return false
		}
		for _, typ := range []string{EventChatMessage, EventTyping} {
			delivered, _ := value(families["event_delivery_latency_seconds"], map[string]string{"transport": "memory", "event_type": typ})
			if published(families, typ) < 1 || delivered < 1 {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "the hub got both events, and their delivery was timed")

	for _, typ := range []string{EventChatMessage, EventTyping} {
		assert.Equal(t, 1.0, published(families, typ), typ)
	}
	assert.Len(t, families["event_publish_duration_seconds"].GetMetric(), 3, "one transport × (chat_message, typing, other)")
	assert.Len(t, families["event_delivery_latency_seconds"].GetMetric(), 3, "one transport × (chat_message, typing, other)")
	assert.Len(t, families["switchyard_events_published_total"].GetMetric(), 6, "one transport × (chat_message, typing, other) × (ok, error)")
	n, _ := value(families["switchyard_ingress_accepted_total"], map[string]string{})
	assert.Equal(t, 2.0, n)
	assert.Contains(t, families, "go_goroutines", "the Go runtime's collector")

	problems, err := promlint.New(strings.NewReader(text)).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems, "promlint")
}

// TestMetricsDeliveryLatencyOff: the file turns off what the example turns
// on, the timing of in-process deliveries; the rest stays.
func TestMetricsDeliveryLatencyOff(t *testing.T) {
	config := filepath.Join(t.TempDir(), "chat.yaml")
	require.NoError(t, os.WriteFile(config, []byte("metrics: {in_process_delivery_latency: false}\n"), 0o600))
	chat := startChat(t, "-config", config)
	chat.publishBoth(t, "r1")
	require.Eventually(t, func() bool {
		l := chat.logs.String()
		return strings.Contains(l, "event_type=chat_message") && strings.Contains(l, "event_type=typing")
	}, 10*time.Second, 5*time.Millisecond, "the hub logs both deliveries")
	_, families, err := chat.scrape()
	require.NoError(t, err)
	assert.NotContains(t, families, "event_delivery_latency_seconds")
	assert.Contains(t, families, "event_publish_duration_seconds")
}
