package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/internal/monotime"
	"github.com/switchyard-go/switchyard/internal/queue"
	"github.com/switchyard-go/switchyard/transports"
)

// ingressTopic is the one topic of the ingress; the destination topic travels
// in the message's delivery context.
const ingressTopic = "switchyard.ingress"

// publishHandler is the name of the Router handler that runs the pipeline.
const publishHandler = "switchyard.publish"

// Option sets what a configuration file cannot hold.
type Option func(*options)

type options struct {
	logger     watermill.LoggerAdapter
	registerer prometheus.Registerer
	registry   *transports.Registry
	noMetrics  bool
}

// WithLogger logs through l (default: slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = watermill.NewSlogLogger(l) }
}

// WithLoggerAdapter logs through a Watermill logger adapter.
func WithLoggerAdapter(l watermill.LoggerAdapter) Option {
	return func(o *options) { o.logger = l }
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
	reg    prometheus.Registerer

	ingress    *queue.Broker
	transports map[string]transports.Transport
	outbound   map[string]outbound // the transports that publish
	inbound    []namedSubscriber

	router     *message.Router
	routing    *routing
	coalescing *coalescing // nil when coalescing is off
	metrics    *pipelineMetrics
	registry   *transports.Registry
	reloads    reloads
	// secrets are the running configuration's, removed from every error
	// the bus returns, logs or writes into a dead letter.
	secrets atomic.Pointer[secretSet]

	mu          sync.Mutex
	started     bool
	middlewares []message.HandlerMiddleware
	handlers    []handlerSpec
	runCtx      context.Context

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
		o.logger = watermill.NewSlogLogger(slog.Default())
	}
	if o.registerer == nil {
		o.registerer = prometheus.NewRegistry() // registered nowhere that is scraped
	}
	// What New registers, the transports' collectors included, is taken
	// back if it fails: the registerer stays usable for another try.
	reg := &undoRegisterer{Registerer: o.registerer}
	o.registerer = reg
	b, err := build(cfg, o)
	if err != nil {
		reg.undo()
		// Whatever a factory's error quotes of the configuration, a URL
		// with its password, a token, a piece of one, is removed: the bus
		// vouches for its errors whichever transports it runs.
		return nil, scrubError(err, configSecrets(cfg))
	}
	reg.keep()
	return b, nil
}

// build is New after its options.
func build(cfg Config, o options) (*Bus, error) {
	cfg.setDefaults()
	if err := errors.Join(cfg.Validate(), cfg.validateTransportTypes(o.registry)); err != nil {
		return nil, err
	}

	b := &Bus{
		cfg:        cfg,
		registry:   o.registry,
		reg:        o.registerer,
		transports: make(map[string]transports.Transport, len(cfg.Transports)),
		closing:    make(chan struct{}),
		closedCh:   make(chan struct{}),
	}
	b.secrets.Store(configSecrets(cfg))
	// Everything logs through it, the transports and the router included:
	// a client library's error may quote a URL however it likes.
	b.logger = &scrubLogger{LoggerAdapter: o.logger, secrets: &b.secrets}
	for name, section := range cfg.Transports {
		typ, _ := section["type"].(string)
		factory, err := o.registry.Lookup(typ)
		if err != nil {
			b.closeTransports()
			return nil, &ConfigError{Key: "transports." + name + ".type", Reason: err.Error()}
		}
		t, err := factory(transports.Settings{
			Name:   name,
			Decode: cfg.transportDecoder(name),
			Logger: b.logger.With(watermill.LogFields{"transport": name}),
			// No added labels or prefix: the names operators know
			// (event_queue_depth{stream}) keep exactly their labels. Only
			// New's undo of a failed build is in between.
			Registerer: o.registerer,
		})
		if err != nil {
			b.closeTransports()
			return nil, transportError(name, err)
		}
		b.transports[name] = t
	}
	if err := b.resolveInbound(); err != nil {
		b.closeTransports()
		return nil, err
	}
	if err := b.checkPublishers(); err != nil {
		b.closeTransports()
		return nil, err
	}

	ingress, err := queue.NewBroker(queue.Config{
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
		b.closeTransports()
		// The ingress's keys are the bus's: bus.retry_backoff.
		return nil, fieldConfigErrors("bus", "bus: ingress", err)
	}
	b.ingress = ingress
	if err := b.ingress.SubscribeInitialize(ingressTopic); err != nil {
		b.closeTransports()
		return nil, err
	}

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.Bus.CloseTimeout}, b.logger)
	if err != nil {
		b.closeTransports()
		return nil, err
	}
	b.router = router
	if err := b.reg.Register(newIngressCollector(b.ingress, cfg.Bus.QueueSize)); err != nil {
		b.closeTransports()
		return nil, fmt.Errorf("bus: register metrics: %w", err)
	}
	if !o.noMetrics {
		timesDelivery := func(name string) bool {
			return cfg.Metrics.InProcessDeliveryLatency || !b.transports[name].InProcess
		}
		if b.metrics, err = newPipelineMetrics(cfg, b.reg, timesDelivery); err != nil {
			b.closeTransports()
			return nil, err
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
	if err := b.setupReloads(); err != nil {
		b.closeTransports()
		return nil, err
	}
	if err := b.setupRouting(); err != nil {
		b.closeTransports()
		return nil, err
	}
	if err := b.setupCoalescing(); err != nil {
		b.closeTransports()
		return nil, err
	}
	return b, nil
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
// before Run.
func (b *Bus) Use(m ...message.HandlerMiddleware) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return fmt.Errorf("%w: Use after Run", ErrRunning)
	}
	b.middlewares = append(b.middlewares, m...)
	return nil
}

// Handle consumes topic from every inbound transport (consume.from) with h.
// A message h returns an error for is nacked and redelivered by its
// transport. Handle may be called before or after Run.
func (b *Bus) Handle(name, topic string, h message.NoPublishHandlerFunc) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return ErrClosed
	}
	if len(b.inbound) == 0 {
		return errNoInbound
	}
	spec := handlerSpec{name: name, topic: topic, fn: h}
	b.handlers = append(b.handlers, spec)
	if !b.started {
		return nil
	}
	b.addHandler(spec)
	return b.scrub(b.router.RunHandlers(b.runCtx))
}

func (b *Bus) addHandler(h handlerSpec) {
	for _, in := range b.inbound {
		name := h.name
		if len(b.inbound) > 1 {
			name += "@" + in.name
		}
		fn := h.fn
		if b.metrics != nil {
			fn = b.observeDelivery(in.name, fn)
		}
		b.router.AddConsumerHandler(name, h.topic, in.sub, fn)
	}
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

	stages := make([]message.HandlerMiddleware, 0, len(b.middlewares)+2)
	stages = append(stages, b.enter)
	stages = append(stages, b.middlewares...)
	stages = append(stages, b.coalesceStages()...)
	stages = append(stages, b.routeStages()...)
	h := b.router.AddConsumerHandler(publishHandler, ingressTopic, b.ingress, b.dispatch)
	h.AddMiddleware(stages...)
	for _, spec := range b.handlers {
		b.addHandler(spec)
	}
	b.mu.Unlock()

	go func() {
		select {
		case <-ctx.Done():
			_ = b.Close()
		case <-b.closing:
		}
	}()
	err := b.router.Run(b.runCtx)
	<-b.closedCh
	return b.scrub(err)
}

// Running is closed once Run has started the pipeline and every handler.
func (b *Bus) Running() chan struct{} { return b.router.Running() }

// Publish accepts messages for topic into the ingress and returns; a
// transport takes them later. It blocks while the ingress is full (on_full:
// block) until a message's context ends, or fails with ErrQueueFull (reject).
// The messages accepted before an error stay accepted. A message's
// cancellation does not reach beyond Publish; its context values do.
func (b *Bus) Publish(topic string, msgs ...*message.Message) error {
	if b.closed.Load() {
		return ErrClosed
	}
	for _, m := range msgs {
		caller := m.Context()
		d := newDelivery(caller, topic, false)
		if b.metrics != nil {
			d.accepted = monotime.Now()
		}
		m.SetContext(d)
		err := b.ingress.PublishContext(caller, ingressTopic, m)
		m.SetContext(caller)
		if err != nil {
			return b.admissionError(err)
		}
	}
	return nil
}

// PublishSync publishes messages and waits until a transport accepted every
// one, or returns the final error of those that failed after their retries
// (dead-lettered, wrapping the transport's error). If ctx ends first it
// returns ctx's error; messages already accepted may still be delivered.
func (b *Bus) PublishSync(ctx context.Context, topic string, msgs ...*message.Message) error {
	if b.closed.Load() {
		return ErrClosed
	}
	ds := make([]*delivery, 0, len(msgs))
	for _, m := range msgs {
		caller := m.Context()
		d := newDelivery(ctx, topic, true)
		if b.metrics != nil {
			d.accepted = monotime.Now()
		}
		m.SetContext(d)
		err := b.ingress.PublishContext(ctx, ingressTopic, m)
		m.SetContext(caller)
		if err != nil {
			return b.admissionError(err)
		}
		ds = append(ds, d)
	}
	var errs []error
	for _, d := range ds {
		select {
		case err := <-d.result:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

func (b *Bus) admissionError(err error) error {
	switch {
	case errors.Is(err, queue.ErrQueueFull):
		return fmt.Errorf("%w: %w", ErrQueueFull, err)
	case errors.Is(err, queue.ErrClosed):
		return ErrClosed
	}
	return err
}

// panicError is a pipeline stage's panic. Its message is the panic's value
// alone, redacted, as it travels in dead_letter_reason and to PublishSync's
// caller; the stack goes to the log. It wraps the
// middleware.RecoveredPanicError Watermill's Recoverer returns.
type panicError struct {
	rec middleware.RecoveredPanicError
}

func (e *panicError) Error() string {
	return redactString(fmt.Sprintf("bus: pipeline stage panicked: %v", e.rec.V))
}

func (e *panicError) Unwrap() error { return e.rec }

// outbound is what dispatch needs of a transport that publishes.
type outbound struct {
	pub     message.Publisher
	metrics []durationMetric // by event type index; nil without metrics
}

// dispatch is the innermost stage: it publishes on the transport the route
// named and settles a PublishSync.
func (b *Bus) dispatch(m *message.Message) error {
	d := deliveryFrom(m.Context())
	if d == nil {
		return errors.New("bus: message reached dispatch without its delivery context")
	}
	name := m.Metadata.Get(MetaTransport)
	out, ok := b.outbound[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownTransport, name)
	}
	var err error
	if out.metrics != nil {
		start := monotime.Now()
		err = out.pub.Publish(d.topic, m)
		out.metrics[b.metrics.typeIndex(m.Metadata.Get(MetaEventType))].observe(monotime.Now()-start, err)
	} else {
		err = out.pub.Publish(d.topic, m)
	}
	if err != nil {
		// The entry stage records it, as the reason if it is dead-lettered.
		return b.scrub(fmt.Errorf("bus: publish to %q on %q: %w", d.topic, name, err))
	}
	d.settle(nil)
	return nil
}

// enter is the first stage: it observes how long the event waited in the
// ingress, once, on its first pass, and turns a panic of the stages after
// it into an error (a panicError, which wraps the
// middleware.RecoveredPanicError of Watermill's Recoverer) and logs its
// stack. The ingress retries a failed event and then dead-letters
// it, with the last error as the reason.
func (b *Bus) enter(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) (msgs []*message.Message, err error) {
		d := deliveryFrom(m.Context())
		if b.metrics != nil && d != nil && !d.waitObserved {
			d.waitObserved = true
			b.metrics.ingressWait.observe(monotime.Now()-d.accepted, nil)
		}
		panicked := true
		defer func() {
			if r := recover(); r != nil || panicked {
				p := &panicError{rec: middleware.RecoveredPanicError{V: r, Stacktrace: string(debug.Stack())}}
				b.logger.Error("Pipeline stage panicked", p, watermill.LogFields{
					"message_uuid": m.UUID, "stack": p.rec.Stacktrace,
				})
				err = p
			}
			if err != nil {
				// The router logs it; the delivery keeps it as the reason,
				// if it is dead-lettered.
				err = b.scrub(err)
				if d != nil {
					d.failed(err)
				}
			}
		}()
		growStack()
		msgs, err = h(m)
		panicked = false
		return msgs, err
	}
}

// stackReserve is how much stack growStack makes room for: enough for the
// pipeline's stages and an in-process transport's publish below them.
const stackReserve = 8 << 10

// growStack grows the goroutine's stack, while it is shallow, to hold a
// frame of stackReserve bytes. Watermill's Router runs each message in a
// goroutine of its own, which starts with a small stack; the pipeline
// below would grow it once or twice, deep in the stages, where copying it
// means adjusting every frame. Growing it here, a few frames deep, costs
// less: about 8% of the bus's CPU per event (docs/performance.md).
//
//go:noinline
func growStack() {
	var frame [stackReserve]byte
	keepFrame(&frame)
}

//go:noinline
func keepFrame(*[stackReserve]byte) {}

// observeDelivery wraps a Handle handler: it observes the delivery latency
// of each event, from its published_at to the handler's start, unless the
// transport is not timed (in process, without
// metrics.in_process_delivery_latency).
func (b *Bus) observeDelivery(transport string, h message.NoPublishHandlerFunc) message.NoPublishHandlerFunc {
	t, ok := b.metrics.transports[transport]
	if !ok || b.metrics.delivery[t] == nil {
		return h
	}
	return func(m *message.Message) error {
		b.metrics.delivered(t, m.Metadata.Get(MetaEventType), m.Metadata.Get(MetaPublishedAt), time.Now().UnixNano())
		return h(m)
	}
}

// deadLetter takes a message the ingress gave up on.
func (b *Bus) deadLetter(ctx context.Context, _ string, m *message.Message, attempts int) error {
	d := deliveryFrom(m.Context())
	topic, cause := "", error(nil)
	if d != nil {
		topic, cause = d.topic, d.err()
	}
	if cause == nil {
		cause = fmt.Errorf("nacked %d times", attempts)
	}
	cause = b.scrub(cause)
	dl := message.NewMessage(m.UUID, m.Payload)
	for k, v := range m.Metadata {
		dl.Metadata[k] = v
	}
	dl.Metadata[MetaDeadLetterReason] = cause.Error()
	dl.Metadata[MetaDeadLetterTopic] = topic
	dl.Metadata[MetaDeadLetterAttempts] = strconv.Itoa(attempts)
	dl.SetContext(ctx)
	dlc := b.cfg.Bus.DeadLetter
	if err := b.transports[dlc.Transport].Publisher.Publish(dlc.Topic, dl); err != nil {
		return b.scrub(fmt.Errorf("bus: dead-letter to %q on %q: %w", dlc.Topic, dlc.Transport, err))
	}
	b.logger.Error("Message dead-lettered", cause, watermill.LogFields{
		"message_uuid": m.UUID, "topic": topic, "attempts": attempts,
	})
	if d != nil {
		d.settle(fmt.Errorf("%w after %d attempts: %w", ErrDeadLettered, attempts, cause))
	}
	return nil
}

// Subscribe subscribes to topic on every inbound transport and merges what
// they deliver into one channel, closed when all of theirs are.
func (b *Bus) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if len(b.inbound) == 0 {
		return nil, errNoInbound
	}
	if len(b.inbound) == 1 {
		ch, err := b.inbound[0].sub.Subscribe(ctx, topic)
		return ch, b.scrub(err)
	}
	chans := make([]<-chan *message.Message, 0, len(b.inbound))
	for _, in := range b.inbound {
		ch, err := in.sub.Subscribe(ctx, topic)
		if err != nil {
			return nil, b.scrub(fmt.Errorf("bus: subscribe to %q on %q: %w", topic, in.name, err))
		}
		chans = append(chans, ch)
	}
	out := make(chan *message.Message)
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Go(func() {
			for m := range ch {
				out <- m
			}
		})
	}
	go func() { wg.Wait(); close(out) }()
	return out, nil
}

// SubscribeInitialize initializes topic on the inbound transports that need it.
func (b *Bus) SubscribeInitialize(topic string) error {
	for _, in := range b.inbound {
		if si, ok := in.sub.(message.SubscribeInitializer); ok {
			if err := si.SubscribeInitialize(topic); err != nil {
				return b.scrub(err)
			}
		}
	}
	return nil
}

// Close stops accepting messages, waits (within bus.close_timeout) until
// every accepted message was handed to a transport and in-process transports
// have handed theirs to consumers, then stops the handlers and closes the
// transports. It returns an error wrapping ErrCloseTimeout that says how many
// accepted messages were not delivered, if any. Close is idempotent.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		close(b.closing)
		b.closeErr = b.close()
		close(b.closedCh)
	})
	return b.closeErr
}

func (b *Bus) close() error {
	b.mu.Lock()
	started := b.started
	b.mu.Unlock()
	timeout := b.cfg.Bus.CloseTimeout
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	var errs []error
	if err := b.closeCoalescing(ctx, started); err != nil {
		errs = append(errs, err)
	}
	if started {
		if err := b.ingress.Settle(ctx); err != nil {
			errs = append(errs, fmt.Errorf("ingress: %w", err))
		}
		for _, name := range b.transportNames() {
			if dr, ok := b.transports[name].Publisher.(transports.Drainer); ok {
				if err := dr.Drain(ctx); err != nil {
					errs = append(errs, fmt.Errorf("transport %q: %w", name, err))
				}
			}
		}
		// Subscribers that hold what they accepted (an HTTP receiver's
		// queue of requests answered 202) hand it to the handlers while
		// the router still runs them: closing the router first would
		// leave them nobody to deliver to.
		for _, name := range b.transportNames() {
			t := b.transports[name]
			if any(t.Subscriber) == any(t.Publisher) {
				continue // drained above
			}
			if dr, ok := t.Subscriber.(transports.Drainer); ok {
				if err := dr.Drain(ctx); err != nil {
					errs = append(errs, fmt.Errorf("transport %q: %w", name, err))
				}
			}
		}
		routerDone := make(chan error, 1)
		go func() { routerDone <- b.router.Close() }()
		select {
		case err := <-routerDone:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			// Handlers still running: closing the transports below ends them.
			defer func() { <-routerDone }()
		}
	}
	if err := b.ingress.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := b.closeTransports(); err != nil {
		errs = append(errs, err)
	}
	if n := b.ingress.Stats().Discarded; n > 0 {
		errs = append(errs, fmt.Errorf("%d accepted messages were never handed to a transport", n))
	}
	if len(errs) > 0 {
		return b.scrub(fmt.Errorf("%w (%s): %w", ErrCloseTimeout, timeout, errors.Join(errs...)))
	}
	return nil
}

func (b *Bus) transportNames() []string {
	names := make([]string, 0, len(b.transports))
	for n := range b.transports {
		names = append(names, n)
	}
	return names
}

// closeTransports closes every transport, logs what fails and returns it:
// a subscriber's Close can report accepted messages it could not deliver.
func (b *Bus) closeTransports() error {
	var errs []error
	for name, t := range b.transports {
		if t.Publisher != nil {
			if err := t.Publisher.Close(); err != nil {
				b.logger.Error("Cannot close transport publisher", err, watermill.LogFields{"transport": name})
				errs = append(errs, fmt.Errorf("transport %q: %w", name, err))
			}
		}
		if t.Subscriber != nil && any(t.Subscriber) != any(t.Publisher) {
			if err := t.Subscriber.Close(); err != nil {
				b.logger.Error("Cannot close transport subscriber", err, watermill.LogFields{"transport": name})
				errs = append(errs, fmt.Errorf("transport %q: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// scrub returns err with the running configuration's secrets removed from
// its message (see scrubError), once: an error it returned is returned as
// it is. It is for errors only, off the path of a successful publish.
func (b *Bus) scrub(err error) error {
	if _, done := err.(*redactedError); done || err == nil {
		return err
	}
	return scrubError(err, b.secrets.Load())
}

// scrubLogger removes the running configuration's secrets from the errors
// and the string fields of what is logged at Debug and above. Trace
// records pass as they are: the router logs two for every event, with its
// identifiers, and a successful publish pays nothing for them; their error
// fields, should one have any, are scrubbed all the same.
type scrubLogger struct {
	watermill.LoggerAdapter
	secrets *atomic.Pointer[secretSet]
}

func (l *scrubLogger) Error(msg string, err error, fields watermill.LogFields) {
	s := l.secrets.Load()
	if err != nil {
		err = scrubError(err, s)
	}
	l.LoggerAdapter.Error(msg, err, scrubFields(fields, s, true))
}

func (l *scrubLogger) Info(msg string, fields watermill.LogFields) {
	l.LoggerAdapter.Info(msg, scrubFields(fields, l.secrets.Load(), true))
}

func (l *scrubLogger) Debug(msg string, fields watermill.LogFields) {
	l.LoggerAdapter.Debug(msg, scrubFields(fields, l.secrets.Load(), true))
}

func (l *scrubLogger) Trace(msg string, fields watermill.LogFields) {
	l.LoggerAdapter.Trace(msg, scrubFields(fields, l.secrets.Load(), false))
}

func (l *scrubLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return &scrubLogger{LoggerAdapter: l.LoggerAdapter.With(scrubFields(fields, l.secrets.Load(), true)), secrets: l.secrets}
}

// scrubFields returns fields with their errors scrubbed, and with strings
// their strings too; fields itself when nothing changes.
func scrubFields(fields watermill.LogFields, s *secretSet, strs bool) watermill.LogFields {
	var out watermill.LogFields
	for k, v := range fields {
		var scrubbed any
		switch x := v.(type) {
		case error:
			scrubbed = scrubError(x, s)
		case string:
			if !strs {
				continue
			}
			if y := s.scrub(redactString(x)); y != x {
				scrubbed = y
			} else {
				continue
			}
		default:
			continue
		}
		if out == nil {
			out = fields.Copy()
		}
		out[k] = scrubbed
	}
	if out == nil {
		return fields
	}
	return out
}

var (
	_ watermill.LoggerAdapter      = (*scrubLogger)(nil)
	_ message.Publisher            = (*Bus)(nil)
	_ message.Subscriber           = (*Bus)(nil)
	_ message.SubscribeInitializer = (*Bus)(nil)
	_ context.Context              = (*delivery)(nil)
)
