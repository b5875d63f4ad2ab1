package httptransport

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/transports"
)

// Receiver is an http.Handler that turns each request into a message and a
// message.Subscriber that hands those messages out. A request for a topic
// without subscription is answered 503, so the sender keeps the event and
// retries; the subscriptions of one topic share its messages, each going to
// whichever reads first.
type Receiver struct {
	cfg        ReceiverConfig
	logger     watermill.LoggerAdapter
	bearer     [sha256.Size]byte
	retryAfter string
	// The queue mode's counters (metrics.go).
	undelivered, deadLettered *prometheus.CounterVec

	// closing ends, under mu, when Close starts; ctx once Close stopped
	// delivering queued messages, ending the pumps and their messages.
	closing     context.Context
	stopClosing context.CancelFunc
	ctx         context.Context
	cancel      context.CancelFunc

	mu     sync.RWMutex
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
	r := &Receiver{cfg: cfg, logger: logger, topics: make(map[string]*topic)}
	r.undelivered, r.deadLettered = newTopicCounters()
	for _, opt := range opts {
		opt(r)
	}
	r.bearer = sha256.Sum256([]byte(cfg.BearerToken))
	if cfg.RetryAfter > 0 {
		r.retryAfter = strconv.FormatInt(int64(math.Ceil(cfg.RetryAfter.Seconds())), 10)
	}
	r.closing, r.stopClosing = context.WithCancel(context.Background())
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// ServeHTTP answers a POST carrying one message: 204 once a subscription
// acked it (202 once queued, in queue mode); 503 with Retry-After when it
// was not, so that the sender retries; 4xx when the request is refused.
// docs/http.md lists every answer.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	t, msg, refused := r.read(w, req)
	switch {
	case refused != nil:
		r.reject(w, refused.status, refused.reason)
	case r.cfg.QueueSize == 0:
		r.deliver(w, req.Context(), t, msg)
	default:
		if err := r.enqueue(t, msg); err != nil {
			r.reject(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
}

// read checks req and decodes its message, or says why it is refused.
func (r *Receiver) read(w http.ResponseWriter, req *http.Request) (*topic, *message.Message, *requestError) {
	refuse := func(status int, reason string) (*topic, *message.Message, *requestError) {
		return nil, nil, &requestError{status: status, reason: reason}
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return refuse(http.StatusMethodNotAllowed, "only POST")
	}
	if r.closing.Err() != nil {
		return refuse(http.StatusServiceUnavailable, "receiver closed")
	}
	if r.cfg.BearerToken != "" && !r.bearerOK(req) {
		w.Header().Set(headerAuthenticate, "Bearer")
		return refuse(http.StatusUnauthorized, "bearer token missing or wrong")
	}
	name := cmp.Or(r.cfg.Topic, req.PathValue(r.cfg.PathValue))
	if name == "" {
		return refuse(http.StatusNotFound, "no topic in the request path")
	}
	var body []byte
	var err error = &http.MaxBytesError{Limit: r.cfg.MaxBodyBytes}
	if req.ContentLength <= r.cfg.MaxBodyBytes { // else refused before it is read
		body, err = io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes))
	}
	if tooLong := (*http.MaxBytesError)(nil); errors.As(err, &tooLong) {
		return refuse(http.StatusRequestEntityTooLarge, "body longer than "+strconv.FormatInt(r.cfg.MaxBodyBytes, 10)+" bytes")
	} else if err != nil {
		return refuse(http.StatusBadRequest, "reading the body failed")
	}
	if r.cfg.HMACSecret != "" {
		if err := verifyRequest([]byte(r.cfg.HMACSecret), time.Now(), r.cfg.SignatureTolerance, req.Header, body); err != nil {
			return refuse(http.StatusUnauthorized, err.Error())
		}
		if err := verifySignedTopic(req.Header, name); err != nil {
			return refuse(http.StatusUnauthorized, err.Error())
		}
	}
	if r.cfg.RequireID && isRaw(req.Header) && len(req.Header[headerRawID]) == 0 {
		return refuse(http.StatusBadRequest, "no "+headerRawID+" header: this receiver requires one, so that retries can be deduplicated")
	}
	msg, err := decodeRequest(name, req.Header, body)
	if err != nil {
		re := &requestError{status: http.StatusBadRequest, reason: err.Error()}
		errors.As(err, &re)
		return nil, nil, re
	}
	r.mu.RLock()
	t := r.topics[name]
	r.mu.RUnlock()
	if t == nil {
		return refuse(http.StatusServiceUnavailable, "no subscriber for the topic")
	}
	return t, msg, nil
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

func (r *Receiver) bearerOK(req *http.Request) bool {
	scheme, token, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Digests keep the comparison constant-time whatever the lengths.
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

// topicLocked returns the topic, making it known. r.mu is held.
func (r *Receiver) topicLocked(name string) *topic {
	t, ok := r.topics[name]
	if !ok {
		t = &topic{name: name, changed: make(chan struct{})}
		r.topics[name] = t
	}
	return t
}

// Subscribe returns the channel of a new subscription to topic, closed
// once ctx ends or the Receiver closes; a message not acked then is
// answered 503 (or, queued, delivered again).
func (r *Receiver) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return r.subscribe(ctx, topic, nil)
}

// SubscribeInitialize makes topic known before anyone subscribes to it, so
// that in queue mode its messages are queued until a subscription takes
// them.
func (r *Receiver) SubscribeInitialize(topic string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing.Err() != nil {
		return ErrClosed
	}
	r.topicLocked(topic)
	return nil
}

func (r *Receiver) subscribe(ctx context.Context, name string, owner *Subscriber) (<-chan *message.Message, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing.Err() != nil {
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
	t.mu.Unlock()
	r.wake(t)
	stop := context.AfterFunc(ctx, s.end)
	s.mu.Lock()
	s.stopAfter = stop
	s.mu.Unlock()
	return s.out, nil
}

// Subscriber returns a handle on r whose Close ends only the subscriptions
// made through it, for consumers of one Receiver that stop on their own.
func (r *Receiver) Subscriber() *Subscriber {
	return &Subscriber{r: r, subs: make(map[*subscription]struct{})}
}

// Subscriber is a handle on a Receiver; see Receiver.Subscriber.
type Subscriber struct {
	r    *Receiver
	mu   sync.Mutex
	subs map[*subscription]struct{} // nil once closed
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
	subs := slices.Collect(maps.Keys(s.subs))
	s.subs = nil
	s.mu.Unlock()
	for _, sub := range subs {
		sub.end()
	}
	return nil
}

func (s *Subscriber) add(sub *subscription) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs == nil {
		return false
	}
	s.subs[sub] = struct{}{}
	return true
}

// verifySignedTopic checks that a verified signature was made for topic.
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
	_ http.Handler                 = (*Receiver)(nil)
	_ message.Subscriber           = (*Receiver)(nil)
	_ message.SubscribeInitializer = (*Receiver)(nil)
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)
