package httptransport_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// mount serves r on POST /events/{topic} of a new loopback server.
func mount(t *testing.T, r http.Handler) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("POST /events/{topic}", r)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func newReceiver(t *testing.T, cfg httptransport.ReceiverConfig) *httptransport.Receiver {
	t.Helper()
	r, err := httptransport.NewReceiver(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

func subscribe(t *testing.T, s message.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	ch, err := s.Subscribe(t.Context(), topic)
	require.NoError(t, err)
	return ch
}

// post sends body to url with header and returns the status and Retry-After.
func post(t *testing.T, url string, header http.Header, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// Publisher → Receiver gives back exactly the UUID, the metadata and the
// payload, in every format, whatever the metadata keys and values.
func TestRoundTripIsExact(t *testing.T) {
	metadatas := map[string]message.Metadata{
		"bus metadata": {
			"event_type": "typing", "event_key": "req-123", "published_at": "2026-01-02T03:04:05.123456789Z", "transport": "http",
		},
		"none": {},
		"awkward keys and values": {
			"event_type": `he said "hi" 100% über 😀`, "X-Request-ID": "r 1", "topic": "not the topic",
			"a_very_long_metadata_key_name": "long", "UPPER": "u", "lower": "l", "empty": "",
			"switchyardmetadata": "{", "published_at": "yesterday", "event_key": "",
			"line": "a\nb\r\tc\x00d",
		},
		"colliding names": {"event_type": "t", "a-b": "1", "ab": "2", "A_B": "3"},
		"no event_type":   {"event_key": "k"},
	}
	payloads := map[string][]byte{
		"json":              []byte(`{"text":"hello","n":[1,2,3]}`),
		"json with spaces":  []byte(" { \"a\" : 1 }\n"),
		"not json":          []byte("{oops"),
		"binary":            {0x00, 0xff, 0xfe, '"', '\\'},
		"empty":             nil,
		"json string value": []byte(`"just a string"`),
	}
	for _, format := range []httptransport.Format{httptransport.FormatBinary, httptransport.FormatStructured, httptransport.FormatRaw} {
		for _, contentType := range []string{"application/json", "text/plain; charset=utf-8", "application/octet-stream"} {
			t.Run(string(format)+"/"+contentType, func(t *testing.T) {
				r := newReceiver(t, httptransport.ReceiverConfig{})
				srv := mount(t, r)
				msgs := subscribe(t, r, "events:chat")
				p := newPublisher(t, httptransport.Config{URL: srv.URL + "/events/{topic}", Format: format, ContentType: contentType})
				for mdName, md := range metadatas {
					for payloadName, payload := range payloads {
						sent := message.NewMessage("id-"+mdName+"-"+payloadName, payload)
						for k, v := range md {
							sent.Metadata[k] = v
						}
						done := make(chan error, 1)
						go func() { done <- p.Publish("events:chat", sent) }()
						got := <-msgs
						got.Ack()
						require.NoError(t, <-done)
						assert.Equal(t, sent.UUID, got.UUID)
						assert.Equal(t, map[string]string(sent.Metadata), map[string]string(got.Metadata), "%s / %s", mdName, payloadName)
						assert.True(t, bytes.Equal(sent.Payload, got.Payload), "%s / %s: %q", mdName, payloadName, got.Payload)
					}
				}
			})
		}
	}
}

func TestReceiverAnswers(t *testing.T) {
	binary := http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}, "Content-Type": {"application/json"}}
	r := newReceiver(t, httptransport.ReceiverConfig{HandlerTimeout: 200 * time.Millisecond, MaxBodyBytes: 64})
	srv := mount(t, r)
	url := srv.URL + "/events/chat"

	t.Run("no subscriber: 503 with Retry-After", func(t *testing.T) {
		status, retryAfter := post(t, url, binary, "{}")
		require.Equal(t, http.StatusServiceUnavailable, status)
		require.Equal(t, "1", retryAfter)
	})

	msgs := subscribe(t, r, "chat")
	handle := func(f func(*message.Message)) {
		go func() { f(<-msgs) }()
	}

	t.Run("acked: 204", func(t *testing.T) {
		handle(func(m *message.Message) { m.Ack() })
		status, _ := post(t, url, binary, "{}")
		require.Equal(t, http.StatusNoContent, status)
	})
	t.Run("nacked: 503 with Retry-After", func(t *testing.T) {
		handle(func(m *message.Message) { m.Nack() })
		status, retryAfter := post(t, url, binary, "{}")
		require.Equal(t, http.StatusServiceUnavailable, status)
		require.Equal(t, "1", retryAfter)
	})
	t.Run("handler timeout: 503, message context canceled", func(t *testing.T) {
		canceled := make(chan struct{})
		handle(func(m *message.Message) {
			<-m.Context().Done()
			close(canceled)
		})
		status, _ := post(t, url, binary, "{}")
		require.Equal(t, http.StatusServiceUnavailable, status)
		<-canceled
	})
	t.Run("other topic: 503", func(t *testing.T) {
		status, _ := post(t, srv.URL+"/events/other", binary, "{}")
		require.Equal(t, http.StatusServiceUnavailable, status)
	})
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
		want   int
	}{
		{"body too long: 413", binary, strings.Repeat("x", 65), http.StatusRequestEntityTooLarge},
		{"missing id: 400", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}}, "{}", http.StatusBadRequest},
		{"spec 0.3: 400", http.Header{"Ce-Specversion": {"0.3"}, "Ce-Id": {"1"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}}, "{}", http.StatusBadRequest},
		{"bad time: 400", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}, "Ce-Time": {"now"}}, "{}", http.StatusBadRequest},
		{"not UTF-8: 400", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"%C0%A0"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}}, "{}", http.StatusBadRequest},
		{"structured not JSON: 400", http.Header{"Content-Type": {"application/cloudevents+json"}}, "{", http.StatusBadRequest},
		{"batch: 415", http.Header{"Content-Type": {"application/cloudevents-batch+json"}}, "[]", http.StatusUnsupportedMediaType},
		{"raw bad metadata: 400", http.Header{"Switchyard-Metadata": {"[1]"}}, "x", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _ := post(t, url, tc.header, tc.body)
			require.Equal(t, tc.want, status)
		})
	}
	t.Run("GET: 405", func(t *testing.T) {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/events/chat", nil))
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
		require.Equal(t, "POST", rec.Header().Get("Allow"))
	})
	t.Run("no topic in the path: 404", func(t *testing.T) {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/events/", strings.NewReader("x")))
		require.Equal(t, http.StatusNotFound, rec.Code)
	})
}

func TestReceiverFixedTopic(t *testing.T) {
	r := newReceiver(t, httptransport.ReceiverConfig{Topic: "inbound"})
	msgs := subscribe(t, r, "inbound")
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	go func() { (<-msgs).Ack() }()
	status, _ := post(t, srv.URL+"/anything", http.Header{"Switchyard-Id": {"m-1"}}, "payload")
	require.Equal(t, http.StatusNoContent, status)
}

func TestReceiverAuthentication(t *testing.T) {
	t.Run("bearer token", func(t *testing.T) {
		r := newReceiver(t, httptransport.ReceiverConfig{BearerToken: "s3cret"})
		srv := mount(t, r)
		msgs := subscribe(t, r, "chat")
		for _, tc := range []struct {
			auth string
			want int
		}{{"", 401}, {"Bearer wrong", 401}, {"Basic s3cret", 401}, {"Bearer s3cret", 204}, {"bearer s3cret", 204}} {
			if tc.want == 204 {
				go func() { (<-msgs).Ack() }()
			}
			status, _ := post(t, srv.URL+"/events/chat", http.Header{"Authorization": {tc.auth}}, "x")
			assert.Equal(t, tc.want, status, "Authorization: %q", tc.auth)
		}
	})
	t.Run("publisher and receiver sharing a token", func(t *testing.T) {
		r := newReceiver(t, httptransport.ReceiverConfig{BearerToken: "s3cret"})
		srv := mount(t, r)
		msgs := subscribe(t, r, "chat")
		go func() { (<-msgs).Ack() }()
		p := newPublisher(t, httptransport.Config{URL: srv.URL + "/events/{topic}", Headers: map[string]string{"Authorization": "Bearer s3cret"}})
		require.NoError(t, p.Publish("chat", newMessage("m-1")))
		wrong := newPublisher(t, httptransport.Config{URL: srv.URL + "/events/{topic}"})
		err := wrong.Publish("chat", newMessage("m-2"))
		require.ErrorIs(t, err, httptransport.ErrPermanent)
	})
	t.Run("HMAC signature", func(t *testing.T) {
		r := newReceiver(t, httptransport.ReceiverConfig{HMACSecret: "k1"})
		srv := mount(t, r)
		msgs := subscribe(t, r, "chat")
		for _, format := range []httptransport.Format{httptransport.FormatBinary, httptransport.FormatStructured, httptransport.FormatRaw} {
			go func() { (<-msgs).Ack() }()
			p := newPublisher(t, httptransport.Config{URL: srv.URL + "/events/{topic}", Format: format, HMACSecret: "k1"})
			require.NoError(t, p.Publish("chat", newMessage("m-1")), format)
			wrong := newPublisher(t, httptransport.Config{URL: srv.URL + "/events/{topic}", Format: format, HMACSecret: "k2"})
			var se *httptransport.StatusError
			require.ErrorAs(t, wrong.Publish("chat", newMessage("m-2")), &se)
			require.Equal(t, http.StatusUnauthorized, se.Code)
		}
		status, _ := post(t, srv.URL+"/events/chat", nil, "unsigned")
		require.Equal(t, http.StatusUnauthorized, status)
	})
}

// The subscriptions of a topic share its requests: each message reaches one.
func TestReceiverSubscriptionsCompete(t *testing.T) {
	r := newReceiver(t, httptransport.ReceiverConfig{})
	srv := mount(t, r)
	a, b := subscribe(t, r, "chat"), subscribe(t, r, "chat")
	p := newPublisher(t, httptransport.Config{URL: srv.URL + "/events/{topic}"})

	got := make(chan string, 20)
	for _, ch := range []<-chan *message.Message{a, b} {
		go func() {
			for m := range ch {
				got <- m.UUID
				m.Ack()
			}
		}()
	}
	for i := range 20 {
		require.NoError(t, p.Publish("chat", newMessage(string(rune('a'+i)))))
	}
	seen := map[string]int{}
	for range 20 {
		seen[<-got]++
	}
	require.Len(t, seen, 20)
	for id, n := range seen {
		require.Equal(t, 1, n, id)
	}
}

func TestReceiverSubscriptionEndingMidMessage(t *testing.T) {
	r := newReceiver(t, httptransport.ReceiverConfig{HandlerTimeout: 10 * time.Second})
	srv := mount(t, r)
	ctx, cancel := context.WithCancel(t.Context())
	msgs, err := r.Subscribe(ctx, "chat")
	require.NoError(t, err)

	statusCh := make(chan int, 1)
	go func() {
		status, _ := post(t, srv.URL+"/events/chat", http.Header{"Switchyard-Id": {"m-1"}}, "x")
		statusCh <- status
	}()
	m := <-msgs
	cancel()
	<-m.Context().Done() // the handler is told to stop
	require.Equal(t, http.StatusServiceUnavailable, <-statusCh, "the sender keeps it and retries")
	_, open := <-msgs
	require.False(t, open)
}

func TestReceiverClose(t *testing.T) {
	r, err := httptransport.NewReceiver(httptransport.ReceiverConfig{HandlerTimeout: 10 * time.Second}, nil)
	require.NoError(t, err)
	srv := mount(t, r)
	msgs := subscribe(t, r, "chat")

	statusCh := make(chan int, 1)
	go func() {
		status, _ := post(t, srv.URL+"/events/chat", http.Header{"Switchyard-Id": {"m-1"}}, "x")
		statusCh <- status
	}()
	m := <-msgs
	require.NoError(t, r.Close())
	<-m.Context().Done()
	require.Equal(t, http.StatusServiceUnavailable, <-statusCh, "in flight")
	_, open := <-msgs
	require.False(t, open, "closed when Close returns")

	status, _ := post(t, srv.URL+"/events/chat", nil, "x")
	require.Equal(t, http.StatusServiceUnavailable, status, "after Close")
	_, err = r.Subscribe(t.Context(), "chat")
	require.ErrorIs(t, err, httptransport.ErrClosed)
	require.NoError(t, r.Close(), "idempotent")
}

func TestReceiverSubscriberHandle(t *testing.T) {
	r := newReceiver(t, httptransport.ReceiverConfig{})
	h1, h2 := r.Subscriber(), r.Subscriber()
	m1 := subscribe(t, h1, "chat")
	m2 := subscribe(t, h2, "chat")

	require.NoError(t, h1.Close())
	_, open := <-m1
	require.False(t, open, "h1's subscription ended")
	_, err := h1.Subscribe(t.Context(), "chat")
	require.ErrorIs(t, err, httptransport.ErrClosed)

	srv := mount(t, r)
	go func() { (<-m2).Ack() }()
	status, _ := post(t, srv.URL+"/events/chat", nil, "x")
	require.Equal(t, http.StatusNoContent, status, "h2 and the receiver go on")
}

func TestReceiverQueueMode(t *testing.T) {
	r := newReceiver(t, httptransport.ReceiverConfig{QueueSize: 3, HandlerTimeout: 10 * time.Second})
	srv := mount(t, r)
	url := srv.URL + "/events/chat"

	status, _ := post(t, url, nil, "x")
	require.Equal(t, http.StatusServiceUnavailable, status, "a topic no one declared is not queued")

	require.NoError(t, r.SubscribeInitialize("chat"))
	for _, id := range []string{"1", "2", "3"} {
		status, _ := post(t, url, http.Header{"Switchyard-Id": {id}}, "x")
		require.Equal(t, http.StatusAccepted, status)
	}
	status, retryAfter := post(t, url, http.Header{"Switchyard-Id": {"4"}}, "x")
	require.Equal(t, http.StatusServiceUnavailable, status, "full")
	require.Equal(t, "1", retryAfter)

	msgs := subscribe(t, r, "chat")
	first := <-msgs
	require.Equal(t, "1", first.UUID)
	first.Nack()
	var order []string
	for range 3 {
		m := <-msgs
		order = append(order, m.UUID)
		m.Ack()
	}
	require.Equal(t, []string{"1", "2", "3"}, order, "in order, the nacked one again first")
}

func TestNewReceiverConfigErrors(t *testing.T) {
	_, err := httptransport.NewReceiver(httptransport.ReceiverConfig{MaxBodyBytes: -1, HandlerTimeout: -1, QueueSize: -1}, nil)
	require.ErrorContains(t, err, "max_body_bytes")
	require.ErrorContains(t, err, "handler_timeout")
	require.ErrorContains(t, err, "queue_size")
}
