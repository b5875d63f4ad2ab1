package httptransport

import (
	"cmp"
	"crypto/tls"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-go/switchyard/internal/tlsfiles"
	"github.com/switchyard-go/switchyard/transports"
)

// Format is how a Publisher lays a message out in a request.
type Format string

const (
	// FormatBinary is the CloudEvents binary content mode, the default: the
	// payload is the body, the attributes are ce-* headers.
	FormatBinary Format = "cloudevents-binary"
	// FormatStructured is the CloudEvents structured content mode: one
	// application/cloudevents+json document holds attributes and data.
	FormatStructured Format = "cloudevents-structured"
	// FormatRaw sends the payload as the body, the UUID in Switchyard-Id and
	// the metadata as a JSON object in Switchyard-Metadata.
	FormatRaw Format = "raw"
)

// DefaultMaxIdleConnsPerHost is the default of Config.MaxIdleConnsPerHost:
// net/http's 2 makes concurrent publishers open and close connections.
const DefaultMaxIdleConnsPerHost = 64

// Config configures a Publisher; the zero value of each field takes its
// default. docs/http.md tells each field in full.
type Config struct {
	// URL is where every message is POSTed, http or https: {topic} and
	// {event_type} are replaced, escaped, by the topic and the message's
	// event_type metadata (or EventType), but not in the scheme or host.
	URL string `koanf:"url" redact:"url"`
	// Format is cloudevents-binary (default), cloudevents-structured or raw.
	Format Format `koanf:"format"`
	// Source is the CloudEvents source attribute. Default "switchyard".
	Source string `koanf:"source"`
	// EventType is the CloudEvents type of a message without event_type
	// metadata. Default "switchyard.event".
	EventType string `koanf:"event_type"`
	// ContentType is the media type of the payloads. Default
	// application/json.
	ContentType string `koanf:"content_type"`

	// Timeout bounds the delivery of one message, every attempt and wait
	// included, within the message context's deadline. Default 2s.
	Timeout time.Duration `koanf:"timeout"`
	// AttemptTimeout bounds one attempt. Default: none.
	AttemptTimeout time.Duration `koanf:"attempt_timeout"`
	// MaxRetries is how many times a message is sent again after a
	// connection error, a 429, 502, 503 or 504. Default 3; negative: never.
	MaxRetries int `koanf:"max_retries"`
	// RetryBackoff is the first wait between attempts, doubling up to
	// MaxRetryBackoff, with jitter; a longer Retry-After is honoured.
	// Defaults 50ms and 1s.
	RetryBackoff    time.Duration `koanf:"retry_backoff"`
	MaxRetryBackoff time.Duration `koanf:"max_retry_backoff"`

	// Headers are added to every request (authentication tokens…) and never
	// logged. "Host" sets the request's host.
	Headers map[string]string `koanf:"headers" redact:"values"`
	// HMACSecret, when set, signs every request in a Switchyard-Signature
	// header that a Receiver with the same secret checks.
	HMACSecret string `koanf:"hmac_secret" redact:"secret"`

	// MaxIdleConnsPerHost (default 64) and MaxConnsPerHost (default 0: no
	// bound) bound the keep-alive connections per host; IdleConnTimeout
	// (default 90s) closes an idle one.
	MaxIdleConnsPerHost int           `koanf:"max_idle_conns_per_host"`
	MaxConnsPerHost     int           `koanf:"max_conns_per_host"`
	IdleConnTimeout     time.Duration `koanf:"idle_conn_timeout"`

	// AllowedHosts, when not empty, lists the only hosts the URL may name:
	// names, IP addresses or "*.example.com", each with an optional ":port".
	AllowedHosts []string `koanf:"allowed_hosts"`
	// DenyPrivateAddresses refuses to connect to any address that is not
	// global unicast, checked on each connection after DNS. Off by
	// default; it cannot be combined with Proxy.
	DenyPrivateAddresses bool `koanf:"deny_private_addresses"`
	// Proxy is "" or "none" (the default: direct, whatever HTTP_PROXY says),
	// "environment" (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), or an http://,
	// https:// or socks5:// URL.
	Proxy string `koanf:"proxy" redact:"url"`

	TLS TLSConfig `koanf:"tls"`
}

// TLSConfig configures the TLS of https URLs.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs to trust instead of the system's.
	CAFile string `koanf:"ca_file"`
	// CertFile and KeyFile are the client certificate and its key, PEM.
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
	// ServerName overrides the name the server's certificate is checked
	// against.
	ServerName         string `koanf:"server_name"`
	InsecureSkipVerify bool   `koanf:"insecure_skip_verify"`
}

func (c *Config) setDefaults() {
	c.Format = cmp.Or(c.Format, FormatBinary)
	c.Source = cmp.Or(c.Source, "switchyard")
	c.EventType = cmp.Or(c.EventType, "switchyard.event")
	c.ContentType = cmp.Or(c.ContentType, "application/json")
	c.Timeout = cmp.Or(c.Timeout, 2*time.Second)
	c.MaxRetries = cmp.Or(c.MaxRetries, 3)
	c.RetryBackoff = cmp.Or(c.RetryBackoff, 50*time.Millisecond)
	c.MaxRetryBackoff = cmp.Or(c.MaxRetryBackoff, time.Second)
	c.MaxIdleConnsPerHost = cmp.Or(c.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost)
	c.IdleConnTimeout = cmp.Or(c.IdleConnTimeout, 90*time.Second)
}

// Validate reports every invalid field, each error naming its key. Zero
// values are valid: they take their defaults.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, transports.FieldErrorf(key, format, args...))
	}
	// Errors never quote url or proxy, nor any part of them: they hold
	// secrets.
	if c.URL == "" {
		add("url", "must be set")
	} else if t, err := parseTemplate(c.URL); err != nil {
		add("url", "%v", err)
	} else if len(c.AllowedHosts) > 0 && !hostAllowed(c.AllowedHosts, t.base.Scheme, t.base.Hostname(), t.base.Port()) {
		add("url", "its host and port are not in allowed_hosts")
	}
	switch proxy, ok := proxyFunc(c.Proxy); {
	case !ok:
		add("proxy", "must be none, environment, or an http, https or socks5 URL with a host")
	case proxy != nil && c.DenyPrivateAddresses:
		add("deny_private_addresses", "cannot be checked through a proxy, which resolves and connects to the server itself: set proxy to none, or turn deny_private_addresses off and filter in the proxy")
	}
	if !slices.Contains([]Format{"", FormatBinary, FormatStructured, FormatRaw}, c.Format) {
		add("format", "must be %q, %q or %q, got %q", FormatBinary, FormatStructured, FormatRaw, c.Format)
	}
	if c.ContentType != "" {
		if _, _, err := mime.ParseMediaType(c.ContentType); err != nil {
			add("content_type", "%v", err)
		}
	}
	nonNegative(&errs, "timeout", c.Timeout)
	nonNegative(&errs, "attempt_timeout", c.AttemptTimeout)
	nonNegative(&errs, "retry_backoff", c.RetryBackoff)
	nonNegative(&errs, "max_retry_backoff", c.MaxRetryBackoff)
	nonNegative(&errs, "idle_conn_timeout", c.IdleConnTimeout)
	nonNegative(&errs, "max_idle_conns_per_host", c.MaxIdleConnsPerHost)
	nonNegative(&errs, "max_conns_per_host", c.MaxConnsPerHost)
	for name, value := range c.Headers {
		// An RFC 9110 token.
		if name == "" || strings.Trim(name, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			add("headers", "%q is not a valid header name", name)
		}
		// The value is a secret: say what is wrong with it, never what it is.
		if strings.ContainsAny(value, "\r\n\x00") {
			add("headers", "the value of %q holds a line break or NUL", name)
		}
	}
	for _, h := range c.AllowedHosts {
		if !validHostPattern(h) {
			add("allowed_hosts", "%q is not a host name, an IP address or *.domain, with an optional :port", h)
		}
	}
	switch {
	case c.TLS.CertFile != "" && c.TLS.KeyFile == "":
		add("tls.key_file", "required with tls.cert_file")
	case c.TLS.CertFile == "" && c.TLS.KeyFile != "":
		add("tls.cert_file", "required with tls.key_file")
	}
	return errors.Join(errs...)
}

// nonNegative adds to errs an error naming key when v is negative.
func nonNegative[T ~int | ~int64](errs *[]error, key string, v T) {
	if v < 0 {
		*errs = append(*errs, transports.FieldErrorf(key, "must not be negative, got %v", v))
	}
}

// proxyFunc is the http.Transport Proxy of a Proxy setting, nil for none;
// ok is false when the setting is invalid.
func proxyFunc(v string) (proxy func(*http.Request) (*url.URL, error), ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "none":
		return nil, true
	case "environment":
		return http.ProxyFromEnvironment, true
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || !slices.Contains([]string{"http", "https", "socks5", "socks5h"}, u.Scheme) {
		return nil, false
	}
	return http.ProxyURL(u), true
}

func (t TLSConfig) build() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented
	}
	if err := tlsfiles.Load(tc, t.CAFile, t.CertFile, t.KeyFile); err != nil {
		// tlsfiles.Load names the key first: "tls.ca_file: …".
		if key, reason, ok := strings.Cut(err.Error(), ": "); ok && strings.HasPrefix(key, "tls.") {
			return nil, &transports.FieldError{Key: key, Reason: reason}
		}
		return nil, err
	}
	return tc, nil
}
