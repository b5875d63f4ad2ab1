package redisstream

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/internal/tlsfiles"
	"github.com/switchyard-go/switchyard/transports"
)

// Defaults applied to zero-valued fields of Config.
const (
	DefaultMaxLen          = 100000
	DefaultBatchSize       = 64
	DefaultFlushers        = 4
	DefaultPublishTimeout  = 2 * time.Second
	DefaultReadCount       = 256
	DefaultBlock           = 100 * time.Millisecond
	DefaultClaimInterval   = 5 * time.Second
	DefaultClaimMinIdle    = 30 * time.Second
	DefaultMaxRetries      = 5
	DefaultRetryBackoff    = 10 * time.Millisecond
	DefaultMaxRetryBackoff = time.Second
	DefaultTrimInterval    = time.Second
	DefaultTrimUngrouped   = 5 * time.Minute
	DefaultDepthInterval   = 5 * time.Second
	DefaultLanes           = 64
	DefaultDeadLetter      = "{stream}:dead"
)

// Config configures a redisstream transport: the keys of its section of the
// configuration file (docs/redis.md). The zero value of each takes its
// default.
type Config struct {
	// URL is redis://[user:password@]host:port/db, or rediss:// for TLS.
	URL string `koanf:"url"`
	// Addrs are seed addresses of a Cluster or of Sentinels, instead of URL.
	Addrs []string `koanf:"addrs"`
	// MasterName selects Sentinel mode: the name of the monitored master.
	MasterName string `koanf:"master_name"`
	// Cluster forces Cluster mode with a single seed address.
	Cluster bool `koanf:"cluster"`
	// Username and Password (ACL), overriding those of URL.
	Username string `koanf:"username"`
	Password string `koanf:"password"`
	// DB is the database of a single server or Sentinel master (not Cluster).
	DB  int       `koanf:"db"`
	TLS TLSConfig `koanf:"tls"`

	// Format is "watermill" (default) or "flat".
	Format Format `koanf:"format"`
	// MaxLen is the length streams are trimmed to, approximately. Unless
	// AllowTrimUnread, trimming never removes an entry a consumer group has
	// not read and acked: the stream grows past MaxLen while a group lags.
	MaxLen          int64 `koanf:"maxlen"`
	AllowTrimUnread bool  `koanf:"allow_trim_unread"`
	// TrimInterval is how often each stream is trimmed when AllowTrimUnread
	// is false (when true, every XADD trims).
	TrimInterval time.Duration `koanf:"trim_interval"`
	// TrimUngroupedAfter is how long a stream must have had no consumer
	// group before it is trimmed to MaxLen: time for consumers whose groups
	// vanished in a restart of Redis to come back.
	TrimUngroupedAfter time.Duration `koanf:"trim_ungrouped_after"`
	// BatchSize bounds how many concurrent publishes share one pipeline.
	BatchSize int `koanf:"batch_size"`
	// Flushers is how many pipelines may be in flight at once.
	Flushers int `koanf:"flushers"`
	// Linger waits this long for more publishes before sending a pipeline
	// that is not full. Default 0: send at once.
	Linger time.Duration `koanf:"linger"`
	// PublishTimeout bounds each Publish, within the message context's
	// deadline, and the trimming of each stream.
	PublishTimeout time.Duration `koanf:"publish_timeout"`

	// ConsumerGroup is the group subscribers join; created on first use.
	ConsumerGroup string `koanf:"consumer_group"`
	// Consumer is this process's name in the group. Default: the host name,
	// so a restarted process reads its own pending entries first.
	Consumer string `koanf:"consumer"`
	// StartID is where a new group starts: "0" (default: every entry the
	// stream holds, as with watermill-redisstream) or "$" (entries written
	// after). A group created again after it vanished starts at "0".
	StartID string `koanf:"start_id"`
	// ReadCount is the COUNT of each XREADGROUP.
	ReadCount int64 `koanf:"read_count"`
	// Block is the BLOCK of each XREADGROUP.
	Block time.Duration `koanf:"block"`
	// Lanes: entries with the same event_key are handed out one at a time, in
	// stream order; different lanes run concurrently.
	Lanes int `koanf:"lanes"`
	// ClaimInterval and ClaimMinIdle: every ClaimInterval, entries of other
	// consumers idle for ClaimMinIdle are claimed (XAUTOCLAIM).
	ClaimInterval time.Duration `koanf:"claim_interval"`
	ClaimMinIdle  time.Duration `koanf:"claim_min_idle"`
	// MaxRetries, RetryBackoff, MaxRetryBackoff: a nacked message is handed
	// out again after a backoff, up to MaxRetries times (negative: no limit),
	// then dead-lettered.
	MaxRetries      int           `koanf:"max_retries"`
	RetryBackoff    time.Duration `koanf:"retry_backoff"`
	MaxRetryBackoff time.Duration `koanf:"max_retry_backoff"`
	// DeadLetterStream takes malformed entries and messages nacked too often;
	// "{stream}" is replaced by the stream's name.
	DeadLetterStream string `koanf:"dead_letter_stream"`
	// DepthInterval is how often event_queue_depth is refreshed.
	DepthInterval time.Duration `koanf:"depth_interval"`
}

// TLSConfig configures TLS; a rediss:// URL turns it on too.
type TLSConfig struct {
	Enabled            bool   `koanf:"enabled"`
	CAFile             string `koanf:"ca_file"`
	CertFile           string `koanf:"cert_file"`
	KeyFile            string `koanf:"key_file"`
	ServerName         string `koanf:"server_name"`
	InsecureSkipVerify bool   `koanf:"insecure_skip_verify"`
}

func (c *Config) setDefaults() {
	c.Format = cmp.Or(c.Format, FormatWatermill)
	c.MaxLen = cmp.Or(c.MaxLen, DefaultMaxLen)
	c.TrimInterval = cmp.Or(c.TrimInterval, DefaultTrimInterval)
	c.TrimUngroupedAfter = cmp.Or(c.TrimUngroupedAfter, DefaultTrimUngrouped)
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.Flushers = cmp.Or(c.Flushers, DefaultFlushers)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, DefaultPublishTimeout)
	if c.Consumer == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = fmt.Sprintf("pid-%d", os.Getpid())
		}
		c.Consumer = host
	}
	c.StartID = cmp.Or(c.StartID, "0")
	c.ReadCount = cmp.Or(c.ReadCount, DefaultReadCount)
	c.Block = cmp.Or(c.Block, DefaultBlock)
	c.Lanes = cmp.Or(c.Lanes, DefaultLanes)
	c.ClaimInterval = cmp.Or(c.ClaimInterval, DefaultClaimInterval)
	c.ClaimMinIdle = cmp.Or(c.ClaimMinIdle, DefaultClaimMinIdle)
	c.MaxRetries = cmp.Or(c.MaxRetries, DefaultMaxRetries)
	c.RetryBackoff = cmp.Or(c.RetryBackoff, DefaultRetryBackoff)
	c.MaxRetryBackoff = cmp.Or(c.MaxRetryBackoff, DefaultMaxRetryBackoff)
	c.DeadLetterStream = cmp.Or(c.DeadLetterStream, DefaultDeadLetter)
	c.DepthInterval = cmp.Or(c.DepthInterval, DefaultDepthInterval)
}

// Validate reports every invalid field as a *transports.FieldError naming
// its key within the transport's section, joined with errors.Join.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, transports.FieldErrorf(key, format, args...))
	}
	if c.URL == "" && len(c.Addrs) == 0 {
		add("url", "set url or addrs")
	}
	if c.URL != "" && len(c.Addrs) > 0 {
		add("addrs", "set url or addrs, not both")
	}
	if c.URL != "" {
		if _, err := parseURL(c.URL); err != nil {
			add("url", "%v", err)
		}
	}
	if c.Format != "" && c.Format != FormatWatermill && c.Format != FormatFlat {
		add("format", "must be %q or %q, got %q", FormatWatermill, FormatFlat, c.Format)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"trim_interval", c.TrimInterval}, {"trim_ungrouped_after", c.TrimUngroupedAfter}, {"linger", c.Linger}, {"publish_timeout", c.PublishTimeout},
		{"block", c.Block}, {"claim_interval", c.ClaimInterval}, {"claim_min_idle", c.ClaimMinIdle},
		{"retry_backoff", c.RetryBackoff}, {"max_retry_backoff", c.MaxRetryBackoff}, {"depth_interval", c.DepthInterval}} {
		if d.v < 0 {
			add(d.key, "must not be negative, got %s", d.v)
		}
	}
	if c.Linger > 0 && c.Linger < time.Millisecond {
		// Go's timers round short waits up to about a millisecond.
		add("linger", "must be 0 or at least 1ms, got %s", c.Linger)
	}
	if c.MaxLen < 0 {
		add("maxlen", "must not be negative, got %d", c.MaxLen)
	}
	if c.BatchSize < 0 || c.BatchSize > 10000 {
		add("batch_size", "must be between 1 and 10000, got %d", c.BatchSize)
	}
	if c.Flushers < 0 || c.Flushers > 1024 {
		add("flushers", "must be between 1 and 1024, got %d", c.Flushers)
	}
	if c.ReadCount < 0 {
		add("read_count", "must be positive, got %d", c.ReadCount)
	}
	if c.Lanes < 0 || c.Lanes > 1<<16 {
		add("lanes", "must be between 1 and 65536, got %d", c.Lanes)
	}
	if c.StartID != "" && c.StartID != "$" && c.StartID != "0" {
		add("start_id", `must be "$" or "0", got %q`, c.StartID)
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

// universalOptions builds go-redis options. Context deadlines are honoured,
// so a message's deadline bounds its XADD.
func (c *Config) universalOptions() (*redis.UniversalOptions, error) {
	o := &redis.UniversalOptions{
		Addrs:                 c.Addrs,
		MasterName:            c.MasterName,
		IsClusterMode:         c.Cluster,
		Username:              c.Username,
		Password:              c.Password,
		DB:                    c.DB,
		ContextTimeoutEnabled: true,
		// A refused dial fails at once instead of five times 100ms apart,
		// so that with the server down a publish fails in milliseconds and
		// the bus falls back.
		DialerRetries: 1,
	}
	if c.URL != "" {
		u, err := parseURL(c.URL)
		if err != nil {
			return nil, fmt.Errorf("url: %w", err)
		}
		o.Addrs = []string{u.Addr}
		o.Username = cmp.Or(o.Username, u.Username)
		o.Password = cmp.Or(o.Password, u.Password)
		o.DB = cmp.Or(o.DB, u.DB)
		o.TLSConfig = u.TLSConfig
	}
	t := c.TLS
	if !t.Enabled && t.CAFile == "" && t.CertFile == "" && o.TLSConfig == nil {
		return o, nil
	}
	tc := &tls.Config{}
	if o.TLSConfig != nil {
		tc = o.TLSConfig.Clone()
	}
	tc.MinVersion = cmp.Or(tc.MinVersion, tls.VersionTLS12)
	tc.ServerName = cmp.Or(t.ServerName, tc.ServerName)
	// A rediss:// URL's skip_verify=true counts as much as the key.
	tc.InsecureSkipVerify = tc.InsecureSkipVerify || t.InsecureSkipVerify
	if err := tlsfiles.Load(tc, t.CAFile, t.CertFile, t.KeyFile); err != nil {
		return nil, err
	}
	o.TLSConfig = tc
	return o, nil
}
