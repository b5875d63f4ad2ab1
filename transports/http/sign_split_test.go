package httptransport_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// TestReceiverHMACRefusesSplitHeaders: the signature covers a header's
// values joined with ",", and the Receiver reads a ce-* header's first
// value. So a signed header whose value holds a comma, split into two
// headers on the way, would still verify and deliver a value the sender
// never signed: such a request is refused.
func TestReceiverHMACRefusesSplitHeaders(t *testing.T) {
	type captured struct {
		header http.Header
		body   string
	}
	requests := make(chan captured, 1)
	capture := newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		requests <- captured{r.Header.Clone(), string(body)}
		w.WriteHeader(http.StatusNoContent)
	})
	p := newPublisher(t, httptransport.Config{URL: capture.URL + "/events/{topic}", HMACSecret: "k"})
	m := message.NewMessage("m-1", []byte("hi"))
	m.Metadata.Set("event_type", "grant")
	m.Metadata.Set("roles", "reader,admin")
	require.NoError(t, p.Publish("chat", m))
	signed := <-requests
	require.Equal(t, []string{"reader,admin"}, signed.header["Ce-Roles"])

	r := newReceiver(t, httptransport.ReceiverConfig{HMACSecret: "k"})
	srv := mount(t, r)
	msgs := subscribe(t, r, "chat")
	got := make(chan string, 2)
	go func() {
		for m := range msgs {
			got <- m.Metadata.Get("roles")
			m.Ack()
		}
	}()

	split := signed.header.Clone()
	split["Ce-Roles"] = []string{"reader", "admin"} // joined: what was signed
	status, _ := post(t, srv.URL+"/events/chat", split, signed.body)
	select {
	case v := <-got:
		t.Errorf("delivered with roles %q", v)
	default:
	}
	require.Equal(t, http.StatusUnauthorized, status, "a signed header split in two")

	status, _ = post(t, srv.URL+"/events/chat", signed.header, signed.body)
	require.Equal(t, http.StatusNoContent, status)
	require.Equal(t, "reader,admin", <-got)
}
