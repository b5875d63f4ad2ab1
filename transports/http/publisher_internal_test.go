package httptransport

import (
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
)

// lingeringTransport answers 503 to the first request and 204 to the
// others, and, like http.Transport when a response (or a timeout) comes
// before the request is written, goes on reading each request's headers
// after RoundTrip returned.
type lingeringTransport struct {
	mu      sync.Mutex
	headers []http.Header
	reading sync.WaitGroup
}

func (l *lingeringTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.headers = append(l.headers, req.Header)
	n := len(l.headers)
	l.mu.Unlock()
	l.reading.Go(func() {
		for range 1000 {
			_ = req.Header.Get(headerSignature)
			time.Sleep(10 * time.Microsecond)
		}
	})
	status := http.StatusNoContent
	if n == 1 {
		status = http.StatusServiceUnavailable
	}
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}}, nil
}

// With hmac_secret each attempt signs a header map of its own: a Transport
// may still be writing an earlier attempt's request when the next one signs
// (under -race, a shared map is a data race; without it, the maps must
// differ).
func TestPublishSignsEachAttemptOnItsOwnHeaders(t *testing.T) {
	p, err := NewPublisher(Config{URL: "http://hub.example/events/{topic}", HMACSecret: "k",
		RetryBackoff: time.Millisecond, MaxRetryBackoff: time.Millisecond}, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	rt := &lingeringTransport{}
	p.rt = rt

	require.NoError(t, p.Publish("chat", message.NewMessage("m-1", []byte(`{}`))))
	rt.reading.Wait()

	require.Len(t, rt.headers, 2)
	require.NotEqual(t, reflect.ValueOf(rt.headers[0]).UnsafePointer(), reflect.ValueOf(rt.headers[1]).UnsafePointer(),
		"each attempt has its own header map")
	for _, h := range rt.headers {
		require.NotEmpty(t, h.Get(headerSignature))
		require.Equal(t, "chat", h.Get(headerTopic))
	}
}
