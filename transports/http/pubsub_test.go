package httptransport_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// TestPubSub runs Watermill's universal suite over Publisher → loopback HTTP →
// Receiver.
//
// The suite publishes before it subscribes, from the goroutine that then
// subscribes, and expects what it published to wait for it: it assumes a
// broker. HTTP has none, and a Receiver that waits for its handler's ack (the
// default) would leave those Publish calls answered 503 until they fail. So
// the suite runs the Receiver in queue mode (queue_size), which answers 202
// once a message is in its memory and delivers it afterwards, again after
// each nack — the one configuration in which the suite's assumptions hold.
// What the default mode does (204 only after the ack, 503 otherwise) is
// tested in receiver_test.go and publisher_test.go.
//
// One Receiver, mounted on one loopback server, serves every instance the
// suite makes within a test: an instance is a new Publisher and a new
// Subscriber handle on that Receiver (many consumers behind one URL), so
// closing an instance ends its subscriptions, not the Receiver.
func TestPubSub(t *testing.T) {
	features := tests.Features{
		// One Receiver's subscriptions of a topic share its messages: there
		// is no way to give each group every message.
		ConsumerGroups: false,
		// At least once: a sender that gets no answer (timeout, connection
		// lost after the handler acked) sends again, and the consumer sees
		// the message twice. Consumers dedupe by UUID.
		ExactlyOnceDelivery: false,
		// Shown here only in queue mode, and only for one sender publishing
		// sequentially: Publish sends a call's messages one after another,
		// each once the previous one was answered, and a topic's queue is
		// handed out one message at a time, in order, redelivering a nacked
		// one before the next. Concurrent publishers are not ordered (HTTP
		// requests race), nor is the default mode, where a message answered
		// 503 is sent again while the next may already be handled.
		GuaranteedOrder:                     true,
		GuaranteedOrderWithSingleSubscriber: true,
		// Nothing survives the process: what a Receiver holds is in memory.
		Persistent: false,
		// Instances share the Receiver behind the URL (see above).
		RequireSingleInstance: false,
		// A delivered message is gone: there is no log to replay.
		NewSubscriberReceivesOldMessages: false,
		// Each delivery gets a context of the Receiver's (the request's, in
		// the default mode), not the publisher's: contexts do not cross HTTP.
		ContextPreserved: false,
	}
	var mu sync.Mutex
	shared := map[*testing.T]*endpoint{}
	tests.TestPubSub(t, features, func(t *testing.T) (message.Publisher, message.Subscriber) {
		mu.Lock()
		e, ok := shared[t]
		if !ok {
			e = newEndpoint(t)
			shared[t] = e
		}
		mu.Unlock()
		pub, err := httptransport.NewPublisher(httptransport.Config{
			URL: e.url + "/events/{topic}", Timeout: 10 * time.Second,
			RetryBackoff: time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond,
		}, nil)
		require.NoError(t, err)
		sub := e.receiver.Subscriber()
		// Some of the suite's tests leave an instance open.
		t.Cleanup(func() { _ = pub.Close(); _ = sub.Close() })
		return pub, sub
	}, nil)
}

// endpoint is a queue-mode Receiver mounted on a loopback server.
type endpoint struct {
	receiver *httptransport.Receiver
	url      string
}

func newEndpoint(t *testing.T) *endpoint {
	r, err := httptransport.NewReceiver(httptransport.ReceiverConfig{
		QueueSize:      100000,
		HandlerTimeout: 15 * time.Second,
		// TestContinueAfterErrors nacks one message 300 times and waits
		// 15 s at most for each redelivery.
		MaxRetries:      1000,
		RetryBackoff:    time.Millisecond,
		MaxRetryBackoff: 5 * time.Millisecond,
	}, nil)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("POST /events/{topic}", r)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = r.Close()
		srv.Close()
	})
	return &endpoint{receiver: r, url: srv.URL}
}
