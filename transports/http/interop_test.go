package httptransport_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/stretchr/testify/require"

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// Interop with a client nobody here wrote: the CloudEvents Go SDK.

var encodings = map[string]func(context.Context) context.Context{
	"binary":     cloudevents.WithEncodingBinary,
	"structured": cloudevents.WithEncodingStructured,
}

// sdkClient is an SDK client with a transport of its own, whose idle
// connections the test closes.
func sdkClient(t *testing.T) cloudevents.Client {
	t.Helper()
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	c, err := cloudevents.NewClientHTTP(cehttp.WithClient(http.Client{Transport: transport}))
	require.NoError(t, err)
	return c
}

func TestInteropSDKSendsToReceiver(t *testing.T) {
	for name, encoding := range encodings {
		t.Run(name, func(t *testing.T) {
			r := newReceiver(t, httptransport.ReceiverConfig{})
			srv := mount(t, r)
			msgs := subscribe(t, r, "events:chat")
			client := sdkClient(t)
			ctx := encoding(cloudevents.ContextWithTarget(t.Context(), srv.URL+"/events/events:chat"))

			published := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
			ev := cloudevents.NewEvent()
			ev.SetID("3f2c-41")
			ev.SetSource("https://hub.example.com/rooms")
			ev.SetType("chat_message")
			ev.SetSubject("conversation-7")
			ev.SetTime(published)
			ev.SetDataSchema("https://schemas.example/chat_message.json")
			ev.SetExtension("transport", "http")
			ev.SetExtension("attempt", 2)
			ev.SetExtension("topic", "rooms/7") // the SDK sender's own, not the Receiver's topic
			require.NoError(t, ev.SetData(cloudevents.ApplicationJSON, map[string]any{"text": "hello, world", "n": 1}))

			got := make(chan *message.Message, 1)
			go func() {
				m := <-msgs
				got <- m
				m.Ack()
			}()
			result := client.Send(ctx, ev)
			require.True(t, cloudevents.IsACK(result), "%v", result)

			m := <-got
			require.Equal(t, "3f2c-41", m.UUID)
			require.Equal(t, "chat_message", m.Metadata.Get("event_type"))
			require.Equal(t, "conversation-7", m.Metadata.Get("event_key"))
			at, err := time.Parse(time.RFC3339Nano, m.Metadata.Get("published_at"))
			require.NoError(t, err)
			require.True(t, published.Equal(at))
			require.Equal(t, "http", m.Metadata.Get("transport"))
			require.Equal(t, "2", m.Metadata.Get("attempt"))
			require.Equal(t, "https://hub.example.com/rooms", m.Metadata.Get("ce_source"))
			require.Equal(t, "application/json", m.Metadata.Get("ce_datacontenttype"))
			require.Equal(t, "https://schemas.example/chat_message.json", m.Metadata.Get("ce_dataschema"))
			require.Equal(t, "rooms/7", m.Metadata.Get("ce_topic"))
			require.Len(t, m.Metadata, 9, "%v", m.Metadata)
			require.JSONEq(t, `{"text":"hello, world","n":1}`, string(m.Payload))
			require.Equal(t, ev.Data(), []byte(m.Payload))

			// A nack reaches the SDK as a NACK with the status.
			go func() { (<-msgs).Nack() }()
			result = client.Send(ctx, ev)
			require.True(t, cloudevents.IsNACK(result), "%v", result)
			var httpResult *cehttp.Result
			require.True(t, cloudevents.ResultAs(result, &httpResult))
			require.Equal(t, http.StatusServiceUnavailable, httpResult.StatusCode)
		})
	}
}

var formats = map[string]httptransport.Format{"binary": httptransport.FormatBinary, "structured": httptransport.FormatStructured}

// sdkReceiver serves an SDK receive handler and returns its URL and the
// events it receives.
func sdkReceiver(t *testing.T) (string, <-chan cloudevents.Event) {
	t.Helper()
	received := make(chan cloudevents.Event, 1)
	protocol, err := cloudevents.NewHTTP()
	require.NoError(t, err)
	handler, err := cloudevents.NewHTTPReceiveHandler(t.Context(), protocol, func(ev cloudevents.Event) {
		received <- ev
	})
	require.NoError(t, err)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL, received
}

func TestInteropPublisherSendsToSDK(t *testing.T) {
	for name, format := range formats {
		t.Run(name, func(t *testing.T) {
			url, received := sdkReceiver(t)
			p := newPublisher(t, httptransport.Config{
				URL: url + "/hub/{topic}", Format: format, Source: "/switchyard/chat",
			})

			msg := message.NewMessage("5b0e-77", []byte(`{"text":"hello, world","n":1}`))
			msg.Metadata.Set("event_type", "typing")
			msg.Metadata.Set("event_key", "req-123")
			msg.Metadata.Set("published_at", "2026-01-02T03:04:05.123456789Z")
			msg.Metadata.Set("transport", "http")
			require.NoError(t, p.Publish("chat", msg))

			ev := <-received
			require.NoError(t, ev.Validate())
			require.Equal(t, "1.0", ev.SpecVersion())
			require.Equal(t, "5b0e-77", ev.ID())
			require.Equal(t, "/switchyard/chat", ev.Source())
			require.Equal(t, "typing", ev.Type())
			require.Equal(t, "req-123", ev.Subject())
			require.True(t, time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC).Equal(ev.Time()))
			require.Equal(t, "application/json", ev.DataContentType())
			require.Equal(t, map[string]any{"topic": "chat", "transport": "http"}, ev.Extensions(),
				"the bus's metadata needs no switchyardmetadata")
			require.JSONEq(t, `{"text":"hello, world","n":1}`, string(ev.Data()))
			require.Equal(t, msg.Payload, message.Payload(ev.Data()))

			// A message that carries the attributes (a relayed event) is
			// sent with them.
			msg = message.NewMessage("5b0e-78", []byte("hello"))
			msg.Metadata.Set("event_type", "typing")
			msg.Metadata.Set("ce_source", "https://rooms.example/7")
			msg.Metadata.Set("ce_datacontenttype", "text/plain; charset=utf-8")
			msg.Metadata.Set("ce_dataschema", "https://schemas.example/typing.txt")
			require.NoError(t, p.Publish("chat", msg))
			ev = <-received
			require.NoError(t, ev.Validate())
			require.Equal(t, "https://rooms.example/7", ev.Source())
			require.Equal(t, "text/plain; charset=utf-8", ev.DataContentType())
			require.Equal(t, "https://schemas.example/typing.txt", ev.DataSchema())
			require.Equal(t, map[string]any{"topic": "chat"}, ev.Extensions())
			require.Equal(t, "hello", string(ev.Data()))
		})
	}
}

// An event relayed SDK → Receiver → Publisher → SDK keeps its attributes:
// source, datacontenttype, dataschema and its extensions, its own topic
// extension included; nothing of ours is added.
func TestInteropRelayKeepsTheAttributes(t *testing.T) {
	for inName, encoding := range encodings {
		for outName, format := range formats {
			t.Run(inName+"→"+outName, func(t *testing.T) {
				r := newReceiver(t, httptransport.ReceiverConfig{})
				srv := mount(t, r)
				msgs := subscribe(t, r, "events:chat")
				url, received := sdkReceiver(t)
				p := newPublisher(t, httptransport.Config{URL: url + "/hub/{topic}", Format: format})
				relayed := make(chan error, 1)
				go func() {
					m := <-msgs
					relayed <- p.Publish("events:chat", m)
					m.Ack()
				}()

				sent := cloudevents.NewEvent()
				sent.SetID("3f2c-41")
				sent.SetSource("https://hub.example.com/rooms")
				sent.SetType("chat_message")
				sent.SetSubject("conversation-7")
				sent.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC))
				sent.SetDataSchema("https://schemas.example/chat_message.json")
				sent.SetExtension("topic", "rooms/7")
				sent.SetExtension("tenant", "acme")
				// Not application/json, the Publisher's content_type. (Not a
				// +json type either: the SDK takes only application/json and
				// text/json for JSON, and wants any other data as a string.)
				require.NoError(t, sent.SetData("text/json", map[string]any{"text": "hello"}))
				ctx := encoding(cloudevents.ContextWithTarget(t.Context(), srv.URL+"/events/events:chat"))
				result := sdkClient(t).Send(ctx, sent)
				require.True(t, cloudevents.IsACK(result), "%v", result)
				require.NoError(t, <-relayed)

				got := <-received
				require.NoError(t, got.Validate())
				require.Equal(t, sent.ID(), got.ID())
				require.Equal(t, sent.Source(), got.Source())
				require.Equal(t, sent.Type(), got.Type())
				require.Equal(t, sent.Subject(), got.Subject())
				require.True(t, sent.Time().Equal(got.Time()))
				require.Equal(t, sent.DataSchema(), got.DataSchema())
				require.Equal(t, sent.DataContentType(), got.DataContentType())
				require.Equal(t, map[string]any{"topic": "rooms/7", "tenant": "acme"}, got.Extensions())
				require.JSONEq(t, string(sent.Data()), string(got.Data()))
			})
		}
	}
}
