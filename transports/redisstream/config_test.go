package redisstream_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/go-viper/mapstructure/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

func TestConfigValidate(t *testing.T) {
	ok := redisstream.Config{URL: "redis://127.0.0.1:6379/0"}
	require.NoError(t, ok.Validate())
	require.NoError(t, (&redisstream.Config{Addrs: []string{"a:1", "b:2", "c:3"}}).Validate())

	tests := []struct {
		name string
		edit func(*redisstream.Config)
		want string
	}{
		{"no address", func(c *redisstream.Config) { c.URL = "" }, "url: set url or addrs"},
		{"both", func(c *redisstream.Config) { c.Addrs = []string{"a:1"} }, "addrs: set url or addrs, not both"},
		{"scheme", func(c *redisstream.Config) { c.URL = "http://h:1" }, "url: must start with redis://"},
		{"bad url", func(c *redisstream.Config) { c.URL = "redis://:s3cret@h:port/0" }, "url: the port after the host must be a number"},
		{"bad db", func(c *redisstream.Config) { c.URL = "redis://h:1/x" }, "url: the path must be a database number"},
		{"format", func(c *redisstream.Config) { c.Format = "xml" }, `format: must be "watermill" or "flat", got "xml"`},
		{"maxlen", func(c *redisstream.Config) { c.MaxLen = -1 }, "maxlen: must not be negative"},
		{"batch_size", func(c *redisstream.Config) { c.BatchSize = 10001 }, "batch_size: must be between 1 and 10000"},
		{"flushers", func(c *redisstream.Config) { c.Flushers = -1 }, "flushers: must be between 1 and 1024"},
		{"read_count", func(c *redisstream.Config) { c.ReadCount = -5 }, "read_count: must be positive"},
		{"lanes", func(c *redisstream.Config) { c.Lanes = 1 << 17 }, "lanes: must be between 1 and 65536"},
		{"start_id", func(c *redisstream.Config) { c.StartID = "5" }, `start_id: must be "$" or "0", got "5"`},
		{"key without cert", func(c *redisstream.Config) { c.TLS.KeyFile = "k.pem" }, "tls.cert_file: required with tls.key_file"},
		{"cert without key", func(c *redisstream.Config) { c.TLS.CertFile = "c.pem" }, "tls.key_file: required with tls.cert_file"},
		{"trim_interval", func(c *redisstream.Config) { c.TrimInterval = -time.Second }, "trim_interval: must not be negative, got -1s"},
		{"linger", func(c *redisstream.Config) { c.Linger = -1 }, "linger: must not be negative"},
		{"publish_timeout", func(c *redisstream.Config) { c.PublishTimeout = -1 }, "publish_timeout: must not be negative"},
		{"block", func(c *redisstream.Config) { c.Block = -1 }, "block: must not be negative"},
		{"claim_interval", func(c *redisstream.Config) { c.ClaimInterval = -1 }, "claim_interval: must not be negative"},
		{"claim_min_idle", func(c *redisstream.Config) { c.ClaimMinIdle = -1 }, "claim_min_idle: must not be negative"},
		{"retry_backoff", func(c *redisstream.Config) { c.RetryBackoff = -1 }, "retry_backoff: must not be negative"},
		{"max_retry_backoff", func(c *redisstream.Config) { c.MaxRetryBackoff = -1 }, "max_retry_backoff: must not be negative"},
		{"depth_interval", func(c *redisstream.Config) { c.DepthInterval = -1 }, "depth_interval: must not be negative"},
	}
	// The others are combined into one config.
	alone := map[string]bool{"no address": true, "both": true, "scheme": true, "bad url": true, "bad db": true,
		"key without cert": true, "cert without key": true}
	all := ok
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "s3cret")
			fields, only := transports.FieldErrors(err)
			require.True(t, only, "only field errors: %v", err)
			require.Len(t, fields, 1)
			require.Equal(t, tt.want, fields[0].Key+": "+fields[0].Reason[:len(tt.want)-len(fields[0].Key)-2])
		})
		if !alone[tt.name] {
			tt.edit(&all)
		}
	}
	// Every invalid field is reported at once.
	err := all.Validate()
	require.Error(t, err)
	fields, only := transports.FieldErrors(err)
	require.True(t, only, "only field errors: %v", err)
	var keys []string
	for _, f := range fields {
		keys = append(keys, f.Key)
	}
	require.ElementsMatch(t, []string{"format", "maxlen", "batch_size", "flushers", "read_count", "lanes", "start_id",
		"trim_interval", "linger", "publish_timeout", "block",
		"claim_interval", "claim_min_idle", "retry_backoff", "max_retry_backoff", "depth_interval"}, keys)

	_, err = redisstream.NewPublisher(redisstream.Config{URL: "redis://:s3cret@h:port/0"}, nil, nil)
	require.ErrorContains(t, err, "redisstream: config: url: ")
	require.NotContains(t, err.Error(), "s3cret")
}

// decodeSection stands in for the bus's koanf decoding of a transport
// section: koanf tags, durations from strings, unknown keys an error.
func decodeSection(section map[string]any) func(any) error {
	return func(target any) error {
		d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			TagName:     "koanf",
			ErrorUnused: true,
			DecodeHook:  mapstructure.StringToTimeDurationHookFunc(),
			Result:      target,
		})
		if err != nil {
			return err
		}
		return d.Decode(section)
	}
}

func buildTransport(t *testing.T, section map[string]any) (transports.Transport, error) {
	t.Helper()
	return buildTransportLogged(t, section, watermill.NopLogger{})
}

func buildTransportLogged(t *testing.T, section map[string]any, logger watermill.LoggerAdapter) (transports.Transport, error) {
	t.Helper()
	r := transports.NewRegistry()
	r.Register(redisstream.Name, redisstream.Factory)
	factory, err := r.Lookup(redisstream.Name)
	require.NoError(t, err)
	return factory(transports.Settings{
		Name:       "redis",
		Decode:     decodeSection(section),
		Logger:     logger,
		Registerer: prometheus.NewRegistry(),
	})
}

func TestFactory(t *testing.T) {
	srv := redistest.Start(t)
	require.Contains(t, transports.Names(), redisstream.Name, "registered by init")

	tr, err := buildTransport(t, map[string]any{
		"url":            srv.URL(),
		"consumer_group": "hub",
		"start_id":       "0",
		"maxlen":         1000,
		"block":          "50ms",
		"trim_interval":  "20ms",
		"tls":            map[string]any{"enabled": false},
	})
	require.NoError(t, err)
	require.NotNil(t, tr.Publisher)
	require.NotNil(t, tr.Subscriber)

	ch := subscribe(t, tr.Subscriber, "events:factory")
	require.NoError(t, tr.Publisher.Publish("events:factory", msg("one")))
	require.Equal(t, []string{"one"}, receiveAck(t, ch, 1, 5*time.Second))

	// One client for both: closing the publisher leaves the subscriber's
	// connection working; closing both closes it, once.
	require.NoError(t, tr.Publisher.Close())
	xadd(t, srv, "events:factory", redisstream.FieldWatermillUUID, "u-2", redisstream.FieldPayload, "two")
	require.Equal(t, []string{"two"}, receiveAck(t, ch, 1, 5*time.Second))
	require.NoError(t, tr.Subscriber.Close())
	require.NoError(t, tr.Publisher.Close(), "closed once: no second client.Close error")
	require.NoError(t, tr.Subscriber.Close())
	require.Eventually(t, func() bool { return connectedClients(t, srv) == 0 },
		5*time.Second, 10*time.Millisecond, "the shared client is closed")

	t.Run("publisher only", func(t *testing.T) {
		tr, err := buildTransport(t, map[string]any{"url": srv.URL()})
		require.NoError(t, err)
		require.Nil(t, tr.Subscriber, "no consumer_group: no subscriber")
		require.NoError(t, tr.Publisher.Close())
	})
	t.Run("errors name keys", func(t *testing.T) {
		for section, want := range map[string]map[string]any{
			"maxlen":            {"url": srv.URL(), "maxlen": -1},
			"urll":              {"urll": srv.URL()},
			"url: set url":      {},
			"tls.ca_file":       {"url": srv.URL(), "tls": map[string]any{"ca_file": "/nonexistent.pem"}},
			"claim_min_idle":    {"url": srv.URL(), "claim_min_idle": "-1s"},
			"read_count":        {"url": srv.URL(), "read_count": -1},
			"format: must be":   {"url": srv.URL(), "format": "json"},
			"start_id: must be": {"url": srv.URL(), "start_id": "1-0"},
		} {
			_, err := buildTransport(t, want)
			require.ErrorContains(t, err, section)
		}
	})
}
