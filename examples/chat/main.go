// Command chat is the original chat service in miniature: an HTTP API that
// publishes chat_message and typing events to events:chat, and a consumer
// standing in for the real-time hub that logs each delivery.
//
// With no configuration file it runs on the in-memory transport and needs no
// services:
//
//	go run ./examples/chat
//	curl -XPOST localhost:8000/api/v1/messages -d '{"request_id":"r1","content":"hi"}'
//	curl -XPOST localhost:8000/api/v1/requests/r1/typing
//
// GET / is a page (embedded: no build step, nothing loaded from elsewhere)
// that chats through the API in each tab and shows what the hub receives,
// live, over Server-Sent Events (GET /api/v1/stream): each message with
// the transport that carried it and its latency, who is typing, and the
// routing state with the last minute's split by transport.
//
// The API answers 202 once the bus accepted the event, and refuses at once
// what a transport would refuse later: 400 for a request id that is not
// valid UTF-8, holds a control character (NUL, a line break) or is longer
// than 256 bytes, and for a body that is not exactly one JSON object of the
// known fields; 413 for a body over 64 KiB; 503 with Retry-After when the
// ingress is full or closing.
//
// -config (or SWITCHYARD_CONFIG) names a YAML, JSON or TOML file; the
// environment (SWITCHYARD_*, EVENT_*) overrides it. The routing knobs of the
// file (master switch, percentage, fallback, coalescing window) apply when
// it changes, without a restart; GET /admin/switchyard shows the effective
// configuration and the circuit breakers. rollout.yaml is the rollout from
// HTTP to Redis Streams: make demo-redis runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchyard-go/switchyard/bus"
	_ "github.com/switchyard-go/switchyard/transports/all"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// run starts the service and blocks until ctx ends. If ready is not nil it
// gets the listening address once the service accepts requests.
func run(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(logOut)
	addr := fs.String("addr", envOr(getenv, "ADDR", "127.0.0.1:8000"), "listen address (env ADDR)")
	configPath := fs.String("config", getenv("SWITCHYARD_CONFIG"), "configuration file, YAML, JSON or TOML (env SWITCHYARD_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// The example times deliveries on in-process transports too (without a
	// file it runs on the memory transport), to show
	// event_delivery_latency_seconds; the file or the environment can turn
	// that off (metrics.in_process_delivery_latency: false).
	sources := []bus.Source{bus.FromMap(map[string]any{"metrics.in_process_delivery_latency": true})}
	if *configPath != "" {
		sources = append(sources, bus.FromFile(*configPath))
	}
	sources = append(sources, bus.FromEnv())
	cfg, err := bus.LoadConfig(sources...)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	b, err := bus.New(cfg, bus.WithLogger(logger), bus.WithRegisterer(reg))
	if err != nil {
		return err
	}
	live := newFeed()
	if err := b.Handle("hub", Topic, hub(logger, live)); err != nil {
		_ = b.Close()
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		_ = b.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", newServer(b, reg))
	registerPage(mux, live)
	// Operators only: bind -addr to loopback or put this behind auth.
	mux.Handle("GET /admin/switchyard", b.AdminHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	// The routing knobs of the file apply without a restart.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchDone := make(chan error, 1)
	if *configPath != "" {
		go func() { watchDone <- b.WatchConfig(watchCtx, *configPath, sources...) }()
	} else {
		watchDone <- nil
	}

	busDone := make(chan error, 1)
	go func() { busDone <- b.Run(ctx) }()
	<-b.Running()
	// The page's routing panel, fed from the bus's configuration and
	// metrics.
	routingDone := make(chan struct{})
	go func() {
		defer close(routingDone)
		watchRouting(watchCtx, b, reg, live)
	}()
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()
	r := cfg.Routing
	logger.Info("chat service listening", "addr", ln.Addr().String(), "page", "http://"+ln.Addr().String()+"/",
		"baseline", r.Baseline, "candidate", r.Candidate, "enabled", r.Enabled, "percentage", r.Percentage)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-srvDone:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// The page's streams never go idle: end them, or Shutdown waits for
	// its timeout.
	live.close()
	_ = srv.Shutdown(shutdownCtx)
	// Requests are finished: everything they published is in the ingress,
	// and Close delivers it before returning.
	stopWatch()
	watchErr := <-watchDone
	<-routingDone
	closeErr := b.Close()
	runErr := <-busDone
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, watchErr, closeErr, runErr)
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
