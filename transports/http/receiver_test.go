package httptransport_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
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

// postInBackground posts as post does, from a goroutine of its own, and
// sends the status on the channel it returns: 0 when the request failed
// (require may not stop a test from another goroutine).
func postInBackground(t *testing.T, url string, header http.Header, body string) <-chan int {
	t.Helper()
	statusCh := make(chan int, 1)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			statusCh <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		statusCh <- resp.StatusCode
	}()
	return statusCh
}

// Publisher → Receiver gives back exactly the UUID, the metadata and the
// payload, in every format, whatever the metadata keys and values; the
// CloudEvents formats add the event's source and datacontenttype as
// ce_source and ce_datacontenttype, unless the metadata had them already
// (then they were the event's).
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
		"relayed attributes": {
			"event_type": "t", "ce_source": "https://rooms.example/7", "ce_datacontenttype": "text/plain; charset=utf-8",
			"ce_dataschema": "https://schemas.example/t.json", "ce_topic": "their-topic",
		},
		"unusable attributes": {
			"event_type": "t", "ce_source": "", "ce_datacontenttype": ";;", "ce_dataschema": "not absolute", "ce_topic": "events:chat",
			"ce_other": "x",
		},
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
						want := maps.Clone(map[string]string(sent.Metadata))
						if format != httptransport.FormatRaw {
							if _, ok := want["ce_source"]; !ok {
								want["ce_source"] = "switchyard"
							}
							if _, ok := want["ce_datacontenttype"]; !ok {
								want["ce_datacontenttype"] = contentType
							}
						}
						assert.Equal(t, want, map[string]string(got.Metadata), "%s / %s", mdName, payloadName)
						assert.True(t, bytes.Equal(sent.Payload, got.Payload), "%s / %s: %q", mdName, payloadName, got.Payload)
					}
				}
			})
		}
	}
}

func TestReceiverAnswers(t *testing.T) {
	binary := http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}, "Content-Type": {"application/json"}}
	r := newReceiver(t, httptransport.ReceiverConfig{HandlerTimeout: 200 * time.Millisecond, MaxBodyBytes: 256})
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
		{"body too long: 413", binary, strings.Repeat("x", 257), http.StatusRequestEntityTooLarge},
		{"missing id: 400", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}}, "{}", http.StatusBadRequest},
		{"spec 0.3: 400", http.Header{"Ce-Specversion": {"0.3"}, "Ce-Id": {"1"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}}, "{}", http.StatusBadRequest},
		{"bad time: 400", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}, "Ce-Time": {"now"}}, "{}", http.StatusBadRequest},
		{"not UTF-8: 400", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"%C0%A0"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}}, "{}", http.StatusBadRequest},
		{"structured not JSON: 400", http.Header{"Content-Type": {"application/cloudevents+json"}}, "{", http.StatusBadRequest},
		{"batch: 415", http.Header{"Content-Type": {"application/cloudevents-batch+json"}}, "[]", http.StatusUnsupportedMediaType},
		{"raw bad metadata: 400", http.Header{"Switchyard-Metadata": {"[1]"}}, "x", http.StatusBadRequest},
		{"time with a comma: 400", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"s"}, "Ce-Type": {"t"},
			"Ce-Time": {"2026-01-02T03:04:05,123Z"}}, "{}", http.StatusBadRequest},
		{"extension name with a dash: 400", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"s"}, "Ce-Type": {"t"},
			"Ce-Request-Id": {"r"}}, "{}", http.StatusBadRequest},
		{"extension name with an underscore: 400", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"s"}, "Ce-Type": {"t"},
			"Ce-Request_id": {"r"}}, "{}", http.StatusBadRequest},
		{"structured extension name with capitals: 400", http.Header{"Content-Type": {"application/cloudevents+json"}},
			`{"specversion":"1.0","id":"1","source":"s","type":"t","requestId":"r"}`, http.StatusBadRequest},
		{"structured time with a comma: 400", http.Header{"Content-Type": {"application/cloudevents+json"}},
			`{"specversion":"1.0","id":"1","source":"s","type":"t","time":"2026-01-02T03:04:05,1Z"}`, http.StatusBadRequest},
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

	statusCh := postInBackground(t, srv.URL+"/events/chat", http.Header{"Switchyard-Id": {"m-1"}}, "x")
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

	statusCh := postInBackground(t, srv.URL+"/events/chat", http.Header{"Switchyard-Id": {"m-1"}}, "x")
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

// A signature binds the topic: a request signed for one topic is refused on
// any other, in every format, and the signed topic cannot be stripped or
// changed. Replaying it to the same topic within signature_tolerance is
// accepted (documented: receivers dedupe by id).
func TestReceiverHMACBindsTheTopic(t *testing.T) {
	type captured struct {
		header http.Header
		body   string
	}
	for _, format := range []httptransport.Format{httptransport.FormatBinary, httptransport.FormatStructured, httptransport.FormatRaw} {
		t.Run(string(format), func(t *testing.T) {
			requests := make(chan captured, 1)
			capture := newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				requests <- captured{r.Header.Clone(), string(body)}
				w.WriteHeader(http.StatusNoContent)
			})
			p := newPublisher(t, httptransport.Config{URL: capture.URL + "/events/{topic}", Format: format, HMACSecret: "k"})
			require.NoError(t, p.Publish("chat", newMessage("m-1")))
			signed := <-requests

			r := newReceiver(t, httptransport.ReceiverConfig{HMACSecret: "k", HandlerTimeout: 200 * time.Millisecond})
			srv := mount(t, r)
			var delivered sync.Map // topic → count
			for _, topic := range []string{"chat", "admin"} {
				msgs := subscribe(t, r, topic)
				go func() {
					for m := range msgs {
						n, _ := delivered.LoadOrStore(topic, new(atomic.Int64))
						n.(*atomic.Int64).Add(1)
						m.Ack()
					}
				}()
			}

			status, _ := post(t, srv.URL+"/events/admin", signed.header, signed.body)
			assert.Equal(t, http.StatusUnauthorized, status, "signed for chat, sent to admin")
			changed := signed.header.Clone()
			changed.Set("Switchyard-Topic", "admin")
			status, _ = post(t, srv.URL+"/events/admin", changed, signed.body)
			assert.Equal(t, http.StatusUnauthorized, status, "the signed topic header is covered")
			stripped := signed.header.Clone()
			stripped.Del("Switchyard-Topic")
			status, _ = post(t, srv.URL+"/events/chat", stripped, signed.body)
			assert.Equal(t, http.StatusUnauthorized, status, "a signature must name its topic")
			_, ok := delivered.Load("admin")
			assert.False(t, ok, "nothing reached admin")

			status, _ = post(t, srv.URL+"/events/chat", signed.header, signed.body)
			assert.Equal(t, http.StatusNoContent, status, "the same topic within the tolerance: a replay, deduped by id")
		})
	}
	t.Run("fixed topic", func(t *testing.T) {
		r := newReceiver(t, httptransport.ReceiverConfig{Topic: "inbound", HMACSecret: "k"})
		msgs := subscribe(t, r, "inbound")
		srv := httptest.NewServer(r)
		t.Cleanup(srv.Close)
		go func() {
			for m := range msgs {
				m.Ack()
			}
		}()
		p := newPublisher(t, httptransport.Config{URL: srv.URL, HMACSecret: "k"})
		require.NoError(t, p.Publish("inbound", newMessage("m-1")))
		var se *httptransport.StatusError
		require.ErrorAs(t, p.Publish("other", newMessage("m-2")), &se)
		require.Equal(t, http.StatusUnauthorized, se.Code)
	})
}

// queue posts a raw message straight to r's ServeHTTP, with no network, so
// that it can run in a synctest bubble.
func queue(t *testing.T, r *httptransport.Receiver, topic, id string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/events/"+topic, strings.NewReader("payload of "+id))
	req.SetPathValue("topic", topic)
	req.Header.Set("Switchyard-Id", id)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec.Code
}

// newQueueReceiver makes a queue-mode Receiver inside the caller's bubble,
// with topic "chat" declared. The test's subscriptions end before it is
// closed, so what they left queued is reported then, not delivered.
func newQueueReceiver(t *testing.T, cfg httptransport.ReceiverConfig) *httptransport.Receiver {
	t.Helper()
	cfg.QueueSize = 10
	r, err := httptransport.NewReceiver(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			require.ErrorIs(t, err, httptransport.ErrCloseTimeout)
		}
	})
	require.NoError(t, r.SubscribeInitialize("chat"))
	return r
}

// A nacked message is delivered again after a wait that doubles at each
// failure, up to max_retry_backoff, not at once (one poison message used to
// be redelivered 70,000 times in 200 ms).
func TestReceiverQueueBacksOffBetweenRedeliveries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newQueueReceiver(t, httptransport.ReceiverConfig{
			MaxRetries: 6, RetryBackoff: 100 * time.Millisecond, MaxRetryBackoff: 300 * time.Millisecond,
		})
		require.Equal(t, http.StatusAccepted, queue(t, r, "chat", "poison"))
		require.Equal(t, http.StatusAccepted, queue(t, r, "chat", "next"))
		msgs := subscribe(t, r, "chat")

		start := time.Now()
		var at []time.Duration
		for range 7 {
			m := <-msgs
			require.Equal(t, "poison", m.UUID, "the head of the queue blocks it: order is kept")
			at = append(at, time.Since(start))
			m.Nack()
		}
		ms := time.Millisecond
		require.Equal(t, []time.Duration{0, 100 * ms, 300 * ms, 600 * ms, 900 * ms, 1200 * ms, 1500 * ms}, at)
	})
}

// Past max_retries a message goes to DeadLetter and the queue moves on; a
// DeadLetter that fails keeps it.
func TestReceiverQueueDeadLetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type dead struct{ topic, id, payload string }
		deadLetters := make(chan dead, 2)
		fail := true
		r := newQueueReceiver(t, httptransport.ReceiverConfig{
			MaxRetries: 2, RetryBackoff: 10 * time.Millisecond,
			DeadLetter: func(topic string, msg *message.Message) error {
				if fail {
					fail = false
					return errors.New("dead-letter store down")
				}
				deadLetters <- dead{topic, msg.UUID, string(msg.Payload)}
				return nil
			},
		})
		require.Equal(t, http.StatusAccepted, queue(t, r, "chat", "poison"))
		require.Equal(t, http.StatusAccepted, queue(t, r, "chat", "next"))
		msgs := subscribe(t, r, "chat")

		for range 3 { // the delivery and max_retries redeliveries
			m := <-msgs
			require.Equal(t, "poison", m.UUID)
			m.Nack()
		}
		synctest.Wait()
		require.Empty(t, deadLetters, "DeadLetter failed: the message stays")
		m := <-msgs
		require.Equal(t, "poison", m.UUID)
		m.Nack()
		require.Equal(t, dead{"chat", "poison", "payload of poison"}, <-deadLetters)
		m = <-msgs
		require.Equal(t, "next", m.UUID, "the queue moved on")
		m.Ack()
	})
}

// A handler that timed out has its context canceled, and its message is
// not delivered again while that handler may still run: an ack after the
// timeout counts; a nack leads to a redelivery after the backoff.
func TestReceiverQueueWaitsForATimedOutHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newQueueReceiver(t, httptransport.ReceiverConfig{HandlerTimeout: time.Second, RetryBackoff: 100 * time.Millisecond})
		for _, id := range []string{"1", "2"} {
			require.Equal(t, http.StatusAccepted, queue(t, r, "chat", id))
		}
		msgs := subscribe(t, r, "chat")
		noDelivery := func(why string) {
			t.Helper()
			synctest.Wait()
			select {
			case m := <-msgs:
				t.Fatalf("%s: %s delivered", why, m.UUID)
			default:
			}
		}

		start := time.Now()
		slow := <-msgs
		require.Equal(t, "1", slow.UUID)
		<-slow.Context().Done()
		require.Equal(t, time.Second, time.Since(start), "told to stop at handler_timeout")
		time.Sleep(10 * time.Second)
		noDelivery("the timed-out handler has not acked or nacked")
		slow.Ack()
		m := <-msgs
		require.Equal(t, "2", m.UUID, "acked after its timeout: not delivered again")

		<-m.Context().Done()
		time.Sleep(time.Second)
		noDelivery("the timed-out handler has not acked or nacked")
		m.Nack()
		start = time.Now()
		again := <-msgs
		require.Equal(t, "2", again.UUID, "nacked after its timeout: delivered again")
		require.Equal(t, 100*time.Millisecond, time.Since(start), "after the backoff")
		again.Ack()
	})
}

// A binary-mode Content-Type that is not UTF-8 would become metadata
// (ce_datacontenttype) that no Publisher can send on: it is refused with
// 400 at once, in both modes, rather than taken and failed later.
func TestReceiverRefusesContentTypeNotUTF8(t *testing.T) {
	header := http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}, "Content-Type": {"\xd8"}}
	for _, queueSize := range []int{0, 4} {
		r := newReceiver(t, httptransport.ReceiverConfig{QueueSize: queueSize})
		srv := mount(t, r)
		msgs := subscribe(t, r, "chat")
		status := postInBackground(t, srv.URL+"/events/chat", header, "{}")
		select {
		case got := <-status:
			require.Equal(t, http.StatusBadRequest, got, "queue_size %d", queueSize)
		case m := <-msgs:
			m.Ack()
			<-status
			t.Fatalf("queue_size %d: the message was taken, with ce_datacontenttype %q", queueSize, m.Metadata.Get("ce_datacontenttype"))
		}
	}
}
