package httptransport_test

import (
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// The contexts a Receiver gives its messages, waiting or queued, are the
// standard library's, so that a consumer deriving timeouts from them (the
// bus's retries do, per attempt) starts no goroutine to watch each.
func TestReceivedMessageContextsStartNoGoroutine(t *testing.T) {
	const derived = 200
	for _, queueSize := range []int{0, 4} {
		r := newReceiver(t, httptransport.ReceiverConfig{QueueSize: queueSize, HandlerTimeout: time.Minute})
		srv := mount(t, r)
		msgs := subscribe(t, r, "chat")
		status := postInBackground(t, srv.URL+"/events/chat", http.Header{"Switchyard-Id": {"m-1"}}, "{}")
		msg := <-msgs

		before := runtime.NumGoroutine()
		cancels := make([]context.CancelFunc, 0, derived)
		for range derived {
			_, cancel := context.WithTimeout(msg.Context(), time.Hour)
			cancels = append(cancels, cancel)
		}
		grown := runtime.NumGoroutine() - before
		for _, cancel := range cancels {
			cancel()
		}
		msg.Ack()
		require.Less(t, grown, derived/2, "queue_size %d: goroutines started by %d derived contexts", queueSize, derived)
		want := http.StatusNoContent
		if queueSize > 0 {
			want = http.StatusAccepted
		}
		require.Equal(t, want, <-status)
	}
}
