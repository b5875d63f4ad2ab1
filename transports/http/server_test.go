package httptransport_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

func newServerOn(t *testing.T, cfg httptransport.ServerConfig) (*httptransport.Server, string) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s, err := httptransport.NewServer(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, "http://" + s.Addr().String() + "/api/v1/events/"
}

// Close lets a request waiting for its handler finish: the sender gets the
// handler's answer, not a cut connection.
func TestServerCloseWaitsForRequestsInFlight(t *testing.T) {
	s, url := newServerOn(t, httptransport.ServerConfig{
		ReceiverConfig: httptransport.ReceiverConfig{HandlerTimeout: 5 * time.Second}, ShutdownTimeout: 5 * time.Second,
	})
	msgs := subscribe(t, s, "chat")
	status := postInBackground(t, url+"chat", nil, "{}")
	msg := <-msgs

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned before the request in flight was answered: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	msg.Ack()
	require.NoError(t, <-closed)
	require.Equal(t, http.StatusNoContent, <-status)
	_, open := <-msgs
	require.False(t, open, "Close ends the subscriptions")

	_, err := s.Subscribe(t.Context(), "chat")
	require.ErrorIs(t, err, httptransport.ErrClosed)
}

// A handler that never acks holds Close for ShutdownTimeout only; its
// request is answered 503, so its sender tries again.
func TestServerCloseIsBounded(t *testing.T) {
	s, url := newServerOn(t, httptransport.ServerConfig{
		ReceiverConfig: httptransport.ReceiverConfig{HandlerTimeout: time.Minute}, ShutdownTimeout: 100 * time.Millisecond,
	})
	msgs := subscribe(t, s, "chat")
	status := postInBackground(t, url+"chat", nil, "{}")
	<-msgs // and never acked

	start := time.Now()
	require.NoError(t, s.Close())
	require.Less(t, time.Since(start), 100*time.Millisecond+time.Second+500*time.Millisecond)
	require.Equal(t, http.StatusServiceUnavailable, <-status)
}

func TestNewServerConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  httptransport.ServerConfig
		want string
	}{
		{"no listen", httptransport.ServerConfig{}, "listen: must be set"},
		{"receiver key", httptransport.ServerConfig{Listen: "127.0.0.1:0", ReceiverConfig: httptransport.ReceiverConfig{QueueSize: -1}},
			"queue_size: must not be negative"},
		{"negative shutdown_timeout", httptransport.ServerConfig{Listen: "127.0.0.1:0", ShutdownTimeout: -time.Second},
			"shutdown_timeout: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := httptransport.NewServer(tc.cfg, nil)
			require.ErrorContains(t, err, "httptransport: server config: ")
			require.ErrorContains(t, err, tc.want)
		})
	}
}
