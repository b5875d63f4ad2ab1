package httptransport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/transports"
)

// ServerConfig configures a Server: its Receiver, and the address and
// pattern it serves it on; it is also the receiver: sub-section of an http
// transport, where Listen is optional.
type ServerConfig struct {
	ReceiverConfig `koanf:",squash"`
	// Listen is the host:port to serve plain HTTP on (:5001 for every
	// interface); for TLS, mount the Receiver in your own server.
	Listen string `koanf:"listen"`
	// Path is the ServeMux pattern the Receiver is served on; default "POST
	// /api/v1/events/{topic}", with the wildcard named by PathValue.
	Path string `koanf:"path"`
	// ReadTimeout bounds reading a request's headers, and its body within
	// ReadTimeout + HandlerTimeout. Default 10s.
	ReadTimeout time.Duration `koanf:"read_timeout"`
	// ShutdownTimeout is how long Close waits for the requests in flight
	// before it answers the rest 503. Default 5s.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
}

func (c *ServerConfig) setDefaults() {
	c.ReceiverConfig.setDefaults()
	c.Path = cmp.Or(c.Path, "POST /api/v1/events/{"+c.PathValue+"}")
	c.ReadTimeout = cmp.Or(c.ReadTimeout, 10*time.Second)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, 5*time.Second)
}

// Validate reports every invalid field, each error naming its key.
func (c *ServerConfig) Validate() error { return c.validate(true) }

// validate is Validate; without needListen, an empty Listen is a Receiver
// to mount, for which the Server's own keys are refused.
func (c *ServerConfig) validate(needListen bool) error {
	errs := []error{c.ReceiverConfig.Validate()}
	add := func(key, format string, args ...any) {
		errs = append(errs, transports.FieldErrorf(key, format, args...))
	}
	switch {
	case c.Listen != "":
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			add("listen", "must be host:port (127.0.0.1:5001, or :5001 for every interface), got %q", c.Listen)
		}
	case needListen:
		add("listen", "must be set")
	default:
		set := map[string]bool{"path": c.Path != "", "read_timeout": c.ReadTimeout != 0, "shutdown_timeout": c.ShutdownTimeout != 0}
		for _, key := range slices.Sorted(maps.Keys(set)) {
			if set[key] {
				add(key, "only with listen: a Receiver without it is mounted in your own server, on your own pattern")
			}
		}
		return errors.Join(errs...)
	}
	if c.Path != "" {
		if err := checkPattern(c.Path); err != nil {
			add("path", "%v", err)
		} else if pv := cmp.Or(c.PathValue, "topic"); c.Topic == "" {
			if !strings.Contains(c.Path, "{"+pv+"}") && !strings.Contains(c.Path, "{"+pv+"...}") {
				add("path", "has no {%s} wildcard to take the topic from: add one, or set topic (or path_value)", pv)
			}
		}
	}
	nonNegative(&errs, "read_timeout", c.ReadTimeout)
	nonNegative(&errs, "shutdown_timeout", c.ShutdownTimeout)
	return errors.Join(errs...)
}

// checkPattern reports whether ServeMux takes pattern; Handle panics on one
// it does not.
func checkPattern(pattern string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("not a net/http ServeMux pattern: %v", r)
		}
	}()
	http.NewServeMux().Handle(pattern, http.NotFoundHandler())
	return nil
}

// Server is a Receiver served on an address of its own, what an http
// transport with receiver.listen builds; its Close also shuts the server
// down.
type Server struct {
	*Receiver
	logger          watermill.LoggerAdapter
	srv             *http.Server
	addr            net.Addr
	shutdownTimeout time.Duration

	// handlers counts the requests being served, until stopped.
	mu       sync.RWMutex
	stopped  bool
	handlers sync.WaitGroup
	served   chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// NewServer builds the Receiver of cfg and starts serving it on cfg.Listen
// at cfg.Path. A nil logger logs nothing.
func NewServer(cfg ServerConfig, logger watermill.LoggerAdapter, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("httptransport: server config: %w", err)
	}
	s, err := newServer(cfg, logger, opts...)
	if err != nil {
		return nil, fmt.Errorf("httptransport: server config: listen: %w", err)
	}
	return s, nil
}

// newServer is NewServer for a valid cfg; its only error is the listener's.
func newServer(cfg ServerConfig, logger watermill.LoggerAdapter, opts ...Option) (*Server, error) {
	cfg.setDefaults()
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	receiver, err := NewReceiver(cfg.ReceiverConfig, logger, opts...)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	s := &Server{
		Receiver:        receiver,
		logger:          logger.With(watermill.LogFields{"listen": ln.Addr().String()}),
		addr:            ln.Addr(),
		shutdownTimeout: cfg.ShutdownTimeout,
		served:          make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.Handle(cfg.Path, receiver)
	s.srv = &http.Server{
		Handler:           s.track(mux),
		ReadHeaderTimeout: cfg.ReadTimeout,
		ReadTimeout:       cfg.ReadTimeout + cfg.HandlerTimeout,
		// Longer than a Publisher's idle_conn_timeout, so that the sender
		// closes an idle connection, not the server as the sender reuses it.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    log.New(serverLog{s.logger}, "", 0),
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("httptransport: receiver server stopped", err, nil)
		}
	}()
	s.logger.Info("httptransport: receiver serving", watermill.LogFields{"path": cfg.Path})
	return s, nil
}

// track counts the requests h serves, so that Close returns only once none
// is left.
func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.RLock()
		if !s.stopped { // else read as Close cut its connection: answered 503 at once
			s.handlers.Add(1)
			defer s.handlers.Done()
		}
		s.mu.RUnlock()
		h.ServeHTTP(w, r)
	})
}

// Addr is the address the server listens on: the port chosen when Listen
// asked for port 0.
func (s *Server) Addr() net.Addr { return s.addr }

// Close stops accepting connections, waits up to ShutdownTimeout for the
// requests in flight, closes the Receiver, gives its 503s a second to go
// out and cuts the connections left. It returns the Receiver's error once
// no request is being served. Idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		s.closeErr = s.Receiver.Close()
		if err != nil {
			s.logger.Info("httptransport: receiver server: requests still in flight after shutdown_timeout are answered 503",
				watermill.LogFields{"shutdown_timeout": s.shutdownTimeout})
			grace, cancelGrace := context.WithTimeout(context.Background(), time.Second) // for the last 503s
			defer cancelGrace()
			if s.srv.Shutdown(grace) != nil {
				_ = s.srv.Close() // bodies still being read
			}
		}
		<-s.served
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		s.handlers.Wait()
	})
	return s.closeErr
}

// serverLog hands what net/http logs to the transport's logger.
type serverLog struct{ logger watermill.LoggerAdapter }

func (l serverLog) Write(p []byte) (int, error) {
	l.logger.Error("httptransport: receiver server", errors.New(strings.TrimSpace(string(p))), nil)
	return len(p), nil
}

var (
	_ transports.Drainer           = (*Server)(nil)
	_ http.Handler                 = (*Server)(nil)
	_ message.Subscriber           = (*Server)(nil)
	_ message.SubscribeInitializer = (*Server)(nil)
)
