package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/coalesce"
	"github.com/switchyard-go/switchyard/internal/queue"
	"github.com/switchyard-go/switchyard/middleware"
	"github.com/switchyard-go/switchyard/transports"
)

const (
	// ingressTopic is the one topic of the ingress; the destination topic
	// travels in the message's delivery context.
	ingressTopic = "switchyard.ingress"
	// publishHandler is the Router handler that runs the pipeline.
	publishHandler = "switchyard.publish"
)

// Option sets what a configuration file cannot hold.
type Option func(*options)

type options struct {
	logger     watermill.LoggerAdapter
	slog       *slog.Logger // for warnings, when logging through slog
	registerer prometheus.Registerer
	registry   *transports.Registry
	noMetrics  bool
}

// WithLogger logs through l (default: slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger, o.slog = watermill.NewSlogLogger(l), l }
}

// WithLoggerAdapter logs through a Watermill logger adapter.
func WithLoggerAdapter(l watermill.LoggerAdapter) Option {
	return func(o *options) { o.logger, o.slog = l, nil }
}

// WithRegisterer registers the bus's metrics, and its transports', with r.
// Without it they are registered nowhere; never with the global registry.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) { o.registerer = r }
}

// WithoutEventMetrics leaves out the metrics observed per event on the
// publish and consume paths (event_publish_duration_seconds,
// switchyard_events_published_total, switchyard_ingress_wait_seconds,
// event_delivery_latency_seconds), for a bus nobody scrapes. The metrics
// read at scrape time (the ingress, coalescing, fallbacks) stay.
func WithoutEventMetrics() Option {
	return func(o *options) { o.noMetrics = true }
}

// WithRegistry builds transports from r instead of the process-wide registry.
func WithRegistry(r *transports.Registry) Option {
	return func(o *options) { o.registry = r }
}

// Bus is an embedded event bus. It is a Watermill Publisher and Subscriber.
// Make one with New, add stages with Use and consumers with Handle, then Run.
type Bus struct {
	cfg    Config
	logger watermill.LoggerAdapter
	slog   *slog.Logger // nil: warnings go to logger at Info
	reg    prometheus.Registerer

	ingress    *queue.Broker
	transports map[string]transports.Transport
	outbound   map[string]outbound // the transports that publish
	inbound    []namedSubscriber

	router   *message.Router
	split    *middleware.Split
	fallback *middleware.Fallback
	// coalescer is nil when coalescing is off; stopCoalescing ends its
	// waits to republish, at Close.
	coalescer      *coalesce.Middleware
	stopCoalescing context.CancelFunc
	metrics        *pipelineMetrics // nil WithoutEventMetrics
	registry       *transports.Registry
	reloads        reloads
	// secrets are the running configuration's, removed from every error
	// the bus returns, logs or writes into a dead letter.
	secrets atomic.Pointer[secretSet]

	mu          sync.Mutex
	started     bool
	middlewares []message.HandlerMiddleware
	handlers    []handlerSpec
	consumers   []*consumer
	runCtx      context.Context

	// routerEnded is closed when the router's Run returned, or when Run
	// gave up before starting it: Close stops waiting for it to run then.
	routerEnded chan struct{}

	closed    atomic.Bool
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	closedCh  chan struct{}
}

type namedSubscriber struct {
	name string
	sub  message.Subscriber
}

type handlerSpec struct {
	name, topic string
	fn          message.NoPublishHandlerFunc
}

// New builds a bus from cfg: it validates the configuration, builds every
// configured transport with its registered factory, and prepares the ingress.
// Nothing runs until Run.
func New(cfg Config, opts ...Option) (*Bus, error) {
	o := options{registry: transports.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger, o.slog = watermill.NewSlogLogger(slog.Default()), slog.Default()
	}
	if o.registerer == nil {
		o.registerer = prometheus.NewRegistry() // registered nowhere that is scraped
	}
	// A New that fails takes back what it registered, the transports'
	// collectors included, so the registerer stays usable for another try.
	reg := &undoRegisterer{Registerer: o.registerer}
	o.registerer = reg
	b, err := build(cfg, o)
	if err != nil {
		reg.finish(true)
		// The bus vouches for its errors whichever transports it runs:
		// whatever a factory's error quotes of the configuration's secrets
		// is removed.
		return nil, scrubError(err, configSecrets(cfg))
	}
	reg.finish(false)
	return b, nil
}

// build is New after its options.
func build(cfg Config, o options) (*Bus, error) {
	cfg.setDefaults()
	if err := errors.Join(cfg.Validate(), cfg.validateTransportTypes(o.registry)); err != nil {
		return nil, err
	}
	b := &Bus{
		cfg:         cfg,
		slog:        o.slog,
		registry:    o.registry,
		reg:         o.registerer,
		transports:  make(map[string]transports.Transport, len(cfg.Transports)),
		closing:     make(chan struct{}),
		closedCh:    make(chan struct{}),
		routerEnded: make(chan struct{}),
	}
	b.secrets.Store(configSecrets(cfg))
	// Everything logs through it: a client library's error may quote a URL
	// however it likes.
	b.logger = &scrubLogger{LoggerAdapter: o.logger, secrets: &b.secrets}
	if err := b.assemble(o); err != nil {
		_ = b.closeTransports() // logged there
		return nil, err
	}
	return b, nil
}

// assemble builds the transports, the ingress, the router and the stages;
// build closes the transports it built if it fails.
func (b *Bus) assemble(o options) error {
	cfg := b.cfg
	for name, section := range cfg.Transports {
		typ, _ := section["type"].(string)
		factory, err := o.registry.Lookup(typ)
		if err != nil {
			return &ConfigError{Key: "transports." + name + ".type", Reason: err.Error()}
		}
		t, err := factory(transports.Settings{
			Name:   name,
			Decode: cfg.transportDecoder(name),
			Logger: b.logger.With(watermill.LogFields{"transport": name}),
			// No added labels or prefix: the names operators know keep
			// exactly their labels.
			Registerer: o.registerer,
		})
		if err != nil {
			return fieldConfigErrors("transports."+name, fmt.Sprintf("bus: transport %q", name), err)
		}
		b.transports[name] = t
	}
	if err := b.resolveInbound(); err != nil {
		return err
	}
	if err := b.checkPublishers(); err != nil {
		return err
	}
	var err error
	b.ingress, err = queue.NewBroker(queue.Config{
		Lanes:           cfg.Bus.Lanes,
		QueueSize:       cfg.Bus.QueueSize,
		OnFull:          queue.OnFull(cfg.Bus.OnFull),
		MaxRetries:      cfg.Bus.MaxRetries,
		RetryBackoff:    cfg.Bus.RetryBackoff,
		MaxRetryBackoff: cfg.Bus.MaxRetryBackoff,
		PreserveContext: true,
		DeadLetter:      b.deadLetter,
	}, b.logger.With(watermill.LogFields{"component": "ingress"}))
	if err != nil {
		// The ingress's keys are the bus's: bus.retry_backoff.
		return fieldConfigErrors("bus", "bus: ingress", err)
	}
	if err := b.ingress.SubscribeInitialize(ingressTopic); err != nil {
		return err
	}
	if b.router, err = message.NewRouter(message.RouterConfig{CloseTimeout: cfg.Bus.CloseTimeout}, b.logger); err != nil {
		return err
	}
	if err := register(b.reg, ingressMetrics(b.ingress, cfg.Bus.QueueSize)...); err != nil {
		return err
	}
	if !o.noMetrics {
		timesDelivery := func(name string) bool {
			return cfg.Metrics.InProcessDeliveryLatency || !b.transports[name].InProcess
		}
		if b.metrics, err = newPipelineMetrics(cfg, b.reg, timesDelivery); err != nil {
			return err
		}
	}
	b.outbound = map[string]outbound{}
	for name, t := range b.transports {
		if t.Publisher != nil {
			out := outbound{pub: t.Publisher}
			if b.metrics != nil {
				out.metrics = b.metrics.publish[b.metrics.transports[name]]
			}
			b.outbound[name] = out
		}
	}
	for _, setup := range []func() error{b.setupReloads, b.setupRouting, b.setupCoalescing} {
		if err := setup(); err != nil {
			return err
		}
	}
	return nil
}

// Config returns the bus's configuration, defaults applied, as last
// reloaded.
func (b *Bus) Config() Config {
	b.reloads.mu.Lock()
	defer b.reloads.mu.Unlock()
	return b.cfg
}

// Transport returns the transport configured under name: to mount an
// inbound HTTP transport's handler in your own server, for one.
func (b *Bus) Transport(name string) (transports.Transport, bool) {
	t, ok := b.transports[name]
	return t, ok
}

// resolveInbound builds the fan-in of consume.from; unset, of every routed
// transport that can subscribe.
func (b *Bus) resolveInbound() error {
	from := b.cfg.Consume.From
	if from == nil {
		r := b.cfg.Routing
		from = []string{}
		for _, name := range []string{r.Baseline, r.Candidate, r.Fallback.To} {
			if name != "" && !slices.Contains(from, name) && b.transports[name].Subscriber != nil {
				from = append(from, name)
			}
		}
		b.cfg.Consume.From = from
	}
	for _, name := range from {
		t := b.transports[name]
		if t.Subscriber == nil {
			return &ConfigError{Key: "consume.from", Reason: fmt.Sprintf("transport %q cannot subscribe", name)}
		}
		b.inbound = append(b.inbound, namedSubscriber{name: name, sub: t.Subscriber})
	}
	return nil
}

// checkPublishers reports a transport that events may be sent to but that
// cannot publish.
func (b *Bus) checkPublishers() error {
	r := b.cfg.Routing
	for _, ref := range []struct{ key, name string }{
		{"routing.baseline", r.Baseline},
		{"routing.candidate", r.Candidate},
		{"routing.fallback.to", r.Fallback.To},
		{"bus.dead_letter.transport", b.cfg.Bus.DeadLetter.Transport},
	} {
		if ref.name != "" && b.transports[ref.name].Publisher == nil {
			return &ConfigError{Key: ref.key, Reason: fmt.Sprintf("transport %q cannot publish", ref.name)}
		}
	}
	return nil
}

// Use appends middleware to the publish pipeline, after the built-in
// recoverer and before routing: the first added is the outermost. Call it
// before Run. A stage drops an event by returning no messages and no error
// without calling the next handler: the event is done (not retried, not
// dead-lettered) and a PublishSync waiting for it returns ErrDropped. An
// error is retried, then dead-lettered.
func (b *Bus) Use(m ...message.HandlerMiddleware) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return fmt.Errorf("%w: Use after Run", ErrRunning)
	}
	b.middlewares = append(b.middlewares, m...)
	return nil
}

// Run starts the pipeline and the handlers and blocks until the bus is
// closed: by Close, or by ctx ending, which closes it. It returns the
// router's error, if any.
func (b *Bus) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.started {
		b.mu.Unlock()
		return ErrRunning
	}
	if b.closed.Load() {
		b.mu.Unlock()
		return ErrClosed
	}
	b.started = true
	b.runCtx = context.WithoutCancel(ctx)

	// The first stage is the outermost.
	stages := append([]message.HandlerMiddleware{b.enter}, b.middlewares...)
	if b.coalescer != nil {
		stages = append(stages, b.coalesceStage)
	}
	stages = append(stages, b.split.Middleware, b.fallback.Middleware)
	b.router.AddConsumerHandler(publishHandler, ingressTopic, b.ingress, b.dispatch).AddMiddleware(stages...)
	for _, spec := range b.handlers {
		if err := b.startHandler(spec); err != nil {
			b.mu.Unlock()
			close(b.routerEnded)
			return b.scrub(err)
		}
	}
	b.mu.Unlock()
	b.logRoutes()

	go func() {
		select {
		case <-ctx.Done():
			_ = b.Close()
		case <-b.closing:
		}
	}()
	err := b.router.Run(b.runCtx)
	close(b.routerEnded)
	<-b.closedCh
	return b.scrub(err)
}

// Running is closed once Run has started the pipeline and every handler.
func (b *Bus) Running() chan struct{} { return b.router.Running() }

var (
	_ message.Publisher            = (*Bus)(nil)
	_ message.Subscriber           = (*Bus)(nil)
	_ message.SubscribeInitializer = (*Bus)(nil)
)
