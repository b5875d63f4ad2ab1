package main

import (
	"bufio"
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPageIsServed: GET / is the page, with its assets, and the page loads
// nothing from outside the service.
func TestPageIsServed(t *testing.T) {
	srv := httptest.NewServer(pageMux(newFeed()))
	t.Cleanup(srv.Close)
	for _, tc := range []struct{ path, contentType, holds string }{
		{"/", "text/html", `<script src="app.js">`},
		{"/app.js", "text/javascript", "new EventSource('/api/v1/stream')"},
		{"/app.css", "text/css", "#messages"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode, tc.path)
		assert.Contains(t, resp.Header.Get("Content-Type"), tc.contentType, tc.path)
		assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'", tc.path)
		assert.Contains(t, string(body), tc.holds, tc.path)
	}
	resp, err := http.Get(srv.URL + "/api/v1/routing")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "no routing state before the first")

	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["']https?:`)
	require.NoError(t, fs.WalkDir(webFiles, "web", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(webFiles, path)
		require.NoError(t, err)
		assert.NotRegexp(t, external, string(data), "%s loads something from elsewhere", path)
		return nil
	}))
}

func pageMux(f *feed) *http.ServeMux {
	mux := http.NewServeMux()
	registerPage(mux, f)
	return mux
}

// TestStream: a page that connects gets the recent messages and the
// routing state first, then each delivery as the hub receives it; the
// stream ends when the feed closes.
func TestStream(t *testing.T) {
	f := newFeed()
	f.delivery(delivery{ID: "m1", Type: EventChatMessage, Conversation: "c", User: "Ada", Content: "earlier", Transport: "redis"})
	f.delivery(delivery{ID: "t1", Type: EventTyping, Conversation: "c", User: "Ada", Transport: "redis"})
	f.routingState(routingState{Enabled: true, Percentage: 25, Baseline: "http", Candidate: "redis"})
	srv := httptest.NewServer(pageMux(f))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/stream", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	events := make(chan string, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var ev strings.Builder
		for sc.Scan() {
			if sc.Text() == "" {
				if ev.Len() > 0 {
					events <- ev.String()
				}
				ev.Reset()
				continue
			}
			ev.WriteString(sc.Text() + "\n")
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case e, ok := <-events:
			require.True(t, ok, "the stream ended")
			return e
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return ""
	}
	assert.Equal(t, "retry: 1000\n", next())
	assert.Equal(t, "event: delivery\ndata: "+`{"id":"m1","type":"chat_message","conversation":"c","user":"Ada","content":"earlier","transport":"redis","latency_ms":0,"published_at":""}`+"\n", next(),
		"the history holds chat messages, not typing")
	assert.Contains(t, next(), "event: routing\ndata: {\"enabled\":true,\"percentage\":25,")

	f.delivery(delivery{ID: "m2", Type: EventChatMessage, Conversation: "c", Content: "now", Transport: "http", LatencyMS: 1.5})
	assert.Contains(t, next(), `"id":"m2"`)
	assert.Contains(t, string(f.lastRouting()), `"percentage":25`)

	f.close()
	select {
	case _, ok := <-events:
		assert.False(t, ok, "the stream ends when the feed closes")
	case <-ctx.Done():
		t.Fatal("the stream did not end")
	}
}

// TestFeedDropsASlowWatcher: a watcher a buffer behind is let go, not
// waited for; the others keep their events.
func TestFeedDropsASlowWatcher(t *testing.T) {
	f := newFeed()
	slow, ok := f.watch()
	require.True(t, ok)
	for i := range watcherBuffer + historySize + 2 {
		f.delivery(delivery{ID: string(rune('a' + i%26)), Type: EventTyping})
	}
	n := 0
	for range slow {
		n++
	}
	assert.Equal(t, watcherBuffer+historySize+1, n, "its channel is closed once full")
	fast, ok := f.watch()
	require.True(t, ok)
	f.delivery(delivery{ID: "z", Type: EventTyping})
	assert.Contains(t, string((<-fast).data), `"id":"z"`)
	f.unwatch(fast)
	f.close()
	_, ok = f.watch()
	assert.False(t, ok, "no watch after close")
}

// TestSplitWindow: the panel's split is the difference of the counters
// over the last minute, with the routed transports shown at zero.
func TestSplitWindow(t *testing.T) {
	w := &splitWindow{window: time.Minute}
	t0 := time.Unix(1000, 0)
	split, covered := w.split([]string{"http", "redis"})
	assert.Empty(t, split)
	assert.Zero(t, covered)

	w.add(t0, counters{totals: map[string]float64{"http": 10, "redis": 0, "memory": 0}, fallbacks: 4})
	w.add(t0.Add(30*time.Second), counters{totals: map[string]float64{"http": 10, "redis": 30, "memory": 0}, fallbacks: 4})
	split, covered = w.split([]string{"http", "redis"})
	assert.Equal(t, 30*time.Second, covered)
	assert.Equal(t, []transportShare{
		{Transport: "http", Events: 0, Percent: 0},
		{Transport: "redis", Events: 30, Percent: 100},
	}, split, "memory took nothing and is not routed: not shown")

	assert.Zero(t, w.fallbacks())
	w.add(t0.Add(70*time.Second), counters{totals: map[string]float64{"http": 20, "redis": 60, "memory": 0}, fallbacks: 6})
	w.add(t0.Add(95*time.Second), counters{totals: map[string]float64{"http": 30, "redis": 60, "memory": 0}, fallbacks: 9})
	split, covered = w.split([]string{"http", "redis"})
	assert.Equal(t, 65*time.Second, covered, "the base is the newest sample at least a minute old")
	assert.Equal(t, []transportShare{
		{Transport: "http", Events: 20, Percent: 40},
		{Transport: "redis", Events: 30, Percent: 60},
	}, split)
	assert.Len(t, w.samples, 3, "older samples are let go")
	assert.Equal(t, 5.0, w.fallbacks(), "fallbacks since the window's base")
}

// TestTypingUser: the typing endpoint takes an optional {"user": …} and
// refuses a name the page could not show.
func TestTypingUser(t *testing.T) {
	pub := &capture{}
	srv := httptest.NewServer(newServer(pub, nil))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		body   string
		status int
	}{
		{``, http.StatusAccepted},
		{`{"user":"Ada"}`, http.StatusAccepted},
		{`{"user":"` + strings.Repeat("x", maxUserLen+1) + `"}`, http.StatusBadRequest},
		{`{"user":"a\nb"}`, http.StatusBadRequest},
		{`{"user":"Ada","x":1}`, http.StatusBadRequest},
		{`{"user":"Ada"} {}`, http.StatusBadRequest},
	} {
		resp, err := http.Post(srv.URL+"/api/v1/requests/r1/typing", "application/json", strings.NewReader(tc.body))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, tc.status, resp.StatusCode, tc.body)
	}
	require.Equal(t, 2, pub.count())
	assert.NotContains(t, string(pub.msgs[0].Payload), `"user"`)
	assert.Contains(t, string(pub.msgs[1].Payload), `"user":"Ada"`)

	resp, err := http.Post(srv.URL+"/api/v1/messages", "application/json", strings.NewReader(`{"request_id":"r1","content":"hi","user":"a\u0000"}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}
