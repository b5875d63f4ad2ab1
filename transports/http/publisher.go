package httptransport

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/internal/backoff"
	"github.com/switchyard-go/switchyard/internal/metakey"
	"github.com/switchyard-go/switchyard/transports"
)

// maxDrain is how much of a response body is read so that its connection
// can be reused.
const maxDrain = 64 << 10

// Publisher POSTs each message to the URL its Config describes. It is safe
// for concurrent use.
type Publisher struct {
	cfg       Config
	tmpl      *urlTemplate
	settings  eventSettings
	transport *http.Transport
	rt        http.RoundTripper // transport, or a test's
	logger    watermill.LoggerAdapter
	// static holds the headers every request carries.
	static http.Header
	host   string

	mu       sync.RWMutex
	closed   bool
	inFlight sync.WaitGroup
}

// NewPublisher returns a Publisher for cfg. A nil logger logs nothing.
func NewPublisher(cfg Config, logger watermill.LoggerAdapter) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("httptransport: config: %w", err)
	}
	cfg.setDefaults()
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	// Userinfo becomes a Basic Authorization header and leaves the URL,
	// which errors show.
	rawURL, basicAuth := stripUserinfo(cfg.URL)
	tmpl, err := parseTemplate(rawURL)
	if err != nil {
		return nil, fmt.Errorf("httptransport: config: %w", transports.FieldErrorf("url", "%v", err))
	}
	tlsConfig, err := cfg.TLS.build()
	if err != nil {
		return nil, fmt.Errorf("httptransport: config: %w", err)
	}
	proxy, _ := proxyFunc(cfg.Proxy)
	p := &Publisher{cfg: cfg, tmpl: tmpl, logger: logger, static: http.Header{},
		settings: eventSettings{source: cfg.Source, defaultType: cfg.EventType, contentType: cfg.ContentType, media: mediaType(cfg.ContentType)}}
	p.transport = &http.Transport{
		// None unless configured: a proxy would also take the address
		// checks out of deny_private_addresses' hands.
		Proxy:                 proxy,
		DialContext:           newDialer(cfg.DenyPrivateAddresses),
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   10 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		IdleConnTimeout:       cfg.IdleConnTimeout,
		ExpectContinueTimeout: time.Second,
		// Response bodies are discarded: asking for gzip only costs.
		DisableCompression: true,
	}
	p.rt = p.transport
	if basicAuth != "" {
		p.static.Set("Authorization", basicAuth)
	}
	for name, value := range cfg.Headers {
		if http.CanonicalHeaderKey(name) == "Host" {
			p.host = value
		} else {
			p.static.Set(name, value) // after the userinfo's: it wins
		}
	}
	// Those of every event: setBinaryHeaders sets an event's own.
	p.static.Set(headerContentType, cfg.ContentType)
	switch cfg.Format {
	case FormatStructured:
		p.static.Set(headerContentType, mediaStructured)
	case FormatBinary:
		p.static.Set(headerSpecVersion, "1.0")
		p.static.Set("Ce-Source", percentEncode(cfg.Source))
	}
	return p, nil
}

// Publish sends msgs to topic one after another, each once the previous one
// was answered 2xx, and returns the first error.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrClosed
	}
	p.inFlight.Add(1)
	p.mu.RUnlock()
	defer p.inFlight.Done()
	for _, msg := range msgs {
		if err := p.publish(topic, msg); err != nil {
			return err
		}
	}
	return nil
}

// Close makes further Publish calls fail with ErrClosed, waits for those in
// flight and closes the idle connections. Idempotent.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.inFlight.Wait()
	p.transport.CloseIdleConnections()
	return nil
}

// request is one message, encoded once and sent as many times as it takes.
type request struct {
	url    *url.URL
	header http.Header
	body   []byte
	mem    *requestMemory
}

// requestMemory is, in one allocation, the backing array of a request's
// header values (enough for a binary-mode event with the bus's metadata)
// and the body reader of its first attempt (later attempts get their own:
// RoundTrip may return before it is done reading the previous one).
type requestMemory struct {
	reader bytes.Reader
	values [8]string
}

// encode makes the request of msg to topic, in the configured format.
func (p *Publisher) encode(topic string, msg *message.Message) (request, error) {
	if topic == "" && p.tmpl.hasTopic {
		return request{}, errors.New("empty topic, and the URL has {topic}")
	}
	if p.cfg.Format == FormatRaw {
		return p.encodeRaw(topic, msg)
	}
	var extBuf [6]attr
	ev, ext, err := newEvent(topic, msg, p.settings, extBuf[:])
	if err != nil {
		return request{}, err
	}
	u, err := p.tmpl.url(topic, ev.typ)
	if err != nil {
		return request{}, err
	}
	if p.cfg.Format == FormatStructured {
		r, _ := p.newRequest(u, topic, 0)
		media := p.settings.media
		if media == "" || ev.dataContentType != p.settings.contentType {
			media = mediaType(ev.dataContentType)
		}
		r.body = structuredBody(&ev, ext, media)
		return r, nil
	}
	n := 2 + len(ext) // id, type
	for _, v := range [...]string{ev.subject, ev.time, ev.dataSchema} {
		if v != "" {
			n++
		}
	}
	r, values := p.newRequest(u, topic, n)
	setBinaryHeaders(r.header, &ev, ext, &p.settings, values)
	r.body = msg.Payload
	return r, nil
}

func (p *Publisher) encodeRaw(topic string, msg *message.Message) (request, error) {
	if err := checkMessage(msg, headerRawID); err != nil {
		return request{}, err
	}
	u, err := p.tmpl.url(topic, cmp.Or(msg.Metadata[metakey.EventType], p.settings.defaultType))
	if err != nil {
		return request{}, err
	}
	r, values := p.newRequest(u, topic, 2)
	r.body = msg.Payload
	set := func(name, value string) { values = setValue(r.header, values, name, value) }
	if v, ok := msg.Metadata[metaDataContentType]; ok && v != p.settings.contentType && validMediaType(v) {
		set(headerContentType, v)
	}
	set(headerRawID, percentEncode(msg.UUID))
	if len(msg.Metadata) > 0 {
		set(headerRawMetadata, metadataJSONString(msg.Metadata, true))
	}
	return r, nil
}

// newRequest starts a request to u with the static headers and, when
// requests are signed, the topic, so that a request signed for one topic
// is refused on another. Its header map is sized for n headers more:
// exactly, as up to 8 entries fit in one map group. It returns the
// backing array of header values that setValue appends to.
func (p *Publisher) newRequest(u *url.URL, topic string, n int) (request, []string) {
	if p.cfg.HMACSecret != "" {
		n++
	}
	r := request{url: u, header: make(http.Header, len(p.static)+n), mem: new(requestMemory)}
	maps.Copy(r.header, p.static)
	values := r.mem.values[:0]
	if p.cfg.HMACSecret != "" {
		values = setValue(r.header, values, headerTopic, percentEncode(topic))
	}
	return r, values
}

// setValue sets h[name] to value, appended to values, whose backing array
// the header then shares; it returns values.
func setValue(h http.Header, values []string, name, value string) []string {
	values = append(values, value)
	h[name] = values[len(values)-1 : len(values) : len(values)]
	return values
}

func (p *Publisher) publish(topic string, msg *message.Message) error {
	r, err := p.encode(topic, msg)
	if err != nil {
		return fmt.Errorf("httptransport: publish %s to %q: %w", msg.UUID, topic, permanent(err))
	}
	ctx, cancel := context.WithTimeout(msg.Context(), p.cfg.Timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := p.send(ctx, r, attempt)
		if err == nil {
			return nil
		}
		fail := func(err error) error {
			return fmt.Errorf("httptransport: publish %s to %q (%d attempts): %w", msg.UUID, topic, attempt+1, err)
		}
		// Retried: failed connections, and overloaded or restarting servers.
		se := (*StatusError)(nil)
		isStatus := errors.As(err, &se)
		retryable := ctx.Err() == nil && !errors.Is(err, ErrPermanent) &&
			(!isStatus || slices.Contains([]int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}, se.Code))
		if !retryable || attempt >= p.cfg.MaxRetries {
			return fail(err)
		}
		// RetryBackoff doubled at each attempt, at most MaxRetryBackoff,
		// with jitter in its upper half; or a longer Retry-After.
		wait := backoff.Exp(p.cfg.RetryBackoff, p.cfg.MaxRetryBackoff, min(attempt, 30))
		wait = wait/2 + rand.N(wait/2+1)
		if isStatus && se.RetryAfter > wait {
			wait = se.RetryAfter
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
			return fail(err) // the wait would outlast the time left
		}
		p.logger.Debug("httptransport: retrying", watermill.LogFields{
			"message_uuid": msg.UUID, "topic": topic, "attempt": attempt + 1, "wait": wait, "err": err.Error(),
		})
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fail(errors.Join(err, context.Cause(ctx)))
		}
	}
}

// send makes one attempt. It calls the Transport, not an http.Client, so
// that redirects are never followed and nothing is copied for them.
func (p *Publisher) send(ctx context.Context, r request, attempt int) error {
	if p.cfg.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.AttemptTimeout)
		defer cancel()
	}
	header := r.header
	if p.cfg.HMACSecret != "" {
		// An earlier attempt's Transport may still be writing its request:
		// each attempt signs a header map of its own.
		if attempt > 0 {
			header = maps.Clone(r.header)
		}
		header[headerSignature] = []string{signRequest([]byte(p.cfg.HMACSecret), time.Now(), header, r.body)}
	}
	// The cached URL is shared: RoundTrip does not modify it.
	req := (&http.Request{Method: http.MethodPost, URL: r.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Host: cmp.Or(p.host, r.url.Host), Body: http.NoBody}).WithContext(ctx)
	req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	if len(r.body) > 0 {
		body := &r.mem.reader
		if attempt == 0 {
			body.Reset(r.body)
		} else {
			body = bytes.NewReader(r.body)
		}
		// net/http writes headers and body in one go for this type only.
		req.Body, req.ContentLength = io.NopCloser(body), int64(len(r.body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(r.body)), nil }
	}
	resp, err := p.rt.RoundTrip(req)
	if err != nil {
		return transportError(r.url, err)
	}
	// Drain what is small enough for the connection to go back to the pool.
	if resp.Body != http.NoBody && resp.ContentLength != 0 {
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	}
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return &StatusError{Code: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get(headerRetryAfter), time.Now())}
}

// transportError names the URL without its query, where secrets hide, and
// marks permanent what no retry fixes.
func transportError(u *url.URL, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	err = fmt.Errorf("POST %s: %w", u.Scheme+"://"+u.Host+u.EscapedPath(), err)
	if errors.Is(err, ErrAddressRefused) || tlsFailure(err) {
		return permanent(err)
	}
	return err
}

// tlsFailure reports whether err is a TLS failure that the same request
// meets again.
func tlsFailure(err error) bool {
	if opErr := (*net.OpError)(nil); errors.As(err, &opErr) && opErr.Op == "remote error" {
		return true // crypto/tls's alert from the peer
	}
	for _, target := range []any{
		new(*tls.CertificateVerificationError), new(tls.RecordHeaderError), new(tls.AlertError), new(*tls.ECHRejectionError),
		new(x509.UnknownAuthorityError), new(x509.HostnameError), new(x509.CertificateInvalidError),
		new(x509.SystemRootsError), new(x509.ConstraintViolationError), new(x509.UnhandledCriticalExtension),
	} {
		if errors.As(err, target) {
			return true
		}
	}
	return false
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date.
// Unreadable or past values are zero; it is at most an hour.
func parseRetryAfter(v string, now time.Time) time.Duration {
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(max(secs, 0), 3600)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), time.Hour)
}

var _ message.Publisher = (*Publisher)(nil)
