package httptransport_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Watermill's suite reads exactly as many messages as it published
		// from its multiplied subscribers and may leave a forwarder blocked
		// on a redelivered extra (at-least-once delivery).
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func2"),
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func3"),
	)
}

// server is a real loopback HTTP server whose handler a test swaps per
// request number, and which counts requests and new connections.
type server struct {
	*httptest.Server
	requests atomic.Int64
	conns    atomic.Int64
}

// newServer starts a server answering request n (1-based) with handle(n, w, r).
func newServer(t *testing.T, handle func(n int64, w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handle(s.requests.Add(1), w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func newPublisher(t *testing.T, cfg httptransport.Config) *httptransport.Publisher {
	t.Helper()
	p, err := httptransport.NewPublisher(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// fastRetries keeps a test's waits between attempts short.
func fastRetries(cfg httptransport.Config) httptransport.Config {
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Millisecond
	}
	if cfg.MaxRetryBackoff == 0 {
		cfg.MaxRetryBackoff = 5 * time.Millisecond
	}
	return cfg
}
