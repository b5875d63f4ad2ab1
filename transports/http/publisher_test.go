package httptransport_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
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
	delivered := make(chan string, 10) // the ce-id of each request answered 2xx
	srv := newServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		delivered <- r.Header.Get("Ce-Id")
		w.WriteHeader(http.StatusOK)
	})
	p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL + "/events/{topic}"}))

	require.NoError(t, p.Publish("chat", newMessage("m-1")))

	require.EqualValues(t, 2, srv.requests.Load(), "one 503, then the retry")
	require.Len(t, delivered, 1, "delivered once")
	require.Equal(t, "m-1", <-delivered)
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
		arrivals := make(chan time.Time, 2)
		srv := newServer(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
			arrivals <- time.Now()
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
		p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL, Timeout: 5 * time.Second}))

		require.NoError(t, p.Publish("chat", newMessage("m-1")))
		require.EqualValues(t, 2, srv.requests.Load())
		first, second := <-arrivals, <-arrivals
		require.GreaterOrEqual(t, second.Sub(first), time.Second)
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
// The body, 4 MiB, is far more than the socket buffers between the two
// hold, so the Publisher is still writing it when the connection closes.
func TestPublishRetriesConnectionClosedMidRequest(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), (4<<20)/16)
	type request struct {
		body []byte
		err  error
	}
	requests := make(chan request, 2)
	srv := newServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			// Read a little of the body, then drop the connection without
			// an answer.
			_, err := io.ReadFull(r.Body, make([]byte, 4))
			if err == nil {
				var conn net.Conn
				conn, _, err = http.NewResponseController(w).Hijack()
				if err == nil {
					err = conn.Close()
				}
			}
			requests <- request{err: err}
			return
		}
		body, err := io.ReadAll(r.Body)
		requests <- request{body, err}
		w.WriteHeader(http.StatusNoContent)
	})
	// 4 MiB sent twice under -race on a busy machine outlast the default
	// timeout; this test is about the retry, not the deadline.
	p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL, ContentType: "application/octet-stream", Timeout: time.Minute}))

	require.NoError(t, p.Publish("chat", message.NewMessage("m-1", payload)))
	require.EqualValues(t, 2, srv.requests.Load())
	first := <-requests
	require.NoError(t, first.err, "the first request was cut")
	second := <-requests
	require.NoError(t, second.err)
	require.True(t, bytes.Equal(payload, second.body), "the whole body again: %d of %d bytes", len(second.body), len(payload))
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

// retryLogger signals each "retrying" the Publisher logs: it has its
// answer and is about to wait.
type retryLogger struct {
	watermill.NopLogger
	retrying chan struct{}
}

func (l retryLogger) Debug(msg string, _ watermill.LogFields) {
	if strings.Contains(msg, "retrying") {
		l.retrying <- struct{}{}
	}
}

func (l retryLogger) With(watermill.LogFields) watermill.LoggerAdapter { return l }

// Canceling the message context during the wait for Retry-After ends
// Publish at once.
func TestPublishStopsWithTheMessageContext(t *testing.T) {
	srv := newServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	logger := retryLogger{retrying: make(chan struct{}, 1)}
	p, err := httptransport.NewPublisher(httptransport.Config{URL: srv.URL, Timeout: time.Minute}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	ctx, cancel := context.WithCancel(t.Context())
	msg := newMessage("m-1")
	msg.SetContext(ctx)

	done := make(chan error, 1)
	go func() { done <- p.Publish("chat", msg) }()
	<-logger.retrying // the Publisher has the 503 and waits 5s to retry
	cancel()

	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
		require.EqualValues(t, 1, srv.requests.Load(), "canceled during the wait, not during a request")
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
	auths := make(chan string, 10)
	srv := newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		auths <- r.Header.Get("Authorization")
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
	require.Equal(t, "Bearer "+token, <-auths, "the header was sent")
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
		{"...", "?#"},
		{".a", ".."},
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
	type request struct {
		header http.Header
		host   string
	}
	requests := make(chan request, 1)
	srv := newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		requests <- request{r.Header.Clone(), r.Host}
		w.WriteHeader(http.StatusNoContent)
	})
	p := newPublisher(t, httptransport.Config{URL: srv.URL, Headers: map[string]string{
		"authorization": "Bearer t", "X-Tenant": "acme", "Host": "hub.internal",
	}})

	require.NoError(t, p.Publish("chat", newMessage("m-1")))
	got := <-requests
	require.Equal(t, "Bearer t", got.header.Get("Authorization"))
	require.Equal(t, "acme", got.header.Get("X-Tenant"))
	require.Equal(t, "hub.internal", got.host)
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
			// host:port allows that port only; the scheme's default when
			// the URL names none.
			{"http://127.0.0.1:5000/e", []string{"127.0.0.1:5000"}, true},
			{"http://127.0.0.1:5001/e", []string{"127.0.0.1:5000"}, false},
			{"https://hub.example.com/e", []string{"hub.example.com:443"}, true},
			{"https://hub.example.com:8443/e", []string{"hub.example.com:443"}, false},
			{"http://a.example.com:8080/e", []string{"*.example.com:8080"}, true},
			{"http://[::1]:5000/e", []string{"[::1]:5000"}, true},
			{"http://[::1]:5001/e", []string{"[::1]:5000"}, false},
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
		{httptransport.Config{URL: "http://{topic}.example.com/"}, "placeholders may not stand in the scheme, the userinfo, the host or the port"},
		{httptransport.Config{URL: "http://h/{nope}"}, "unknown placeholder at byte 9"},
		{httptransport.Config{URL: "http://h/{topic"}, "unclosed { at byte 9"},
		{httptransport.Config{URL: "http://h/", Format: "xml"}, "format: must be"},
		{httptransport.Config{URL: "http://h/", Timeout: -1}, "timeout: must not be negative"},
		{httptransport.Config{URL: "http://h/", ContentType: ";;"}, "content_type"},
		{httptransport.Config{URL: "http://h/", Headers: map[string]string{"Bad Name": "v"}}, `headers: "Bad Name" is not a valid header name`},
		{httptransport.Config{URL: "http://h/", Headers: map[string]string{"X-Secret": "a\r\nb"}}, `the value of "X-Secret" holds a line break`},
		{httptransport.Config{URL: "http://h/", TLS: httptransport.TLSConfig{CertFile: "c.pem"}}, "tls.key_file: required with tls.cert_file"},
		{httptransport.Config{URL: "http://h/", TLS: httptransport.TLSConfig{CAFile: "/nonexistent/ca.pem"}}, "tls.ca_file"},
	} {
		_, err := httptransport.NewPublisher(tc.cfg, nil)
		assert.ErrorContains(t, err, tc.want)
		if err != nil {
			assert.NotContains(t, err.Error(), "a\r\nb", "header values are secrets")
		}
	}
}

// Configuration errors say what is wrong with url (or proxy) and where,
// never quoting it: userinfo, paths and queries hold secrets.
func TestConfigErrorsNeverQuoteTheURL(t *testing.T) {
	const secret = "hunter2"
	for _, tc := range []struct {
		cfg  httptransport.Config
		want string
	}{
		{httptransport.Config{URL: "https://user:hunter2@hub.example.com/e/{topic"}, "url: unclosed { at byte 39"},
		{httptransport.Config{URL: "https://hub.example.com/e/{topic?api_key=hunter2"}, "url: unclosed { at byte 26"},
		{httptransport.Config{URL: "https://hub.example.com/e/{hunter2}"}, "url: unknown placeholder at byte 26"},
		{httptransport.Config{URL: "https://user:hunter2@hub.example.com/e/%zz"}, "url: invalid %-escape at byte 39"},
		{httptransport.Config{URL: "ftp://user:hunter2@hub.example.com/e"}, "url: scheme must be http or https"},
		{httptransport.Config{URL: "user:hunter2@hub.example.com/e"}, "url: scheme must be http or https"},
		{httptransport.Config{URL: "https://user:hunter2@hub.example.com:hunter2/e"}, "url: invalid port"},
		{httptransport.Config{URL: "https://hub.example.com/e?token=hunter2\x7f"}, "url: invalid control character"},
		{httptransport.Config{URL: "https://hub exa hunter2.com/e"}, "url: invalid character in the host"},
		{httptransport.Config{URL: "https://{topic}.hunter2.example.com/e"}, "url: placeholders may not stand in the scheme, the userinfo, the host or the port"},
		{httptransport.Config{URL: "https://u:hunter2@evil.example.com/e?k=hunter2", AllowedHosts: []string{"hub.example.com"}},
			"url: its host and port are not in allowed_hosts"},
		{httptransport.Config{URL: "https://hub.example.com/e", Proxy: "http://user:hunter2@[proxy"}, "proxy: must be none, environment"},
		{httptransport.Config{URL: "https://hub.example.com/e", Proxy: "ftp://user:hunter2@proxy"}, "proxy: must be none, environment"},
	} {
		verr := tc.cfg.Validate()
		_, perr := httptransport.NewPublisher(tc.cfg, nil)
		section := map[string]any{"url": tc.cfg.URL}
		if tc.cfg.Proxy != "" {
			section["proxy"] = tc.cfg.Proxy
		}
		if tc.cfg.AllowedHosts != nil {
			section["allowed_hosts"] = tc.cfg.AllowedHosts
		}
		_, ferr := build(t, section)
		for _, err := range []error{verr, perr, ferr} {
			if assert.Error(t, err, tc.want) {
				assert.ErrorContains(t, err, tc.want)
				assert.NotContains(t, err.Error(), secret, tc.want)
			}
		}
	}
}

// forwardProxy is a server that answers, as a forward proxy in front of a
// healthy hub would, 204 to every request, and sends on proxied the
// absolute URL each asked for.
func forwardProxy(t *testing.T) (*server, <-chan string) {
	proxied := make(chan string, 10)
	return newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		proxied <- r.URL.String()
		w.WriteHeader(http.StatusNoContent)
	}), proxied
}

func TestPublishProxy(t *testing.T) {
	proxy, proxied := forwardProxy(t)
	t.Run("a proxy URL", func(t *testing.T) {
		p := newPublisher(t, httptransport.Config{URL: "http://hub.invalid:5000/events/{topic}", Proxy: proxy.URL})
		require.NoError(t, p.Publish("chat", newMessage("m-1")))
		require.Equal(t, "http://hub.invalid:5000/events/chat", <-proxied)
	})
	t.Run("deny_private_addresses cannot see through a proxy", func(t *testing.T) {
		for _, setting := range []string{"environment", proxy.URL} {
			_, err := httptransport.NewPublisher(httptransport.Config{
				URL: "http://hub.example.com/", Proxy: setting, DenyPrivateAddresses: true,
			}, nil)
			require.ErrorContains(t, err, "deny_private_addresses: cannot be checked through a proxy", setting)
		}
		for _, setting := range []string{"", "none"} {
			_, err := httptransport.NewPublisher(httptransport.Config{
				URL: "http://hub.example.com/", Proxy: setting, DenyPrivateAddresses: true,
			}, nil)
			require.NoError(t, err, setting)
		}
	})
}

// HTTP_PROXY is ignored unless proxy is "environment", so that a proxy in
// the environment never takes connections out of deny_private_addresses'
// sight. net/http reads the environment once per process: this test runs
// in a process of its own.
func TestPublishProxyFromEnvironment(t *testing.T) {
	if os.Getenv("HTTPTRANSPORT_PROXY_TEST") == "" {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestPublishProxyFromEnvironment$", "-test.count=1")
		cmd.Env = append(os.Environ(), "HTTPTRANSPORT_PROXY_TEST=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return
	}
	proxy, proxied := forwardProxy(t)
	for _, name := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"} {
		t.Setenv(name, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	url := "http://hub.invalid:5000/events/{topic}"

	direct := newPublisher(t, httptransport.Config{URL: url, Timeout: time.Second, MaxRetries: -1})
	require.Error(t, direct.Publish("chat", newMessage("m-1")), "hub.invalid does not resolve")
	select {
	case u := <-proxied:
		t.Fatalf("the environment's proxy was used by default for %s", u)
	default:
	}

	fromEnv := newPublisher(t, httptransport.Config{URL: url, Proxy: "environment"})
	require.NoError(t, fromEnv.Publish("chat", newMessage("m-2")))
	require.Equal(t, "http://hub.invalid:5000/events/chat", <-proxied)
}
