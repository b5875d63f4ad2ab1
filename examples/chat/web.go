package main

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"time"
)

// webFiles is the page: plain HTML, CSS and JavaScript, no build step, and
// nothing loaded from outside the service.
//
//go:embed web
var webFiles embed.FS

// keepAliveInterval is how often an idle stream gets a comment, so that
// proxies and the browser keep it open.
const keepAliveInterval = 15 * time.Second

// registerPage adds to mux the page at / and its assets, the live stream
// of deliveries and routing states at GET /api/v1/stream, and the last
// routing state at GET /api/v1/routing.
func registerPage(mux *http.ServeMux, f *feed) {
	static, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the directory is embedded: it exists
	}
	files := http.FileServerFS(static)
	handle := func(pattern string, h http.Handler) {
		mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The page loads nothing from elsewhere, and says so to the
			// browser.
			w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			h.ServeHTTP(w, r)
		}))
	}
	handle("GET /{$}", files)
	handle("GET /app.js", files)
	handle("GET /app.css", files)
	handle("GET /api/v1/stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { stream(w, r, f) }))
	handle("GET /api/v1/routing", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data := f.lastRouting()
		if data == nil {
			httpError(w, http.StatusServiceUnavailable, "no routing state yet")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(data, '\n'))
	}))
}

// stream is a Server-Sent Events stream of the feed: "delivery" events
// (what the hub received) and "routing" events (the routing panel's
// state), each a JSON object. It ends when the client goes or the feed
// closes.
func stream(w http.ResponseWriter, r *http.Request, f *feed) {
	ch, ok := f.watch()
	if !ok {
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	defer f.unwatch(ch)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The browser reconnects a second after the stream ends.
	if _, err := w.Write([]byte("retry: 1000\n\n")); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	keepAlive := time.NewTicker(keepAliveInterval)
	defer keepAlive.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			_, err = w.Write([]byte(": keep-alive\n\n"))
		case e, ok := <-ch:
			if !ok {
				return
			}
			_, err = w.Write(formatEvent(e))
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// formatEvent lays e out as an SSE event; its data is one line of JSON.
func formatEvent(e sseEvent) []byte {
	out := make([]byte, 0, len(e.name)+len(e.data)+16)
	out = append(out, "event: "...)
	out = append(out, e.name...)
	out = append(out, "\ndata: "...)
	out = append(out, e.data...)
	return append(out, "\n\n"...)
}

// delivery is what the page shows of an event the hub received.
type delivery struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	Conversation string `json:"conversation"`
	User         string `json:"user,omitempty"`
	Content      string `json:"content,omitempty"`
	// Transport is the transport that carried the event (the route's
	// choice, or the fallback's).
	Transport string `json:"transport"`
	// LatencyMS is the time from NewMessage on the publishing side to the
	// hub's handler, in milliseconds.
	LatencyMS   float64 `json:"latency_ms"`
	PublishedAt string  `json:"published_at"`
}

// newDelivery reads what the page shows out of an event's payload.
func newDelivery(id, eventType, key, transport, publishedAt string, latency time.Duration, payload []byte) delivery {
	d := delivery{
		ID: id, Type: eventType, Conversation: key, Transport: transport,
		LatencyMS: float64(latency.Microseconds()) / 1000, PublishedAt: publishedAt,
	}
	var body struct {
		User    string `json:"user"`
		Content string `json:"content"`
	}
	if json.Unmarshal(payload, &body) == nil {
		d.User, d.Content = body.User, body.Content
	}
	return d
}
