package httptransport_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// TestStructuredJSONMediaUnderText: a JSON media type under text/
// (text/json, text/x+json) with a payload that is not JSON as it is (not
// JSON at all, or with a trailing newline) reaches the handler byte for
// byte in the structured format, as in the others.
func TestStructuredJSONMediaUnderText(t *testing.T) {
	r, err := httptransport.NewReceiver(httptransport.ReceiverConfig{Topic: "chat"}, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = r.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := r.Subscribe(ctx, "chat")
	require.NoError(t, err)

	for _, contentType := range []string{"text/json", "text/vnd.chat+json"} {
		pub := newPublisher(t, httptransport.Config{URL: srv.URL, Format: httptransport.FormatStructured, ContentType: contentType})
		for _, payload := range []string{"{\"a\":1}\n", "hello", `{"a":1}`} {
			errs := make(chan error, 1)
			go func() { errs <- pub.Publish("chat", message.NewMessage("id-1", []byte(payload))) }()
			select {
			case m := <-ch:
				require.Equal(t, payload, string(m.Payload), "%s %q", contentType, payload)
				m.Ack()
			case <-time.After(5 * time.Second):
				t.Fatal("no message")
			}
			require.NoError(t, <-errs)
		}
	}
}
