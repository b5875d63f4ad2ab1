package httptransport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/internal/backoff"
	"github.com/switchyard-go/switchyard/transports"
)

// Defaults applied to zero-valued fields of ReceiverConfig.
const (
	DefaultPathValue          = "topic"
	DefaultMaxBodyBytes       = 1 << 20
	DefaultHandlerTimeout     = time.Second
	DefaultRetryAfter         = time.Second
	DefaultSignatureTolerance = 5 * time.Minute
	// Queue mode's redeliveries.
	DefaultQueueMaxRetries      = 5
	DefaultQueueRetryBackoff    = 100 * time.Millisecond
	DefaultQueueMaxRetryBackoff = 10 * time.Second
	DefaultDeadLetterTopic      = "dead_letter"
	DefaultDrainTimeout         = 5 * time.Second
)

// Metadata keys written on the messages moved to the dead-letter topic: the
// same as the memory transport's.
const (
	DeadLetterReasonKey   = "dead_letter_reason"
	DeadLetterTopicKey    = "dead_letter_topic"
	DeadLetterAttemptsKey = "dead_letter_attempts"
)

// ReceiverConfig configures a Receiver; the zero value of each field takes
// its default.
type ReceiverConfig struct {
	// Topic, when set, is the topic of every request. Otherwise the topic
	// is the path value named PathValue of the pattern the Receiver is
	// mounted on: mux.Handle("POST /events/{topic}", receiver).
	Topic     string `koanf:"topic"`
	PathValue string `koanf:"path_value"`
	// MaxBodyBytes bounds a request body; a longer one is answered 413.
	// Default 1 MiB.
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// HandlerTimeout bounds how long a request waits for a subscription to
	// take its message and ack or nack it; then it is answered 503 and the
	// message's context is canceled. Keep it below the senders' timeout.
	// Default 1s.
	HandlerTimeout time.Duration `koanf:"handler_timeout"`
	// RetryAfter is sent, in whole seconds rounded up, with every 503.
	// Default 1s; negative: no Retry-After header.
	RetryAfter time.Duration `koanf:"retry_after"`
	// BearerToken, when set, is required as "Authorization: Bearer <token>";
	// 401 otherwise.
	BearerToken string `koanf:"bearer_token" redact:"secret"`
	// HMACSecret, when set, requires a valid Switchyard-Signature (see the
	// Publisher's hmac_secret) made within SignatureTolerance of now, for
	// the topic the request is delivered to (its Switchyard-Topic, signed,
	// must be that topic); 401 otherwise. A signed request can be replayed,
	// to the same topic, within SignatureTolerance: consumers dedupe by
	// UUID.
	HMACSecret         string        `koanf:"hmac_secret" redact:"secret"`
	SignatureTolerance time.Duration `koanf:"signature_tolerance"`
	// RequireID answers 400 to a raw request without Switchyard-Id. Such a
	// request gets a new UUID at each attempt, so a sender's retries of it
	// cannot be deduplicated; CloudEvents requests always carry their id.
	// Default false, for senders that cannot set the header.
	RequireID bool `koanf:"require_id"`
	// QueueSize, when positive, makes the Receiver answer 202 Accepted as
	// soon as a message is in its topic's in-memory queue of this size, and
	// deliver it afterwards, one at a time and in order, again after each
	// nack or handler timeout (see MaxRetries), until acked. A full queue is
	// answered 503. Close delivers what is queued within DrainTimeout; what
	// is left then, or if the process dies, is lost although its senders
	// were told 202: use it only when senders cannot wait for handlers. Only
	// topics subscribed to, or initialized with SubscribeInitialize, are
	// queued. Default 0: every request waits for its message's ack or nack.
	QueueSize int `koanf:"queue_size"`
	// In queue mode, a message that was nacked or whose handler timed out
	// is delivered again after RetryBackoff, then after twice as long at
	// each further failure, up to MaxRetryBackoff. Once MaxRetries
	// redeliveries failed too, it leaves its topic for the dead-letter
	// topic (or DeadLetter), so that it never holds back the messages
	// behind it. Defaults 5, 100ms and 10s; MaxRetries negative: no
	// redelivery before dead-lettering.
	MaxRetries      int           `koanf:"max_retries"`
	RetryBackoff    time.Duration `koanf:"retry_backoff"`
	MaxRetryBackoff time.Duration `koanf:"max_retry_backoff"`
	// DeadLetterTopic, in queue mode, is the topic of this Receiver that
	// takes the messages that failed every delivery, with the
	// DeadLetter*Key metadata added; subscribe to it to see them. Its queue
	// is bounded by QueueSize too: while it is full, a failed message stays
	// at the head of its own topic, tried again every MaxRetryBackoff. A
	// message of the dead-letter topic itself that fails every delivery
	// stays at its head likewise. Default "dead_letter".
	DeadLetterTopic string `koanf:"dead_letter_topic"`
	// DeadLetter, when set, replaces DeadLetterTopic: it takes the messages
	// that failed every delivery, and may publish them elsewhere, store
	// them, count them. It runs on the topic's delivery goroutine, so the
	// topic waits for it; msg's context ends when the Receiver closes. A nil
	// error takes the message out of the queue; an error keeps it at the
	// head of its topic, tried again every MaxRetryBackoff.
	DeadLetter func(topic string, msg *message.Message) error `koanf:"-"`
	// DrainTimeout bounds how long Close, in queue mode, goes on delivering
	// the queued messages to the subscriptions of their topics, once it
	// stopped taking requests. Those still queued then are counted in
	// switchyard_http_undelivered_total and in Close's error. Default 5s.
	DrainTimeout time.Duration `koanf:"drain_timeout"`
}

func (c *ReceiverConfig) setDefaults() {
	if c.PathValue == "" {
		c.PathValue = DefaultPathValue
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = DefaultHandlerTimeout
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.SignatureTolerance == 0 {
		c.SignatureTolerance = DefaultSignatureTolerance
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultQueueMaxRetries
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultQueueRetryBackoff
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = DefaultQueueMaxRetryBackoff
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = DefaultDeadLetterTopic
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
}

// Validate reports every invalid field, each error naming its key.
func (c *ReceiverConfig) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, transports.FieldErrorf(key, format, args...))
	}
	if c.MaxBodyBytes < 0 {
		add("max_body_bytes", "must not be negative, got %d", c.MaxBodyBytes)
	}
	if c.HandlerTimeout < 0 {
		add("handler_timeout", "must not be negative, got %s", c.HandlerTimeout)
	}
	if c.SignatureTolerance < 0 {
		add("signature_tolerance", "must not be negative, got %s", c.SignatureTolerance)
	}
	if c.QueueSize < 0 {
		add("queue_size", "must not be negative, got %d", c.QueueSize)
	}
	if c.RetryBackoff < 0 {
		add("retry_backoff", "must not be negative, got %s", c.RetryBackoff)
	}
	if c.MaxRetryBackoff < 0 {
		add("max_retry_backoff", "must not be negative, got %s", c.MaxRetryBackoff)
	}
	if c.DrainTimeout < 0 {
		add("drain_timeout", "must not be negative, got %s", c.DrainTimeout)
	}
	return errors.Join(errs...)
}

// Receiver is an http.Handler that turns each request into a message and a
// message.Subscriber that hands those messages out. Mount it in your own
// server; Subscribe to the topics it should take. Without a subscription to
// its topic a request is answered 503, so the sender keeps the event and
// retries.
//
// The subscriptions of one topic share its messages: each request goes to
// one of them, whichever reads first.
type Receiver struct {
	cfg        ReceiverConfig
	logger     watermill.LoggerAdapter
	bearer     [sha256.Size]byte
	hmacKey    []byte
	retryAfter string
	now        func() time.Time
	metrics    *receiverMetrics

	// closing ends when Close starts: requests waiting for their handler
	// are answered 503. ctx ends once Close stopped delivering queued
	// messages: it ends the pumps and their messages' contexts.
	closing     context.Context
	stopClosing context.CancelFunc
	ctx         context.Context
	cancel      context.CancelFunc

	mu     sync.RWMutex
	closed bool
	topics map[string]*topic
	pumps  sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// NewReceiver returns a Receiver for cfg. A nil logger logs nothing.
func NewReceiver(cfg ReceiverConfig, logger watermill.LoggerAdapter, opts ...Option) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("httptransport: receiver config: %w", err)
	}
	cfg.setDefaults()
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	r := &Receiver{
		cfg:     cfg,
		logger:  logger,
		now:     time.Now,
		metrics: newReceiverMetrics(o.registerer),
		topics:  make(map[string]*topic),
	}
	if cfg.BearerToken != "" {
		r.bearer = sha256.Sum256([]byte(cfg.BearerToken))
	}
	if cfg.HMACSecret != "" {
		r.hmacKey = []byte(cfg.HMACSecret)
	}
	if cfg.RetryAfter > 0 {
		r.retryAfter = strconv.FormatInt(int64(math.Ceil(cfg.RetryAfter.Seconds())), 10)
	}
	r.closing, r.stopClosing = context.WithCancel(context.Background())
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// ServeHTTP answers a POST carrying one message: 204 once a subscription
// acked it (202 once queued, in queue mode); 503 with Retry-After when it
// was nacked, its handler timed out, no one subscribed to its topic or the
// Receiver is closed; 400 when it is not a message (with RequireID, also a
// raw request without Switchyard-Id), 401 when authentication
// fails (with HMACSecret, also when the request was signed for another
// topic), 404 when the request names no topic, 405 for other methods, 413
// when the body is too long, 415 for a CloudEvents format other than JSON.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.reject(w, http.StatusMethodNotAllowed, "only POST")
		return
	}
	if r.isClosed() {
		r.reject(w, http.StatusServiceUnavailable, "receiver closed")
		return
	}
	if r.cfg.BearerToken != "" && !r.bearerOK(req) {
		w.Header().Set(headerAuthenticate, "Bearer")
		r.reject(w, http.StatusUnauthorized, "bearer token missing or wrong")
		return
	}
	name := r.cfg.Topic
	if name == "" {
		name = req.PathValue(r.cfg.PathValue)
	}
	if name == "" {
		r.reject(w, http.StatusNotFound, "no topic in the request path")
		return
	}
	body, err := r.readBody(w, req)
	if err != nil {
		var tooLong *http.MaxBytesError
		if errors.As(err, &tooLong) {
			r.reject(w, http.StatusRequestEntityTooLarge, "body longer than "+strconv.FormatInt(r.cfg.MaxBodyBytes, 10)+" bytes")
		} else {
			r.reject(w, http.StatusBadRequest, "reading the body failed")
		}
		return
	}
	if r.hmacKey != nil {
		if err := verifyRequest(r.hmacKey, r.now(), r.cfg.SignatureTolerance, req.Header, body); err != nil {
			r.reject(w, http.StatusUnauthorized, err.Error())
			return
		}
		if err := verifySignedTopic(req.Header, name); err != nil {
			r.reject(w, http.StatusUnauthorized, err.Error())
			return
		}
	}
	if r.cfg.RequireID && isRaw(req.Header) && len(req.Header[headerRawID]) == 0 {
		r.reject(w, http.StatusBadRequest, "no "+headerRawID+" header: this receiver requires one, so that retries can be deduplicated")
		return
	}
	msg, err := decodeRequest(name, req.Header, body)
	if err != nil {
		var re *requestError
		if errors.As(err, &re) {
			r.reject(w, re.status, re.reason)
		} else {
			r.reject(w, http.StatusBadRequest, err.Error())
		}
		return
	}
	t := r.lookup(name)
	if t == nil {
		r.reject(w, http.StatusServiceUnavailable, "no subscriber for the topic")
		return
	}
	if r.cfg.QueueSize > 0 {
		if err := r.enqueue(t, msg); err != nil {
			r.reject(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	r.deliver(w, req.Context(), t, msg)
}

// deliver hands msg to a subscription and answers with what became of it.
func (r *Receiver) deliver(w http.ResponseWriter, reqCtx context.Context, t *topic, msg *message.Message) {
	ctx, cancel := context.WithTimeout(reqCtx, r.cfg.HandlerTimeout)
	defer cancel()
	stop := context.AfterFunc(r.closing, cancel)
	defer stop()
	msg.SetContext(ctx)
	s, err := t.offer(ctx, msg, false)
	if err != nil {
		if errors.Is(err, errNoSubscriber) {
			r.reject(w, http.StatusServiceUnavailable, "no subscriber for the topic")
		} else {
			r.reject(w, http.StatusServiceUnavailable, "no subscription took the message in time")
		}
		return
	}
	reason := ""
	select {
	case <-msg.Acked():
	case <-msg.Nacked():
		reason = "nacked"
	case <-s.done:
		// Another subscription may take it when the sender retries.
		reason = "the subscription ended before acking"
	case <-ctx.Done():
		reason = "handler timeout"
	}
	if reason != "" && !acked(msg) {
		r.reject(w, http.StatusServiceUnavailable, reason)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// acked reports whether msg was acked, for a select that saw something else
// ready at the same time: an ack always counts.
func acked(msg *message.Message) bool {
	select {
	case <-msg.Acked():
		return true
	default:
		return false
	}
}

func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	if req.ContentLength > r.cfg.MaxBodyBytes {
		return nil, &http.MaxBytesError{Limit: r.cfg.MaxBodyBytes}
	}
	var buf bytes.Buffer
	if req.ContentLength > 0 {
		buf.Grow(int(req.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes))
	return buf.Bytes(), err
}

func (r *Receiver) bearerOK(req *http.Request) bool {
	scheme, token, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Comparing digests keeps the comparison constant-time whatever the
	// lengths.
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], r.bearer[:]) == 1
}

// reject answers status with a short reason; 503s carry Retry-After.
func (r *Receiver) reject(w http.ResponseWriter, status int, reason string) {
	if status == http.StatusServiceUnavailable && r.retryAfter != "" {
		w.Header().Set(headerRetryAfter, r.retryAfter)
	}
	r.logger.Debug("httptransport: request rejected", watermill.LogFields{"status": status, "reason": reason})
	http.Error(w, reason, status)
}

func (r *Receiver) isClosed() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.closed
}

func (r *Receiver) lookup(name string) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.topics[name]
}

// topicLocked returns the topic, making it known. r.mu is held.
func (r *Receiver) topicLocked(name string) *topic {
	t, ok := r.topics[name]
	if !ok {
		t = newTopic(name)
		r.topics[name] = t
	}
	return t
}

// Subscribe returns the channel of a new subscription to topic, closed
// once ctx ends or the Receiver closes. A message not acked when its
// subscription ends has its context canceled and is answered 503 (queued
// messages are delivered again).
func (r *Receiver) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return r.subscribe(ctx, topic, nil)
}

// SubscribeInitialize makes topic known before anyone subscribes to it. In
// queue mode its messages are then queued until a subscription takes them;
// otherwise a topic without subscription is answered 503 all the same.
func (r *Receiver) SubscribeInitialize(topic string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.topicLocked(topic)
	return nil
}

func (r *Receiver) subscribe(ctx context.Context, name string, owner *Subscriber) (<-chan *message.Message, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	t := r.topicLocked(name)
	s := &subscription{topic: t, owner: owner, out: make(chan *message.Message), done: make(chan struct{})}
	if owner != nil && !owner.add(s) {
		return nil, ErrClosed
	}
	t.mu.Lock()
	t.subs = append(t.subs[:len(t.subs):len(t.subs)], s)
	t.notifyLocked()
	startPump := r.cfg.QueueSize > 0 && len(t.queue) > 0 && !t.pumping
	if startPump {
		t.pumping = true
	}
	t.mu.Unlock()
	if startPump {
		r.pumps.Add(1)
		go r.pump(t)
	}
	stop := context.AfterFunc(ctx, s.end)
	s.mu.Lock()
	s.stopAfter = stop
	s.mu.Unlock()
	return s.out, nil
}

// Close stops taking requests: from then on, and for requests still
// waiting for their handler, it answers 503 with Retry-After, so that
// their senders retry or fall back. In queue mode it then goes on
// delivering the queued messages, which were answered 202, to the
// subscriptions of their topics, for DrainTimeout at most; a topic with no
// subscription left is not waited for. Then it ends every subscription
// (their channels are closed when it returns). The messages still queued
// are lost: they are counted in switchyard_http_undelivered_total and in
// Close's error, which wraps ErrCloseTimeout. Idempotent: later calls
// return the same error.
func (r *Receiver) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.close() })
	return r.closeErr
}

// Drain stops taking requests and subscriptions, as Close does, and
// delivers the queued messages to the subscriptions of their topics until
// no topic that has a subscription has any left, or ctx ends; then the
// error says how many were left. Subscriptions stay open: Close ends them,
// and reports what is still queued then. It lets an owner deliver what the
// Receiver took before it stops its handlers (transports.Drainer).
func (r *Receiver) Drain(ctx context.Context) error {
	r.stopTaking()
	r.drain(ctx)
	if ctx.Err() == nil {
		return nil
	}
	left := 0
	for _, t := range r.snapshot() {
		t.mu.Lock()
		left += len(t.queue)
		t.mu.Unlock()
	}
	if left == 0 {
		return nil
	}
	return fmt.Errorf("httptransport: %d queued messages not delivered: %w", left, ctx.Err())
}

// stopTaking makes ServeHTTP answer 503, to requests waiting for their
// handler as well, and Subscribe fail.
func (r *Receiver) stopTaking() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.stopClosing()
}

func (r *Receiver) close() error {
	r.stopTaking()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.DrainTimeout)
	r.drain(ctx)
	cancel()

	r.cancel()
	for _, t := range r.snapshot() {
		t.mu.Lock()
		subs := t.subs
		t.mu.Unlock()
		for _, s := range subs {
			s.end()
		}
	}
	r.pumps.Wait()
	// After the pumps: a last dead-lettering may have made a topic.
	left := 0
	for _, t := range r.snapshot() {
		t.mu.Lock()
		n := len(t.queue)
		t.queue = nil
		t.mu.Unlock()
		if n > 0 {
			left += n
			r.metrics.undelivered.WithLabelValues(topicLabel(t.name)).Add(float64(n))
			r.logger.Error("httptransport: receiver closed with queued messages it had answered 202 for; they are lost",
				errUndelivered, watermill.LogFields{"topic": t.name, "undelivered": n, "drain_timeout": r.cfg.DrainTimeout})
		}
	}
	if left > 0 {
		return fmt.Errorf("%w (drain_timeout %s): %d queued messages, answered 202, were not delivered: "+
			"no subscription acked them in time, or none was left for their topic", ErrCloseTimeout, r.cfg.DrainTimeout, left)
	}
	return nil
}

var errUndelivered = errors.New("httptransport: queued messages not delivered")

func (r *Receiver) snapshot() []*topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	topics := make([]*topic, 0, len(r.topics))
	for _, t := range r.topics {
		topics = append(topics, t)
	}
	return topics
}

// drain returns once no topic that has a subscription has a message
// queued, or ctx ends.
func (r *Receiver) drain(ctx context.Context) {
	for {
		var changed, popped chan struct{}
		for _, t := range r.snapshot() {
			t.mu.Lock()
			if len(t.queue) > 0 && len(t.subs) > 0 {
				changed, popped = t.changed, t.popped
			}
			t.mu.Unlock()
			if changed != nil {
				break
			}
		}
		if changed == nil {
			return
		}
		select {
		case <-changed:
		case <-popped:
		case <-ctx.Done():
			return
		}
	}
}

// enqueue queues msg on t for the pump, which it starts if need be.
func (r *Receiver) enqueue(t *topic, msg *message.Message) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return errors.New("receiver closed")
	}
	return r.push(t, queued{uuid: msg.UUID, metadata: msg.Metadata, payload: msg.Payload})
}

// push queues q on t, closed or not, and starts t's pump if need be.
func (r *Receiver) push(t *topic, q queued) error {
	t.mu.Lock()
	if len(t.queue) >= r.cfg.QueueSize {
		t.mu.Unlock()
		return errQueueFull
	}
	t.queue = append(t.queue, q)
	start := !t.pumping
	t.pumping = true
	t.mu.Unlock()
	if start {
		r.pumps.Add(1)
		go r.pump(t)
	}
	return nil
}

var errQueueFull = errors.New("queue full")

// pump delivers t's queued messages one at a time, in order, each until a
// subscription acks it, waiting longer after each failure, and dead-letters
// a message that failed every allowed delivery. It ends when the queue is
// empty or the Receiver closes.
func (r *Receiver) pump(t *topic) {
	defer r.pumps.Done()
	failures := 0 // of the message at the head of the queue
	for {
		t.mu.Lock()
		if len(t.queue) == 0 || r.ctx.Err() != nil {
			t.pumping = false
			t.mu.Unlock()
			return
		}
		q := t.queue[0]
		t.mu.Unlock()

		switch r.deliverQueued(t, q.message()) {
		case deliveryAcked:
			t.pop()
			failures = 0
			continue
		case deliveryAbandoned:
			continue // to another subscription, at once; or the loop ends
		}
		failures++
		if failures > max(r.cfg.MaxRetries, 0) {
			if r.deadLetter(t, q, failures) {
				t.pop()
				failures = 0
				continue
			}
		}
		r.sleep(r.redeliveryBackoff(failures))
	}
}

type deliveryOutcome int

const (
	deliveryAcked deliveryOutcome = iota
	// deliveryFailed: nacked, or its handler timed out.
	deliveryFailed
	// deliveryAbandoned: the subscription ended before settling it, or the
	// Receiver closed; not the message's fault.
	deliveryAbandoned
)

// deliverQueued hands msg to one subscription of t and waits until it is
// settled. When the handler times out its context is canceled, and msg is
// still waited for: a redelivery while the first handler runs would
// process it twice at once, and out of order.
func (r *Receiver) deliverQueued(t *topic, msg *message.Message) deliveryOutcome {
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	msg.SetContext(ctx)
	s, err := t.offer(r.ctx, msg, true)
	if err != nil {
		return deliveryAbandoned // closed
	}
	timer := time.NewTimer(r.cfg.HandlerTimeout)
	defer timer.Stop()
	select {
	case <-msg.Acked():
		return deliveryAcked
	case <-msg.Nacked():
		return deliveryFailed
	case <-s.done:
		if acked(msg) {
			return deliveryAcked
		}
		return deliveryAbandoned
	case <-r.ctx.Done():
		return deliveryAbandoned
	case <-timer.C:
	}
	cancel()
	r.logger.Info("httptransport: handler timed out; waiting for it to ack or nack before delivering again",
		watermill.LogFields{"topic": t.name, "message_uuid": msg.UUID, "handler_timeout": r.cfg.HandlerTimeout})
	// Settled now or later: an ack counts, anything else is a failure.
	select {
	case <-msg.Acked():
		return deliveryAcked
	case <-msg.Nacked():
		return deliveryFailed
	case <-s.done:
		if acked(msg) {
			return deliveryAcked
		}
		return deliveryFailed
	case <-r.ctx.Done():
		return deliveryAbandoned
	}
}

// deadLetter takes q, which failed failures deliveries, out of t: to
// DeadLetter when set, otherwise into the dead-letter topic. It reports
// whether q left; when it did not, q stays at the head of t and that is
// logged as an error, once per message when it cannot ever leave, at each
// attempt otherwise.
func (r *Receiver) deadLetter(t *topic, q queued, failures int) bool {
	fields := watermill.LogFields{"topic": t.name, "message_uuid": q.uuid, "failed_deliveries": failures}
	if r.cfg.DeadLetter != nil {
		msg := q.message()
		msg.SetContext(r.ctx)
		if err := r.cfg.DeadLetter(t.name, msg); err != nil {
			r.logger.Error("httptransport: DeadLetter failed; the message stays at the head of its topic", err, fields)
			return false
		}
		r.metrics.deadLettered.WithLabelValues(topicLabel(t.name)).Inc()
		r.logger.Error("httptransport: queued message failed every delivery; handed to DeadLetter", errDeliveriesFailed, fields)
		return true
	}
	dlName := r.cfg.DeadLetterTopic
	if t.name == dlName {
		if failures == max(r.cfg.MaxRetries, 0)+1 {
			r.logger.Error("httptransport: a message of the dead-letter topic failed every delivery; "+
				"it stays at its head, delivered again every max_retry_backoff", errDeliveriesFailed, fields)
		}
		return false
	}
	metadata := maps.Clone(q.metadata)
	if metadata == nil {
		metadata = message.Metadata{}
	}
	metadata[DeadLetterReasonKey] = "nacked or timed out " + strconv.Itoa(failures) + " times"
	metadata[DeadLetterTopicKey] = t.name
	metadata[DeadLetterAttemptsKey] = strconv.Itoa(failures)
	r.mu.Lock()
	dl := r.topicLocked(dlName)
	r.mu.Unlock()
	fields["dead_letter_topic"] = dlName
	if err := r.push(dl, queued{uuid: q.uuid, metadata: metadata, payload: q.payload}); err != nil {
		r.logger.Error("httptransport: the dead-letter topic's queue is full; the message stays at the head of its topic",
			err, fields)
		return false
	}
	r.metrics.deadLettered.WithLabelValues(topicLabel(t.name)).Inc()
	r.logger.Error("httptransport: queued message failed every delivery; moved to the dead-letter topic", errDeliveriesFailed, fields)
	return true
}

var errDeliveriesFailed = errors.New("httptransport: every delivery failed")

// redeliveryBackoff is the wait after the failures-th failed delivery.
func (r *Receiver) redeliveryBackoff(failures int) time.Duration {
	return backoff.Exp(r.cfg.RetryBackoff, r.cfg.MaxRetryBackoff, min(failures-1, 30))
}

// sleep waits d or until the Receiver closes.
func (r *Receiver) sleep(d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-r.ctx.Done():
	}
}

// Subscriber returns a handle on r whose Close ends only the subscriptions
// made through it, not r: for handing the one mounted Receiver to several
// consumers that stop on their own.
func (r *Receiver) Subscriber() *Subscriber {
	return &Subscriber{r: r, subs: make(map[*subscription]struct{})}
}

// Subscriber is a handle on a Receiver; see Receiver.Subscriber.
type Subscriber struct {
	r      *Receiver
	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
}

// Subscribe subscribes to topic on the Receiver; see Receiver.Subscribe.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.r.subscribe(ctx, topic, s)
}

// SubscribeInitialize makes topic known; see Receiver.SubscribeInitialize.
func (s *Subscriber) SubscribeInitialize(topic string) error { return s.r.SubscribeInitialize(topic) }

// Close ends the handle's subscriptions and returns once their channels are
// closed. Idempotent.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	subs := make([]*subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	for _, sub := range subs {
		sub.end()
	}
	return nil
}

func (s *Subscriber) add(sub *subscription) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.subs[sub] = struct{}{}
	return true
}

func (s *Subscriber) forget(sub *subscription) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
}

// verifySignedTopic checks, once a signature verified, that it was made for
// topic: the signed Switchyard-Topic must be there, once, and name it.
func verifySignedTopic(h http.Header, topic string) error {
	vs := h[headerTopic]
	if len(vs) != 1 {
		return errors.New("the signature names no topic (" + headerTopic + ")")
	}
	if v, err := headerValue(vs[0]); err != nil || v != topic {
		return errors.New("the request was signed for another topic")
	}
	return nil
}

var (
	_ transports.Drainer           = (*Receiver)(nil)
	_ transports.Drainer           = (*Server)(nil)
	_ http.Handler                 = (*Receiver)(nil)
	_ message.Subscriber           = (*Receiver)(nil)
	_ message.SubscribeInitializer = (*Receiver)(nil)
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)
