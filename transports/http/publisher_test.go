package httptransport_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

func newMessage(uuid string) *message.Message {
	m := message.NewMessage(uuid, []byte(`{"text":"hello"}`))
	m.Metadata.Set("event_type", "chat_message")
	m.Metadata.Set("event_key", "conversation-7")
	m.Metadata.Set("published_at", "2026-01-02T03:04:05.123456789Z")
	m.Metadata.Set("transport", "http")
	return m
}

// 503 then 200: the message is sent again and delivered once.
func TestPublishRetriesUnavailableThenDeliversOnce(t *testing.T) {
	var delivered sync.Map // ce-id → deliveries answered 2xx
	srv := newServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		count, _ := delivered.LoadOrStore(r.Header.Get("Ce-Id"), new(int))
		*count.(*int)++
		w.WriteHeader(http.StatusOK)
	})
	p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL + "/events/{topic}"}))

	require.NoError(t, p.Publish("chat", newMessage("m-1")))

	require.EqualValues(t, 2, srv.requests.Load(), "one 503, then the retry")
	count, ok := delivered.Load("m-1")
	require.True(t, ok)
	require.Equal(t, 1, *count.(*int), "delivered once")
}

// 400 (and every 3xx and 4xx but 429) is permanent: no retry, ErrPermanent.
func TestPublishPermanentStatusesAreNotRetried(t *testing.T) {
	for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusFound, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			target := newServer(t, func(int64, http.ResponseWriter, *http.Request) {})
			srv := newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
				if code >= 300 && code < 400 {
					http.Redirect(w, r, target.URL, code)
					return
				}
				w.WriteHeader(code)
			})
			p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL + "/events/{topic}"}))

			err := p.Publish("chat", newMessage("m-1"))

			require.ErrorIs(t, err, httptransport.ErrPermanent)
			var se *httptransport.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, code, se.Code)
			require.EqualValues(t, 1, srv.requests.Load(), "no retry")
			require.Zero(t, target.requests.Load(), "redirects are not followed")
		})
	}
}

// 429, 502, 503 and 504 are retried, MaxRetries times, and stay retryable
// for the caller (not permanent).
func TestPublishRetryableStatusesAreRetriedBounded(t *testing.T) {
	for _, code := range []int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			srv := newServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) })
			p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL, MaxRetries: 2}))

			err := p.Publish("chat", newMessage("m-1"))

			var se *httptransport.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, code, se.Code)
			require.NotErrorIs(t, err, httptransport.ErrPermanent)
			require.EqualValues(t, 3, srv.requests.Load(), "the attempt and 2 retries")
		})
	}
	t.Run("500 is returned at once, not permanent", func(t *testing.T) {
		srv := newServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
		p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL}))
		err := p.Publish("chat", newMessage("m-1"))
		require.Error(t, err)
		require.NotErrorIs(t, err, httptransport.ErrPermanent)
		require.EqualValues(t, 1, srv.requests.Load())
	})
	t.Run("max_retries -1 never retries", func(t *testing.T) {
		srv := newServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
		p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL, MaxRetries: -1}))
		require.Error(t, p.Publish("chat", newMessage("m-1")))
		require.EqualValues(t, 1, srv.requests.Load())
	})
}

func TestPublishHonoursRetryAfter(t *testing.T) {
	t.Run("waits as asked", func(t *testing.T) {
		var first time.Time
		var gap time.Duration
		srv := newServer(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				first = time.Now()
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			gap = time.Since(first)
			w.WriteHeader(http.StatusNoContent)
		})
		p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL, Timeout: 5 * time.Second}))

		require.NoError(t, p.Publish("chat", newMessage("m-1")))
		require.EqualValues(t, 2, srv.requests.Load())
		require.GreaterOrEqual(t, gap, time.Second)
	})
	t.Run("gives up at once when the wait outlasts the timeout", func(t *testing.T) {
		srv := newServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL, Timeout: 2 * time.Second}))

		start := time.Now()
		err := p.Publish("chat", newMessage("m-1"))

		require.Less(t, time.Since(start), time.Second, "no point waiting past the deadline")
		var se *httptransport.StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, 30*time.Second, se.RetryAfter)
		require.EqualValues(t, 1, srv.requests.Load())
	})
}

// A server that never answers: the error comes within the timeout.
func TestPublishTimesOutOnSilentServer(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(_ int64, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for handlers
	const timeout = 300 * time.Millisecond
	p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL, Timeout: timeout}))

	start := time.Now()
	err := p.Publish("chat", newMessage("m-1"))
	elapsed := time.Since(start)

	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, httptransport.ErrPermanent)
	require.GreaterOrEqual(t, elapsed, timeout)
	require.Less(t, elapsed, timeout+time.Second, "the timeout bounds the call")
}

// attempt_timeout gives up on a silent attempt and tries again within the
// message's timeout.
func TestPublishAttemptTimeoutRetries(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	t.Cleanup(func() { close(release) })
	p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL, Timeout: 5 * time.Second, AttemptTimeout: 200 * time.Millisecond}))

	require.NoError(t, p.Publish("chat", newMessage("m-1")))
	require.EqualValues(t, 2, srv.requests.Load())
}

// A server that closes the connection in the middle of the request: retried.
func TestPublishRetriesConnectionClosedMidRequest(t *testing.T) {
	delivered := 0
	srv := newServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			// Read part of the body, then drop the connection without an answer.
			_, _ = io.ReadFull(r.Body, make([]byte, 4))
			conn, _, err := http.NewResponseController(w).Hijack()
			require.NoError(t, err)
			_ = conn.Close()
			return
		}
		body, _ := io.ReadAll(r.Body)
		require.JSONEq(t, `{"text":"hello"}`, string(body), "the whole body again")
		delivered++
		w.WriteHeader(http.StatusNoContent)
	})
	p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL}))

	require.NoError(t, p.Publish("chat", newMessage("m-1")))
	require.EqualValues(t, 2, srv.requests.Load())
	require.Equal(t, 1, delivered)
}

func TestPublishConnectionRefusedIsRetriedThenReturned(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	p := newPublisher(t, fastRetries(httptransport.Config{URL: "http://" + addr + "/events/{topic}", MaxRetries: 2}))

	err = p.Publish("chat", newMessage("m-1"))

	require.ErrorContains(t, err, "(3 attempts)")
	require.ErrorContains(t, err, "connection refused")
	require.NotErrorIs(t, err, httptransport.ErrPermanent)
}

func TestPublishStopsWithTheMessageContext(t *testing.T) {
	hit := make(chan struct{}, 1)
	srv := newServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		select {
		case hit <- struct{}{}:
		default:
		}
	})
	p := newPublisher(t, httptransport.Config{URL: srv.URL, Timeout: time.Minute})
	ctx, cancel := context.WithCancel(t.Context())
	msg := newMessage("m-1")
	msg.SetContext(ctx)

	done := make(chan error, 1)
	go func() { done <- p.Publish("chat", msg) }()
	<-hit // the first attempt was answered; Publish waits 5s to retry
	cancel()

	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(2 * time.Second):
		t.Fatal("Publish did not return when the message context was canceled")
	}
}

// Response bodies are drained and closed, so one keep-alive connection
// carries every request, whatever the answers.
func TestPublishKeepsConnectionsAlive(t *testing.T) {
	body := strings.Repeat("x", 4096)
	srv := newServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if n%5 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = io.WriteString(w, body)
	})
	p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL}))

	for i := range 40 {
		require.NoError(t, p.Publish("chat", newMessage(watermill.NewUUID())), "message %d", i)
	}
	require.EqualValues(t, 1, srv.conns.Load(), "every request on one connection")
}

// Configured headers, the userinfo and the query of the URL and response
// bodies never reach logs or errors.
func TestPublishNeverLogsSecrets(t *testing.T) {
	const (
		token    = "tok-3f9a1c"
		password = "pw-77d2e0"
		query    = "qs-5b8e44"
		bodyText = "body-c0ffee"
	)
	var gotAuth string
	srv := newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, bodyText)
	})
	logger := watermill.NewCaptureLogger()
	url := strings.Replace(srv.URL, "http://", "http://user:"+password+"@", 1) + "/events/{topic}?key=" + query
	p, err := httptransport.NewPublisher(fastRetries(httptransport.Config{
		URL:     url,
		Headers: map[string]string{"Authorization": "Bearer " + token},
	}), logger)
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()

	err = p.Publish("chat", newMessage("m-1"))

	require.Error(t, err)
	require.Equal(t, "Bearer "+token, gotAuth, "the header was sent")
	logged := fmt.Sprint(logger.Captured())
	require.Contains(t, logged, "retrying", "retries are logged")
	for _, secret := range []string{token, password, query, bodyText} {
		require.NotContains(t, err.Error(), secret)
		require.NotContains(t, logged, secret)
	}
}

func TestPublishURLTemplateEscapes(t *testing.T) {
	type seen struct{ topic, eventType, rawPath string }
	got := make(chan seen, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /t/{topic}/e", func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.PathValue("topic"), r.URL.Query().Get("type"), r.URL.EscapedPath()}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) { mux.ServeHTTP(w, r) })
	p := newPublisher(t, httptransport.Config{URL: srv.URL + "/t/{topic}/e?type={event_type}"})

	for _, tc := range []struct{ topic, eventType string }{
		{"events:chat", "typing"},
		{"a/b", "x&y=z"},
		{"with space", "ünï cödé"},
		{"..", "?#"},
		{"100%", "+"},
	} {
		msg := newMessage("m-1")
		msg.Metadata.Set("event_type", tc.eventType)
		require.NoError(t, p.Publish(tc.topic, msg), "topic %q", tc.topic)
		s := <-got
		assert.Equal(t, tc.topic, s.topic)
		assert.Equal(t, tc.eventType, s.eventType)
		assert.True(t, strings.HasPrefix(s.rawPath, "/t/") && strings.HasSuffix(s.rawPath, "/e"), "one path segment: %s", s.rawPath)
	}

	require.ErrorIs(t, p.Publish("", newMessage("m-2")), httptransport.ErrPermanent, "an empty topic cannot fill {topic}")
}

func TestPublishSendsConfiguredHeadersAndHost(t *testing.T) {
	var header http.Header
	var host string
	srv := newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		header, host = r.Header.Clone(), r.Host
		w.WriteHeader(http.StatusNoContent)
	})
	p := newPublisher(t, httptransport.Config{URL: srv.URL, Headers: map[string]string{
		"authorization": "Bearer t", "X-Tenant": "acme", "Host": "hub.internal",
	}})

	require.NoError(t, p.Publish("chat", newMessage("m-1")))
	require.Equal(t, "Bearer t", header.Get("Authorization"))
	require.Equal(t, "acme", header.Get("X-Tenant"))
	require.Equal(t, "hub.internal", host)
}

// Userinfo in the URL is sent as Basic authentication, as http.Client
// would, unless an Authorization header is configured.
func TestPublishURLUserinfo(t *testing.T) {
	auth := make(chan string, 1)
	srv := newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Get("Authorization")
		w.WriteHeader(http.StatusNoContent)
	})
	url := strings.Replace(srv.URL, "http://", "http://hub:p%40ss@", 1) + "/events/{topic}"

	p := newPublisher(t, httptransport.Config{URL: url})
	require.NoError(t, p.Publish("chat", newMessage("m-1")))
	require.Equal(t, "Basic aHViOnBAc3M=", <-auth) // hub:p@ss

	p = newPublisher(t, httptransport.Config{URL: url, Headers: map[string]string{"Authorization": "Bearer t"}})
	require.NoError(t, p.Publish("chat", newMessage("m-1")))
	require.Equal(t, "Bearer t", <-auth)
}

func TestPublishCloseIsIdempotentAndFinal(t *testing.T) {
	srv := newServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	p, err := httptransport.NewPublisher(httptransport.Config{URL: srv.URL}, nil)
	require.NoError(t, err)
	require.NoError(t, p.Publish("chat", newMessage("m-1")))
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	require.ErrorIs(t, p.Publish("chat", newMessage("m-2")), httptransport.ErrClosed)
}

func TestPublishAddressPolicy(t *testing.T) {
	srv := newServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })

	t.Run("deny_private_addresses refuses loopback", func(t *testing.T) {
		p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL, DenyPrivateAddresses: true}))
		err := p.Publish("chat", newMessage("m-1"))
		require.ErrorIs(t, err, httptransport.ErrAddressRefused)
		require.ErrorIs(t, err, httptransport.ErrPermanent)
		require.ErrorContains(t, err, "(1 attempts)")
		require.Zero(t, srv.requests.Load())
	})
	t.Run("deny_private_addresses refuses names resolving to loopback", func(t *testing.T) {
		url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
		p := newPublisher(t, fastRetries(httptransport.Config{URL: url, DenyPrivateAddresses: true}))
		require.ErrorIs(t, p.Publish("chat", newMessage("m-1")), httptransport.ErrAddressRefused)
		require.Zero(t, srv.requests.Load())
	})
	t.Run("off by default", func(t *testing.T) {
		p := newPublisher(t, httptransport.Config{URL: srv.URL})
		require.NoError(t, p.Publish("chat", newMessage("m-1")))
	})
	t.Run("allowed_hosts", func(t *testing.T) {
		for _, tc := range []struct {
			url     string
			allowed []string
			ok      bool
		}{
			{"http://hub.example.com/e", []string{"hub.example.com"}, true},
			{"http://HUB.example.com./e", []string{"hub.example.com"}, true},
			{"http://a.hub.example.com/e", []string{"*.example.com"}, true},
			{"http://example.com/e", []string{"*.example.com"}, false},
			{"http://evil.com/e", []string{"hub.example.com"}, false},
			{"http://127.0.0.1:5000/e", []string{"127.0.0.1"}, true},
			{"http://[::1]:5000/e", []string{"::1"}, true},
		} {
			_, err := httptransport.NewPublisher(httptransport.Config{URL: tc.url, AllowedHosts: tc.allowed}, nil)
			if tc.ok {
				assert.NoError(t, err, tc.url)
			} else {
				assert.ErrorContains(t, err, "not in allowed_hosts", tc.url)
			}
		}
	})
}

func TestNewPublisherConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  httptransport.Config
		want string
	}{
		{httptransport.Config{}, "url: must be set"},
		{httptransport.Config{URL: "ftp://x/"}, "scheme must be http or https"},
		{httptransport.Config{URL: "http://{topic}.example.com/"}, "scheme or the host"},
		{httptransport.Config{URL: "http://h/{nope}"}, "unknown placeholder {nope}"},
		{httptransport.Config{URL: "http://h/{topic"}, "unclosed {"},
		{httptransport.Config{URL: "http://h/", Format: "xml"}, "format: must be"},
		{httptransport.Config{URL: "http://h/", Timeout: -1}, "timeout: must not be negative"},
		{httptransport.Config{URL: "http://h/", ContentType: ";;"}, "content_type"},
		{httptransport.Config{URL: "http://h/", Headers: map[string]string{"Bad Name": "v"}}, `headers: "Bad Name" is not a valid header name`},
		{httptransport.Config{URL: "http://h/", Headers: map[string]string{"X-Secret": "a\r\nb"}}, `the value of "X-Secret" holds a line break`},
		{httptransport.Config{URL: "http://h/", TLS: httptransport.TLSConfig{CertFile: "c.pem"}}, "cert_file and key_file go together"},
		{httptransport.Config{URL: "http://h/", TLS: httptransport.TLSConfig{CAFile: "/nonexistent/ca.pem"}}, "tls.ca_file"},
	} {
		_, err := httptransport.NewPublisher(tc.cfg, nil)
		assert.ErrorContains(t, err, tc.want)
		if err != nil {
			assert.NotContains(t, err.Error(), "a\r\nb", "header values are secrets")
		}
	}
}
