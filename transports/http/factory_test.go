package httptransport_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/go-viper/mapstructure/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// decodeFrom stands in for the bus's koanf decoding of a transport section:
// koanf tags, durations from strings, unknown keys an error naming them.
func decodeFrom(section map[string]any) func(any) error {
	return func(target any) error {
		d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			TagName:          "koanf",
			ErrorUnused:      true,
			WeaklyTypedInput: true,
			DecodeHook:       mapstructure.StringToTimeDurationHookFunc(),
			Result:           target,
		})
		if err != nil {
			return err
		}
		return d.Decode(section)
	}
}

func build(t *testing.T, section map[string]any) (transports.Transport, error) {
	t.Helper()
	return buildOn(t, prometheus.NewRegistry(), section)
}

// buildOn builds section with reg as the Settings' registerer.
func buildOn(t *testing.T, reg prometheus.Registerer, section map[string]any) (transports.Transport, error) {
	t.Helper()
	r := transports.NewRegistry()
	r.Register(httptransport.Name, httptransport.Factory)
	factory, err := r.Lookup("http")
	require.NoError(t, err)
	return factory(transports.Settings{
		Name:       "http",
		Decode:     decodeFrom(section),
		Logger:     watermill.NopLogger{},
		Registerer: reg,
	})
}

func TestRegisteredByInit(t *testing.T) {
	require.Contains(t, transports.Names(), httptransport.Name)
}

func TestFactoryBuildsAPublisher(t *testing.T) {
	type request struct{ path, auth string }
	requests := make(chan request, 1)
	srv := newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		requests <- request{r.URL.Path, r.Header.Get("Authorization")}
		w.WriteHeader(http.StatusNoContent)
	})
	tr, err := build(t, map[string]any{
		"url":     srv.URL + "/api/v1/events/{topic}",
		"timeout": "2s",
		"format":  "cloudevents-structured",
		"headers": map[string]any{"authorization": "Bearer t"},
		"tls":     map[string]any{"insecure_skip_verify": false},
	})
	require.NoError(t, err)
	require.NotNil(t, tr.Publisher)
	require.Nil(t, tr.Subscriber, "no receiver: section, no subscriber")
	require.NoError(t, tr.Publisher.Publish("events:chat", newMessage("m-1")))
	require.Equal(t, request{"/api/v1/events/events:chat", "Bearer t"}, <-requests)
	require.NoError(t, tr.Publisher.Close())
}

func TestFactoryConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		section map[string]any
		want    string
	}{
		{"unknown key", map[string]any{"url": "http://h/", "timout": "1s"}, "timout"},
		{"no url", map[string]any{}, "url: must be set"},
		{"bad format", map[string]any{"url": "http://h/", "format": "xml"}, "format"},
		{"negative retries backoff", map[string]any{"url": "http://h/", "retry_backoff": "-1s"}, "retry_backoff: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := build(t, tc.section)
			require.ErrorContains(t, err, "httptransport: config: ")
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, tr.Publisher)
		})
	}
}

// publishAndReceive publishes one message with pub to topic and checks that
// it arrives on sub, and that Publish returns only once the handler acked
// it: a sender's success means the consumer has the message.
func publishAndReceive(t *testing.T, pub message.Publisher, sub message.Subscriber, topic string) {
	t.Helper()
	msgs := subscribe(t, sub, topic)
	sent := newMessage("m-" + topic)
	done := make(chan error, 1)
	go func() { done <- pub.Publish(topic, sent) }()
	var got *message.Message
	select {
	case got = <-msgs:
	case <-time.After(5 * time.Second):
		t.Fatal("the message did not arrive")
	}
	require.Equal(t, sent.UUID, got.UUID)
	require.Equal(t, sent.Metadata.Get("event_type"), got.Metadata.Get("event_type"))
	require.Equal(t, string(sent.Payload), string(got.Payload))
	select {
	case err := <-done:
		t.Fatalf("Publish returned before the ack: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	got.Ack()
	require.NoError(t, <-done)
}

func closeTransport(t *testing.T, tr transports.Transport) {
	t.Helper()
	if tr.Publisher != nil {
		require.NoError(t, tr.Publisher.Close())
	}
	if tr.Subscriber != nil {
		require.NoError(t, tr.Subscriber.Close())
	}
}

func TestFactoryReceiverListens(t *testing.T) {
	hub, err := build(t, map[string]any{
		"receiver": map[string]any{"listen": "127.0.0.1:0", "handler_timeout": "5s"},
	})
	require.NoError(t, err)
	require.Nil(t, hub.Publisher, "a receiver-only section has no publisher")
	server, ok := hub.Subscriber.(*httptransport.Server)
	require.True(t, ok, "with listen the subscriber is a *Server, got %T", hub.Subscriber)
	require.Implements(t, (*http.Handler)(nil), hub.Subscriber)
	hubURL := "http://" + server.Addr().String()

	// An app publishes to the hub, in the default format (CloudEvents
	// binary), and receives on a server of its own too.
	app, err := build(t, map[string]any{
		"url":      hubURL + "/api/v1/events/{topic}",
		"receiver": map[string]any{"listen": "127.0.0.1:0", "path": "POST /in/{topic}"},
	})
	require.NoError(t, err)
	require.NotNil(t, app.Publisher)
	publishAndReceive(t, app.Publisher, hub.Subscriber, "events:chat")

	// The app's own receiver serves its configured path only.
	appServer := app.Subscriber.(*httptransport.Server)
	toApp := newPublisher(t, httptransport.Config{URL: "http://" + appServer.Addr().String() + "/in/{topic}"})
	publishAndReceive(t, toApp, app.Subscriber, "inbound")
	status, _ := post(t, "http://"+appServer.Addr().String()+"/api/v1/events/inbound", nil, "{}")
	require.Equal(t, http.StatusNotFound, status)

	// Closing the subscriber shuts its server down.
	closeTransport(t, hub)
	_, err = net.Dial("tcp", server.Addr().String())
	require.Error(t, err, "the server still accepts connections after Close")
	require.NoError(t, hub.Subscriber.Close(), "Close is idempotent")
	closeTransport(t, app)
}

func TestFactoryReceiverMounted(t *testing.T) {
	tr, err := build(t, map[string]any{
		"receiver": map[string]any{"handler_timeout": "5s", "bearer_token": "secret"},
	})
	require.NoError(t, err)
	require.Nil(t, tr.Publisher)
	t.Cleanup(func() { closeTransport(t, tr) })
	handler, ok := tr.Subscriber.(http.Handler)
	require.True(t, ok, "the subscriber must be an http.Handler to mount, got %T", tr.Subscriber)
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/events/{topic}", handler)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, format := range []httptransport.Format{httptransport.FormatBinary, httptransport.FormatStructured, httptransport.FormatRaw} {
		t.Run(string(format), func(t *testing.T) {
			pub := newPublisher(t, httptransport.Config{URL: srv.URL + "/api/v1/events/{topic}", Format: format,
				Headers: map[string]string{"Authorization": "Bearer secret"}})
			publishAndReceive(t, pub, tr.Subscriber, "events:"+string(format))
		})
	}
	t.Run("the receiver keys apply", func(t *testing.T) {
		status, _ := post(t, srv.URL+"/api/v1/events/x", nil, "{}")
		require.Equal(t, http.StatusUnauthorized, status)
	})
}

func TestFactoryReceiverConfigErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = busy.Close() })

	for _, tc := range []struct {
		name    string
		section map[string]any
		want    []string
	}{
		{"neither url nor receiver", map[string]any{"timeout": "1s"}, []string{"url: must be set"}},
		{"publisher keys without url", map[string]any{"timeout": "1s", "receiver": map[string]any{}},
			[]string{"url: must be set: the section has publisher keys"}},
		{"unknown receiver key", map[string]any{"receiver": map[string]any{"lsten": ":1"}}, []string{"lsten"}},
		{"listen not host:port", map[string]any{"receiver": map[string]any{"listen": "5001"}},
			[]string{"receiver.listen: must be host:port"}},
		{"listen taken", map[string]any{"receiver": map[string]any{"listen": busy.Addr().String()}},
			[]string{"receiver.listen: listen tcp", "address already in use"}},
		{"bad path", map[string]any{"receiver": map[string]any{"listen": "127.0.0.1:0", "path": "POST /events/{topic"}},
			[]string{"receiver.path: not a net/http ServeMux pattern"}},
		{"path without the wildcard", map[string]any{"receiver": map[string]any{"listen": "127.0.0.1:0", "path": "POST /events"}},
			[]string{"receiver.path: has no {topic} wildcard"}},
		{"path without the renamed wildcard", map[string]any{"receiver": map[string]any{"listen": "127.0.0.1:0",
			"path": "POST /events/{topic}", "path_value": "name"}}, []string{"receiver.path: has no {name} wildcard"}},
		{"server keys without listen", map[string]any{"receiver": map[string]any{"path": "/x/{topic}", "shutdown_timeout": "1s"}},
			[]string{"receiver.path: only with listen", "receiver.shutdown_timeout: only with listen"}},
		{"every receiver error, each by key", map[string]any{"receiver": map[string]any{"listen": "127.0.0.1:0",
			"handler_timeout": "-1s", "queue_size": -1, "read_timeout": "-1s"}},
			[]string{"receiver.handler_timeout: must not be negative", "receiver.queue_size: must not be negative",
				"receiver.read_timeout: must not be negative"}},
		{"a bad publisher and a bad receiver", map[string]any{"url": "http://h/", "format": "xml",
			"receiver": map[string]any{"max_body_bytes": -1}}, []string{"format: must be", "receiver.max_body_bytes: must not be negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := build(t, tc.section)
			require.ErrorContains(t, err, "httptransport: config: ")
			for _, want := range tc.want {
				require.ErrorContains(t, err, want)
			}
			require.Nil(t, tr.Publisher)
			require.Nil(t, tr.Subscriber)
		})
	}
}
