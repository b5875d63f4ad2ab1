package httptransport_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// No placeholder may stand in the scheme, the userinfo, the host or the
// port, however the text before it is escaped: a topic would pick where
// requests go. Neither the config check nor the factory panics on them,
// allowed_hosts set or not.
func TestURLTemplateAuthorityIsFixed(t *testing.T) {
	const want = "url: placeholders may not stand in the scheme, the userinfo, the host or the port"
	for _, tmpl := range []string{
		"http://a%41b@127.0.0.1{topic}/e",       // an escape in the userinfo
		"http://us%65r:p%40ss@127.0.0.1{topic}", // and no path
		"http://%75:%70@127.0.0.1:{topic}/e",
		"http://127.0.0.1:{topic}/e",
		"http://127.0.0.1{event_type}/e",
		"http://{topic}@127.0.0.1/e",
		"http://u:{topic}@127.0.0.1/e",
		"HTTPS://127.0.0.1{topic}?k=v",
		"http://[::1{topic}]/e",
		"{topic}://127.0.0.1/e",
	} {
		for _, allowed := range [][]string{nil, {"127.0.0.1"}, {"*.example.com", "::1"}} {
			cfg := httptransport.Config{URL: tmpl, AllowedHosts: allowed}
			var verr, perr, ferr error
			require.NotPanics(t, func() { verr = cfg.Validate() }, tmpl)
			require.NotPanics(t, func() { _, perr = httptransport.NewPublisher(cfg, nil) }, tmpl)
			section := map[string]any{"url": tmpl}
			if allowed != nil {
				section["allowed_hosts"] = allowed
			}
			require.NotPanics(t, func() { _, ferr = build(t, section) }, tmpl)
			for _, err := range []error{verr, perr, ferr} {
				if strings.HasPrefix(tmpl, "{") {
					assert.ErrorContains(t, err, "url: scheme must be http or https", tmpl)
				} else {
					assert.ErrorContains(t, err, want, tmpl)
				}
			}
		}
	}
}

// A topic or an event type that makes a . or .. path segment, as it is or
// percent-encoded (in any case, once or twice), is refused before any
// request, with a permanent error, so the bus dead-letters it at once; a
// hub that decodes the path would read it as a move up the path.
func TestPublishRefusesDotSegments(t *testing.T) {
	paths := make(chan string, 10)
	srv := newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		paths <- r.URL.EscapedPath()
		w.WriteHeader(http.StatusNoContent)
	})
	p := newPublisher(t, httptransport.Config{URL: srv.URL + "/t/{topic}/e/{event_type}?q={topic}"})
	dotted := newPublisher(t, httptransport.Config{URL: srv.URL + "/t/.{topic}/e"})

	for _, topic := range []string{".", "..", "%2e", "%2E%2e", ".%2E", "%252E%252E", "%25252e", "a/..", "../b", `..\b`, "a%2F..", "%2e%2e%2fb"} {
		err := p.Publish(topic, newMessage("m-1"))
		require.ErrorIs(t, err, httptransport.ErrPermanent, "topic %q", topic)
		assert.ErrorContains(t, err, "makes a . or .. path segment", "topic %q", topic)
	}
	for _, eventType := range []string{"..", "%2E"} {
		msg := newMessage("m-2")
		msg.Metadata.Set("event_type", eventType)
		require.ErrorIs(t, p.Publish("chat", msg), httptransport.ErrPermanent, "event type %q", eventType)
	}
	// The literal text of the template counts too: ".{topic}" with ".".
	require.ErrorIs(t, dotted.Publish(".", newMessage("m-3")), httptransport.ErrPermanent)
	require.Zero(t, srv.requests.Load(), "nothing was sent")

	// Dots that make no dot segment go through, in one segment each.
	for _, topic := range []string{"...", ".a", "a.", "a..b", "%2e%2e%2e"} {
		require.NoError(t, p.Publish(topic, newMessage("m-4")), "topic %q", topic)
		path := <-paths
		assert.True(t, strings.HasPrefix(path, "/t/") && strings.Count(path, "/") == 4, "%q: %s", topic, path)
	}
	// Only the path matters: the query may hold anything.
	q := newPublisher(t, httptransport.Config{URL: srv.URL + "/t?topic={topic}"})
	require.NoError(t, q.Publish("..", newMessage("m-5")))
	require.Equal(t, "/t", <-paths)
}

// A template whose own path has a dot segment is refused at once.
func TestURLTemplateWithDotSegmentIsRefused(t *testing.T) {
	for _, tmpl := range []string{"http://h/a/../{topic}", "http://h/./e", "http://h/%2E%2e/{topic}", "http://h/e/.."} {
		err := (&httptransport.Config{URL: tmpl}).Validate()
		assert.ErrorContains(t, err, "url: the path has a . or .. segment", tmpl)
	}
}
