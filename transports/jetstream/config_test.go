package jetstream_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/go-viper/mapstructure/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
	"github.com/switchyard-go/switchyard/transports/jetstream"
	"github.com/switchyard-go/switchyard/transports/jetstream/jstest"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

func TestConfigValidate(t *testing.T) {
	ok := jetstream.Config{URL: "nats://127.0.0.1:4222"}
	require.NoError(t, ok.Validate())
	require.NoError(t, (&jetstream.Config{}).Validate(), "every key has a default")
	require.NoError(t, (&jetstream.Config{URL: "nats://a:1, tls://b:2", Stream: "EVENTS", Subjects: []string{"events.>", "x.*.y"}}).Validate())

	tests := []struct {
		name string
		edit func(*jetstream.Config)
		want string
	}{
		{"both", func(c *jetstream.Config) { c.URLs = []string{"nats://a:1"} }, "urls: set url or urls, not both"},
		{"scheme", func(c *jetstream.Config) { c.URL = "http://h:1" }, "url: must start with nats:// or tls://"},
		{"bad url", func(c *jetstream.Config) { c.URL = "nats://u:s3cret%zz@h:1" }, "url: is not a valid URL"},
		{"bad urls", func(c *jetstream.Config) { c.URL = ""; c.URLs = []string{"nats://h:1", "nats://:s3cret@"} }, "urls[1]: has no host"},
		{"two credentials", func(c *jetstream.Config) { c.User = "u"; c.Password = "s3cret"; c.Token = "s3cret" }, "user: set one of"},
		{"password alone", func(c *jetstream.Config) { c.Password = "s3cret" }, "user: required with password"},
		{"nkey file", func(c *jetstream.Config) { c.NKeyFile = "/nonexistent/seed.nk" }, "nkey_file: cannot read the file"},
		{"creds file", func(c *jetstream.Config) { c.CredsFile = "/nonexistent/u.creds" }, "creds_file: cannot read the file"},
		{"stream name", func(c *jetstream.Config) { c.Stream = "a.b"; c.Subjects = []string{"a"} }, "stream: must not hold"},
		{"stream subjects", func(c *jetstream.Config) { c.Stream = "EVENTS" }, "subjects: required with stream"},
		{"subjects alone", func(c *jetstream.Config) { c.Subjects = []string{"a"} }, "subjects: only with stream"},
		{"bad subject", func(c *jetstream.Config) { c.Stream = "EVENTS"; c.Subjects = []string{"a.>.b"} }, "subjects[0]: is not a valid subject"},
		{"retention", func(c *jetstream.Config) { c.Retention = "forever" }, `retention: must be "limits", "interest" or "workqueue", got "forever"`},
		{"storage", func(c *jetstream.Config) { c.Storage = "tape" }, `storage: must be "file" or "memory", got "tape"`},
		{"replicas", func(c *jetstream.Config) { c.Replicas = 7 }, "replicas: must be between 1 and 5, got 7"},
		{"max_age", func(c *jetstream.Config) { c.MaxAge = -time.Second }, "max_age: must not be negative, got -1s"},
		{"max_bytes", func(c *jetstream.Config) { c.MaxBytes = -1 }, "max_bytes: must not be negative"},
		{"max_msgs", func(c *jetstream.Config) { c.MaxMsgs = -1 }, "max_msgs: must not be negative"},
		{"max_pending", func(c *jetstream.Config) { c.MaxPending = -1 }, "max_pending: must be positive"},
		{"ack_wait", func(c *jetstream.Config) { c.AckWait = time.Millisecond }, "ack_wait: must be at least 100ms"},
		{"max_ack_pending", func(c *jetstream.Config) { c.MaxAckPending = -1 }, "max_ack_pending: must be positive"},
		{"lanes", func(c *jetstream.Config) { c.Lanes = 1 << 17 }, "lanes: must be between 1 and 65536"},
		{"consumer", func(c *jetstream.Config) { c.Consumer = "a b" }, "consumer: must not hold"},
		{"dead_letter_subject", func(c *jetstream.Config) { c.DeadLetterSubject = "{topic}.dead" }, "dead_letter_subject: {topic} may only end the subject"},
		{"dead_letter_stream", func(c *jetstream.Config) { c.DeadLetterStream = "a.b" }, "dead_letter_stream: must not hold"},
		{"key without cert", func(c *jetstream.Config) { c.TLS.KeyFile = "k.pem" }, "tls.cert_file: required with tls.key_file"},
		{"cert without key", func(c *jetstream.Config) { c.TLS.CertFile = "c.pem" }, "tls.key_file: required with tls.cert_file"},
		{"ca file", func(c *jetstream.Config) { c.TLS.CAFile = "/nonexistent/ca.pem" }, "tls.ca_file: open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "s3cret")
			fields, only := transports.FieldErrors(err)
			require.True(t, only, "only field errors: %v", err)
			require.Len(t, fields, 1, "%v", err)
		})
	}
}

// TestConfigRedacted: no way of printing a Config shows a secret.
func TestConfigRedacted(t *testing.T) {
	c := jetstream.Config{
		URL:      "nats://alice:s3cret-url@h1:4222, tls://bob:s3cret-two@h2:4222",
		URLs:     []string{"nats://carol:s3cret-urls@h3:4222", "garbage s3cret-garbage"},
		User:     "dave",
		Password: "s3cret-password",
		Token:    "s3cret-token",
	}
	for _, format := range []string{"%v", "%+v", "%s", "%q", "%x", "%#v"} {
		out := fmt.Sprintf(format, c)
		if format == "%x" {
			raw, err := hex.DecodeString(out)
			require.NoError(t, err)
			out = string(raw)
		}
		require.NotContains(t, out, "s3cret", format)
		require.NotContains(t, out, "alice", format)
	}
	out := fmt.Sprintf("%+v", c)
	require.Contains(t, out, "nats://xxxxx@h1:4222")
	require.Contains(t, out, "tls://xxxxx@h2:4222")
	require.Contains(t, out, "nats://xxxxx@h3:4222")
	require.True(t, strings.HasPrefix(fmt.Sprintf("%#v", c), "jetstream.Config{"))
	// Nor the pointer's, nor a struct that holds one.
	require.NotContains(t, fmt.Sprintf("%v", &c), "s3cret")
	require.NotContains(t, fmt.Sprintf("%+v", struct{ C jetstream.Config }{c}), "s3cret")
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

func buildTransport(t *testing.T, section map[string]any, reg prometheus.Registerer) (transports.Transport, error) {
	t.Helper()
	r := transports.NewRegistry()
	r.Register(jetstream.Name, jetstream.Factory)
	factory, err := r.Lookup(jetstream.Name)
	require.NoError(t, err)
	return factory(transports.Settings{Name: "js", Decode: decodeSection(section), Logger: watermill.NopLogger{}, Registerer: reg})
}

// TestFactory builds the transport from a configuration section with user
// and password, publishes and consumes through it, and reports
// event_queue_depth from the consumer.
func TestFactory(t *testing.T) {
	require.Contains(t, transports.Names(), jetstream.Name, "registered by init")
	srv := jstest.Start(t, func(o *server.Options) { o.Username, o.Password = "hub", "s3cret" })
	reg := prometheus.NewRegistry()
	tr, err := buildTransport(t, map[string]any{
		"url": srv.URL(), "user": "hub", "password": "s3cret", "consumer": "hub",
		"ack_wait": "5s", "max_deliver": -1, "depth_interval": "20ms",
	}, reg)
	require.NoError(t, err)
	require.NotNil(t, tr.Subscriber)
	defer tr.Subscriber.Close()
	defer tr.Publisher.Close()

	const topic = "events_factory"
	require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage("a", nil), message.NewMessage("b", nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)
	first := receive(t, ch)
	// Two stored, none acked: the depth says so.
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(jetstream.NewMetrics(reg).Depth(topic)) == 2
	}, 10*time.Second, 5*time.Millisecond)
	first.Ack()
	receive(t, ch).Ack()
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(jetstream.NewMetrics(reg).Depth(topic)) == 0
	}, 10*time.Second, 5*time.Millisecond)

	t.Run("unknown key", func(t *testing.T) {
		_, err := buildTransport(t, map[string]any{"url": srv.URL(), "maxlen": 5}, prometheus.NewRegistry())
		require.ErrorContains(t, err, "maxlen")
	})
	t.Run("invalid", func(t *testing.T) {
		_, err := buildTransport(t, map[string]any{"url": "redis://h:1", "password": "s3cret"}, prometheus.NewRegistry())
		fields, only := transports.FieldErrors(err)
		require.True(t, only)
		require.Len(t, fields, 2)
		require.NotContains(t, err.Error(), "s3cret")
	})
	t.Run("publisher only", func(t *testing.T) {
		tr, err := buildTransport(t, map[string]any{"url": srv.URL(), "user": "hub", "password": "s3cret"}, prometheus.NewRegistry())
		require.NoError(t, err)
		require.Nil(t, tr.Subscriber)
		require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage("c", nil)))
		require.NoError(t, tr.Publisher.Close())
		require.NoError(t, tr.Publisher.Close(), "idempotent")
		require.ErrorIs(t, tr.Publisher.Publish(topic, message.NewMessage("d", nil)), jetstream.ErrClosed)
	})
}

// TestCredentials connects with each kind of credentials the server takes;
// a wrong secret fails the publish without quoting the secret.
func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	seedFile := filepath.Join(dir, "user.nk")
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	public, err := kp.PublicKey()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(seedFile, append(seed, '\n'), 0o600))
	srv := jstest.Start(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "hub", Password: "s3cret-pw"}}
		o.Nkeys = []*server.NkeyUser{{Nkey: public}}
	})
	tokenSrv := jstest.Start(t, func(o *server.Options) { o.Authorization = "s3cret-token" })

	for _, tt := range []struct {
		name string
		cfg  jetstream.Config
		ok   bool
	}{
		{"user and password", jetstream.Config{URL: srv.URL(), User: "hub", Password: "s3cret-pw"}, true},
		{"password in url", jetstream.Config{URL: strings.Replace(srv.URL(), "nats://", "nats://hub:s3cret-pw@", 1)}, true},
		{"nkey", jetstream.Config{URL: srv.URL(), NKeyFile: seedFile}, true},
		{"token", jetstream.Config{URL: tokenSrv.URL(), Token: "s3cret-token"}, true},
		{"wrong password", jetstream.Config{URL: srv.URL(), User: "hub", Password: "s3cret-wrong"}, false},
		{"wrong token", jetstream.Config{URL: tokenSrv.URL(), Token: "s3cret-wrong"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			// A refused connection fails at the deadline: keep it short
			// there, and long where a busy machine may need it.
			cfg.PublishTimeout = 10 * time.Second
			if !tt.ok {
				cfg.PublishTimeout = 500 * time.Millisecond
			}
			pub, err := jetstream.NewPublisher(cfg, nil, nil)
			require.NoError(t, err, "connecting goes on in the background")
			defer pub.Close()
			err = pub.Publish("events_auth", message.NewMessage("m", nil))
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.NotContains(t, err.Error(), "s3cret")
		})
	}
}

// TestTLS connects over TLS with a client certificate, and fails against
// a server whose CA it does not trust.
func TestTLS(t *testing.T) {
	files := redistest.NewTLSFiles(t)
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: files.ServerCert, KeyFile: files.ServerKey, CaFile: files.CACert, Verify: true,
	})
	require.NoError(t, err)
	srv := jstest.Start(t, func(o *server.Options) { o.TLS, o.TLSVerify, o.TLSConfig = true, true, tc })
	url := strings.Replace(srv.URL(), "nats://", "tls://", 1)

	good := jetstream.Config{URL: url, PublishTimeout: time.Second,
		TLS: jetstream.TLSConfig{CAFile: files.CACert, CertFile: files.ClientCert, KeyFile: files.ClientKey}}
	pub, err := jetstream.NewPublisher(good, nil, nil)
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.Publish("events_tls", message.NewMessage("m", nil)))

	bad := good
	bad.TLS.CAFile = files.OtherCACert
	pub2, err := jetstream.NewPublisher(bad, nil, nil)
	require.NoError(t, err)
	defer pub2.Close()
	require.Error(t, pub2.Publish("events_tls", message.NewMessage("m", nil)))
}
