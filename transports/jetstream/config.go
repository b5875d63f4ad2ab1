package jetstream

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	js "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/internal/tlsfiles"
	"github.com/switchyard-go/switchyard/transports"
)

// Defaults applied to zero-valued fields of Config.
const (
	DefaultURL              = "nats://127.0.0.1:4222"
	DefaultMaxPending       = 4096
	DefaultPublishTimeout   = 2 * time.Second
	DefaultAckWait          = 30 * time.Second
	DefaultMaxAckPending    = 1024
	DefaultMaxDeliver       = 5
	DefaultRetryBackoff     = 10 * time.Millisecond
	DefaultMaxRetryBackoff  = time.Second
	DefaultLanes            = 64
	DefaultDepthInterval    = 5 * time.Second
	DefaultDeadLetterStream = "DEAD_LETTER"
	DefaultDeadLetterSubj   = "dead_letter.{topic}"
)

// Config configures a jetstream transport. Fields with koanf tags come from
// the transport's section of the configuration file; the zero value of each
// takes its default.
type Config struct {
	// URL is one server, nats://[user:password@]host:port (tls:// for TLS),
	// or several separated by commas. URLs lists them instead.
	URL  string   `koanf:"url"`
	URLs []string `koanf:"urls"`
	// User and Password, Token, NKeyFile (an NKey seed file) and CredsFile
	// (a JWT and seed file, as nsc writes it) authenticate; at most one kind.
	User      string    `koanf:"user"`
	Password  string    `koanf:"password"`
	Token     string    `koanf:"token"`
	NKeyFile  string    `koanf:"nkey_file"`
	CredsFile string    `koanf:"creds_file"`
	TLS       TLSConfig `koanf:"tls"`
	// ClientName is the connection's name as the server's monitoring shows it.
	ClientName string `koanf:"client_name"`

	// Stream names one stream that holds every topic's subject; Subjects
	// are then its subjects (required). Empty: each topic has a stream of
	// its own named after it ('.', '*', '>', separators and white space
	// replaced by '_'), with the topic as its only subject, as
	// watermill-nats provisions them. A topic is always its subject.
	Stream   string   `koanf:"stream"`
	Subjects []string `koanf:"subjects"`
	// Provision creates missing streams on first use, with the settings
	// below; false: streams must exist. Default true.
	Provision *bool `koanf:"provision"`
	// Retention is "limits" (default), "interest" or "workqueue".
	Retention string `koanf:"retention"`
	// Storage is "file" (default) or "memory".
	Storage  string        `koanf:"storage"`
	Replicas int           `koanf:"replicas"`
	MaxAge   time.Duration `koanf:"max_age"`
	MaxBytes int64         `koanf:"max_bytes"`
	MaxMsgs  int64         `koanf:"max_msgs"`
	// DuplicateWindow is how long the stream remembers message UUIDs to
	// drop a publish that was retried. Default: the server's (2 minutes).
	DuplicateWindow time.Duration `koanf:"duplicate_window"`

	// MaxPending bounds the publishes sent and not yet acknowledged by the
	// server, over all topics; a publish waits for room within its deadline.
	MaxPending int `koanf:"max_pending"`
	// PublishTimeout bounds each Publish, within the message context's own
	// deadline.
	PublishTimeout time.Duration `koanf:"publish_timeout"`

	// Consumer is the durable consumer's name; set it to subscribe. In a
	// shared Stream each topic has its own consumer, named Consumer__topic.
	Consumer string `koanf:"consumer"`
	// AckWait is how long the server waits for an ack before it delivers a
	// message again. A message waiting in its lane behind others of its key
	// is kept alive meanwhile.
	AckWait time.Duration `koanf:"ack_wait"`
	// MaxAckPending bounds the messages delivered and not yet acked.
	MaxAckPending int `koanf:"max_ack_pending"`
	// MaxDeliver is how many times a message is delivered before it is
	// dead-lettered; negative: no limit.
	MaxDeliver int `koanf:"max_deliver"`
	// RetryBackoff and MaxRetryBackoff space a nacked message's deliveries.
	RetryBackoff    time.Duration `koanf:"retry_backoff"`
	MaxRetryBackoff time.Duration `koanf:"max_retry_backoff"`
	// Lanes: messages with the same event_key are handed out one at a time,
	// in stream order; different lanes run concurrently.
	Lanes int `koanf:"lanes"`
	// DeadLetterSubject takes malformed messages and messages delivered
	// MaxDeliver times; "{topic}" is replaced by the topic. When Provision
	// is on, DeadLetterStream is created to hold it.
	DeadLetterSubject string `koanf:"dead_letter_subject"`
	DeadLetterStream  string `koanf:"dead_letter_stream"`
	// DepthInterval is how often event_queue_depth is refreshed.
	DepthInterval time.Duration `koanf:"depth_interval"`
}

// TLSConfig configures TLS; a tls:// URL turns it on too.
type TLSConfig struct {
	Enabled            bool   `koanf:"enabled"`
	CAFile             string `koanf:"ca_file"`
	CertFile           string `koanf:"cert_file"`
	KeyFile            string `koanf:"key_file"`
	ServerName         string `koanf:"server_name"`
	InsecureSkipVerify bool   `koanf:"insecure_skip_verify"`
}

func (c *Config) setDefaults() {
	if c.URL == "" && len(c.URLs) == 0 {
		c.URL = DefaultURL
	}
	if c.Provision == nil {
		on := true
		c.Provision = &on
	}
	c.Retention = cmp.Or(c.Retention, "limits")
	c.Storage = cmp.Or(c.Storage, "file")
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.MaxPending = cmp.Or(c.MaxPending, DefaultMaxPending)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, DefaultPublishTimeout)
	c.AckWait = cmp.Or(c.AckWait, DefaultAckWait)
	c.MaxAckPending = cmp.Or(c.MaxAckPending, DefaultMaxAckPending)
	c.MaxDeliver = cmp.Or(c.MaxDeliver, DefaultMaxDeliver)
	c.RetryBackoff = cmp.Or(c.RetryBackoff, DefaultRetryBackoff)
	c.MaxRetryBackoff = cmp.Or(c.MaxRetryBackoff, DefaultMaxRetryBackoff)
	c.Lanes = cmp.Or(c.Lanes, DefaultLanes)
	c.DeadLetterSubject = cmp.Or(c.DeadLetterSubject, DefaultDeadLetterSubj)
	c.DeadLetterStream = cmp.Or(c.DeadLetterStream, DefaultDeadLetterStream)
	c.DepthInterval = cmp.Or(c.DepthInterval, DefaultDepthInterval)
}

// Validate reports every invalid field as a *transports.FieldError naming
// its key within the transport's section, joined with errors.Join.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, transports.FieldErrorf(key, format, args...))
	}
	if c.URL != "" && len(c.URLs) > 0 {
		add("urls", "set url or urls, not both")
	}
	for i, u := range c.serverURLs() {
		key := "url"
		if len(c.URLs) > 0 {
			key = fmt.Sprintf("urls[%d]", i)
		}
		if err := checkURL(u); err != nil {
			add(key, "%v", err)
		}
	}
	kinds := 0
	for _, set := range []bool{c.User != "" || c.Password != "", c.Token != "", c.NKeyFile != "", c.CredsFile != ""} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		add("user", "set one of user/password, token, nkey_file and creds_file")
	}
	if c.Password != "" && c.User == "" {
		add("user", "required with password")
	}
	for _, f := range []struct{ key, path string }{{"nkey_file", c.NKeyFile}, {"creds_file", c.CredsFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			add(f.key, "cannot read the file: %v", errors.Unwrap(err))
		}
	}
	if c.Stream != "" {
		if !validName(c.Stream) {
			add("stream", "must not hold '.', '*', '>', a path separator or white space, got %q", c.Stream)
		}
		if len(c.Subjects) == 0 {
			add("subjects", "required with stream: the subjects the stream holds, as [\"events.>\"]")
		}
	} else if len(c.Subjects) > 0 {
		add("subjects", "only with stream: without it each topic is a stream of its own")
	}
	for i, s := range c.Subjects {
		if !validSubject(s, true) {
			add(fmt.Sprintf("subjects[%d]", i), "is not a valid subject, got %q", s)
		}
	}
	switch c.Retention {
	case "", "limits", "interest", "workqueue":
	default:
		add("retention", `must be "limits", "interest" or "workqueue", got %q`, c.Retention)
	}
	switch c.Storage {
	case "", "file", "memory":
	default:
		add("storage", `must be "file" or "memory", got %q`, c.Storage)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		add("replicas", "must be between 1 and 5, got %d", c.Replicas)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"max_age", c.MaxAge}, {"duplicate_window", c.DuplicateWindow}, {"publish_timeout", c.PublishTimeout},
		{"ack_wait", c.AckWait}, {"retry_backoff", c.RetryBackoff}, {"max_retry_backoff", c.MaxRetryBackoff},
		{"depth_interval", c.DepthInterval}} {
		if d.v < 0 {
			add(d.key, "must not be negative, got %s", d.v)
		}
	}
	if c.AckWait != 0 && c.AckWait < 100*time.Millisecond {
		add("ack_wait", "must be at least 100ms, got %s", c.AckWait)
	}
	if c.MaxBytes < 0 {
		add("max_bytes", "must not be negative, got %d", c.MaxBytes)
	}
	if c.MaxMsgs < 0 {
		add("max_msgs", "must not be negative, got %d", c.MaxMsgs)
	}
	if c.MaxPending < 0 {
		add("max_pending", "must be positive, got %d", c.MaxPending)
	}
	if c.MaxAckPending < 0 {
		add("max_ack_pending", "must be positive, got %d", c.MaxAckPending)
	}
	if c.Lanes < 0 || c.Lanes > 1<<16 {
		add("lanes", "must be between 1 and 65536, got %d", c.Lanes)
	}
	if c.Consumer != "" && !validName(c.Consumer) {
		add("consumer", "must not hold '.', '*', '>', a path separator or white space, got %q", c.Consumer)
	}
	if c.DeadLetterStream != "" && !validName(c.DeadLetterStream) {
		add("dead_letter_stream", "must not hold '.', '*', '>', a path separator or white space, got %q", c.DeadLetterStream)
	}
	if s := c.DeadLetterSubject; s != "" {
		if strings.Contains(strings.TrimSuffix(s, "{topic}"), "{topic}") {
			add("dead_letter_subject", "{topic} may only end the subject, got %q", s)
		} else if !validSubject(strings.ReplaceAll(s, "{topic}", "topic"), false) {
			add("dead_letter_subject", "is not a valid subject, got %q", s)
		}
	}
	switch {
	case c.TLS.CertFile != "" && c.TLS.KeyFile == "":
		add("tls.key_file", "required with tls.cert_file")
	case c.TLS.KeyFile != "" && c.TLS.CertFile == "":
		add("tls.cert_file", "required with tls.key_file")
	case c.TLS.CertFile != "":
		if err := tlsfiles.Load(&tls.Config{}, "", c.TLS.CertFile, c.TLS.KeyFile); err != nil {
			add("tls.cert_file", "%s", strings.TrimPrefix(err.Error(), "tls.cert_file: "))
		}
	}
	if c.TLS.CAFile != "" {
		if err := tlsfiles.Load(&tls.Config{}, c.TLS.CAFile, "", ""); err != nil {
			add("tls.ca_file", "%s", strings.TrimPrefix(err.Error(), "tls.ca_file: "))
		}
	}
	return errors.Join(errs...)
}

// serverURLs are the configured servers, one URL each.
func (c *Config) serverURLs() []string {
	if len(c.URLs) > 0 {
		return c.URLs
	}
	if c.URL == "" {
		return nil
	}
	parts := strings.Split(c.URL, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// checkURL checks one server URL with errors that never quote it: it may
// hold a password.
func checkURL(s string) error {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return errors.New("must start with nats:// or tls://")
	}
	if scheme != "nats" && scheme != "tls" {
		return errors.New("must start with nats:// or tls://")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("is not a valid URL: percent-encode the special characters of a user name or password, " +
			"or give them in the user and password keys")
	}
	if u.Hostname() == "" {
		return errors.New("has no host")
	}
	return nil
}

// validName: stream and consumer names are single subject tokens.
func validName(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".*> \t\r\n/\\")
}

// validSubject checks a subject's tokens; wildcards only where allowed.
func validSubject(s string, wildcards bool) bool {
	if s == "" || strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return false
		case t == "*" && wildcards:
		case t == ">" && wildcards && i == len(tokens)-1:
		case strings.ContainsAny(t, "*>"):
			return false
		}
	}
	return true
}

// provision reports whether missing streams are created.
func (c *Config) provision() bool { return c.Provision == nil || *c.Provision }

// streamFor is the stream that holds topic.
func (c *Config) streamFor(topic string) string {
	if c.Stream != "" {
		return c.Stream
	}
	return sanitize(topic)
}

// consumerFor is the durable consumer that reads topic.
func (c *Config) consumerFor(topic string) string {
	if c.Stream != "" {
		return c.Consumer + "__" + sanitize(topic)
	}
	return c.Consumer
}

// sanitize makes topic a name token: '.', '*', '>', separators and white
// space become '_'.
func sanitize(topic string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(".*> \t\r\n/\\", r) {
			return '_'
		}
		return r
	}, topic)
}

// deadLetterSubject is the dead-letter subject of topic.
func (c *Config) deadLetterSubject(topic string) string {
	return strings.ReplaceAll(c.DeadLetterSubject, "{topic}", topic)
}

// deadLetterStreamSubjects are the subjects the dead-letter stream holds.
func (c *Config) deadLetterStreamSubjects() []string {
	s := c.DeadLetterSubject
	if strings.HasSuffix(s, "{topic}") {
		return []string{strings.TrimSuffix(s, "{topic}") + ">"}
	}
	return []string{s}
}

// streamConfig is the configuration a provisioned stream is created with.
func (c *Config) streamConfig(name string, subjects []string) js.StreamConfig {
	sc := js.StreamConfig{
		Name:       name,
		Subjects:   subjects,
		Replicas:   c.Replicas,
		MaxAge:     c.MaxAge,
		MaxBytes:   c.MaxBytes,
		MaxMsgs:    c.MaxMsgs,
		Duplicates: c.DuplicateWindow,
		Storage:    js.FileStorage,
		Retention:  js.LimitsPolicy,
	}
	if c.MaxBytes == 0 {
		sc.MaxBytes = -1
	}
	if c.MaxMsgs == 0 {
		sc.MaxMsgs = -1
	}
	if c.Storage == "memory" {
		sc.Storage = js.MemoryStorage
	}
	switch c.Retention {
	case "interest":
		sc.Retention = js.InterestPolicy
	case "workqueue":
		sc.Retention = js.WorkQueuePolicy
	}
	return sc
}
