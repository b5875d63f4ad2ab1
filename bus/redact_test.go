package bus

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
	"github.com/switchyard-go/switchyard/transports/redisstream"
)

func TestRedactString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"redis://user:pass@host:6379/0", "redis://user:xxxxx@host:6379/0"},
		{"rediss://:pass@host:6380", "rediss://:xxxxx@host:6380"},
		{"http://u:p@h/x", "http://u:xxxxx@h/x"},
		{"HTTPS://u:p@h", "HTTPS://u:xxxxx@h"},
		{"amqp://guest:guest@rabbit:5672/", "amqp://guest:xxxxx@rabbit:5672/"},
		{`dial "redis://u:p@ss@h:1": refused`, `dial "redis://u:xxxxx@h:1": refused`},
		{"a redis://u:p1@h1 and redis://v:p2@h2", "a redis://u:xxxxx@h1 and redis://v:xxxxx@h2"},
		{`["redis://u:p1@h1","redis://v:p2@h2"]`, `["redis://u:xxxxx@h1","redis://v:xxxxx@h2"]`},
		// Every query value of a URL, whatever its name; names stay.
		{"https://h/x?token=abc&page=2", "https://h/x?token=xxxxx&page=xxxxx"},
		{"https://h/x?page=2&api_key=abc#top", "https://h/x?page=xxxxx&api_key=xxxxx#top"},
		{"https://h/e/{topic}?code=s3cr3t&type={event_type}", "https://h/e/{topic}?code=xxxxx&type=xxxxx"},
		{"https://u:p@h/x?sig=abc", "https://u:xxxxx@h/x?sig=xxxxx"},
		{"https://h/x?bare-token", "https://h/x?xxxxx"},
		{"https://h/x?empty=&a", "https://h/x?empty=&xxxxx"},
		{`Post "https://h/x?sig=abc": refused`, `Post "https://h/x?sig=xxxxx": refused`},
		{"two https://a/?k=1 and http://b/?k=2", "two https://a/?k=xxxxx and http://b/?k=xxxxx"},
		// Outside a URL, secret-named parameters only.
		{"/x?token=abc&page=2", "/x?token=xxxxx&page=2"},
		{"redis://host:6379/0", "redis://host:6379/0"},
		{"plain text: no secrets", "plain text: no secrets"},
		{"redis://user:xxxxx@host", "redis://user:xxxxx@host"},
	} {
		assert.Equal(t, tc.want, redactString(tc.in), tc.in)
	}
}

func TestRedactError(t *testing.T) {
	t.Parallel()
	assert.NoError(t, scrubError(nil, nil))

	cause := &url.Error{Op: "Get", URL: "https://u:hunter2@api.example/x", Err: fs.ErrNotExist}
	err := scrubError(fmt.Errorf("bus: publish: %w", cause), nil)
	assert.Equal(t, `bus: publish: Get "https://u:xxxxx@api.example/x": file does not exist`, err.Error())
	assert.ErrorIs(t, err, fs.ErrNotExist)
	var ue *url.Error
	require.ErrorAs(t, err, &ue)
	assert.Same(t, cause, ue)

	joined := scrubError(errors.Join(ErrClosed, errors.New("redis://:hunter2@h")), nil)
	assert.ErrorIs(t, joined, ErrClosed)
	assert.NotContains(t, joined.Error(), "hunter2")
}

func secretConfig() Config {
	c := DefaultConfig()
	c.Transports["redis"] = map[string]any{
		"type":     "redisstream",
		"url":      "redis://user:hunter2@redis:6379/0",
		"addrs":    []any{"rediss://:hunter2@a:1", "b:2"},
		"password": "hunter2",
		"tls":      map[string]any{"private_key": "hunter2", "ca_file": "/etc/ca.pem"},
		"empty":    map[string]any{"token": ""},
	}
	c.Transports["http"] = map[string]any{
		"type": "http",
		"url":  "https://svc:hunter2@hub/api/v1/events/{topic}?apikey=hunter2",
		"headers": map[string]any{"Authorization": "Bearer hunter2", "X-Api-Key": "hunter2", "Cookie": "s=hunter2",
			"X-Hub-Sig": "hunter2", "X-Empty": ""},
		"hmac_secret": "hunter2",
		"proxy":       "http://proxyuser:hunter2@proxy:3128",
		"webhook":     "https://hooks.example/x?code=hunter2&tenant=acme",
		"auth":        map[string]any{"client_secret": "hunter2", "ApiKey": "hunter2", "Credentials": []any{"hunter2"}, "AccessToken": 1234},
	}
	return c
}

func TestConfigStringRedacts(t *testing.T) {
	t.Parallel()
	c := secretConfig()
	s := c.String()
	assert.NotContains(t, s, "hunter2")
	assert.NotContains(t, s, "1234")
	for _, want := range []string{
		"redis://user:xxxxx@redis:6379/0",
		"rediss://:xxxxx@a:1",
		"password: xxxxx",
		"X-Hub-Sig: xxxxx",
		`X-Empty: ""`,
		"hmac_secret: xxxxx",
		"http://proxyuser:xxxxx@proxy:3128",
		"https://hooks.example/x?code=xxxxx&tenant=xxxxx",
		"https://svc:xxxxx@hub/api/v1/events/{topic}?apikey=xxxxx",
		"ca_file: /etc/ca.pem",
		`token: ""`,
		"lanes: 64",
		"window: 100ms",
	} {
		assert.Contains(t, s, want)
	}
	// The original is untouched.
	assert.Equal(t, "hunter2", c.Transports["redis"]["password"])

	// Sections come in the order of the documentation.
	assert.Less(t, strings.Index(s, "bus:"), strings.Index(s, "transports:"))
	assert.Less(t, strings.Index(s, "transports:"), strings.Index(s, "routing:"))
	assert.Less(t, strings.Index(s, "routing:"), strings.Index(s, "coalescing:"))
	assert.Less(t, strings.Index(s, "coalescing:"), strings.Index(s, "consume:"))

	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		assert.NotContains(t, fmt.Sprintf(format, c), "hunter2", format)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
	assert.NotContains(t, buf.String(), "hunter2")
	assert.Contains(t, buf.String(), "xxxxx")
}

func TestConfigStringLoadsBack(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]Config{"default": DefaultConfig(), "sample": sampleConfig()} {
		got, err := LoadConfig(FromBytes([]byte(c.String()), "yaml"))
		require.NoError(t, err, name)
		assert.Equal(t, c, got, name)
	}
	// String shows the effective configuration.
	assert.Contains(t, Config{}.String(), "queue_size: 10000")
}

// A password may hold any character, unescaped: the userinfo runs from
// "://" to the last "@" of the URL, whatever it holds.
func TestRedactStringURLSpecialPasswords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"redis://:Ab9x/yz#q?r%s t@127.0.0.1:6380/0", "redis://:xxxxx@127.0.0.1:6380/0"},
		{"redis://:pa/ss@host", "redis://:xxxxx@host"},
		{"redis://user:pa/ss@host:1/0?db=1", "redis://user:xxxxx@host:1/0?db=xxxxx"},
		{"redis://:p#ssword@h", "redis://:xxxxx@h"},
		{"redis://:p?ssword@h", "redis://:xxxxx@h"},
		{"redis://:p%zzword@h", "redis://:xxxxx@h"},
		{"redis://:pass word@h", "redis://:xxxxx@h"},
		{"redis://:pa:ss@h", "redis://:xxxxx@h"},
		{"redis://:ab://cdef@h", "redis://:xxxxx@h"},
		{`dial "redis://:a\"b c@h:1": refused`, `dial "redis://:xxxxx@h:1": refused`},
		{"redis://:a b@h1 and redis://:c d@h2", "redis://:xxxxx@h1 and redis://:xxxxx@h2"},
		// A userinfo without a password may itself be a token.
		{"https://ghp_0123456789@github.com/x", "https://xxxxx@github.com/x"},
		{"redis://user@host", "redis://xxxxx@host"},
		// A name that is not plainly one is not shown either.
		{"redis://us/er:pw@h", "redis://xxxxx@h"},
		{"redis://xxxxx@host", "redis://xxxxx@host"},
	} {
		assert.Equal(t, tc.want, redactString(tc.in), tc.in)
	}
}

func TestIsSecretKey(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"password", "PASSWORD", "redis_password", "passwd", "secret", "hmac_secret", "bearer_token",
		"api_key", "apiKey", "X-Api-Key", "private_key", "credentials", "Authorization",
		// Near misses, so that a typo does not print the value it holds.
		"pasword", "passwrod", "paswd", "secert", "scret", "clientSecert", "tokne", "tokn",
		"api_kye", "apikye", "privte_key", "credentails", "authorizaton", "passphrase",
		// Common short names.
		"pass", "pwd", "pw", "auth", "auth_pass", "signing_key", "access-key",
	} {
		assert.True(t, isSecretKey(name), name)
	}
	// Every key of the bus and of the built-in transports that holds no
	// secret stays readable.
	for _, name := range []string{
		"type", "url", "addrs", "topic", "timeout", "maxlen", "key_file", "cert_file", "ca_file",
		"consumer_group", "consumer", "signature_tolerance", "username", "db", "master_name",
		"server_name", "insecure_skip_verify", "event_type", "dead_letter_topic", "prefix", "path",
		"source", "listen", "proxy", "max_keys", "lanes", "salt", "baseline", "candidate", "window",
		"publish_timeout", "retry_after", "start_id", "content_type", "path_value", "allowed_hosts",
	} {
		assert.False(t, isSecretKey(name), name)
	}
}

// leak returns the first piece of secret, 4 bytes or longer, found in
// text, or "".
func leak(text, secret string) string {
	for i := 0; i+4 <= len(secret); i++ {
		if strings.Contains(text, secret[i:i+4]) {
			return secret[i : i+4]
		}
	}
	return ""
}

func TestConfigStringRedactsMisspeltSecrets(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.Transports["redis"] = map[string]any{
		"type": "redisstream", "url": "redis://:Ab9x/yz#q?r%s t@127.0.0.1:6380/0",
		"pasword": "hunter21", "secert": "hunter22", "tokne": "hunter23", "api_kye": "hunter24",
		"auth": map[string]any{"pass": "hunter25"},
	}
	s := c.String()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	for _, out := range []string{s, fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), buf.String()} {
		assert.NotContains(t, out, "hunter2")
		assert.Empty(t, leak(out, "Ab9x/yz#q?r%s t"))
	}
	assert.Contains(t, s, "url: redis://:xxxxx@127.0.0.1:6380/0")
	assert.Contains(t, s, "pasword: xxxxx")
}

// A transport's error may quote what it was given, whole, in pieces, or
// decoded: New removes every known secret of the configuration from it.
func TestNewScrubsFactoryErrors(t *testing.T) {
	t.Parallel()
	const password = "Ab9x/yz#q?r s%41tuv"
	const url = "redis://:" + password + "@127.0.0.1:1/0"
	errDial := errors.New("dial failed")
	reg := transports.NewRegistry()
	reg.Register("leaky", func(s transports.Settings) (transports.Transport, error) {
		return transports.Transport{}, fmt.Errorf("leaky: %s %q %s %s %s %s: %w",
			url, password, password[:6], "Ab9x/yz#q?r sAtuv", "s3cr3t-v4lue", "hunter2x", errDial)
	})
	c := Config{
		Bus: BusConfig{DeadLetter: DeadLetterConfig{Transport: "t"}},
		Transports: map[string]map[string]any{"t": {
			"type": "leaky", "url": url, "signing_key": "s3cr3t-v4lue",
			"headers": map[string]any{"X-Token": "hunter2x"},
		}},
		Routing: RoutingConfig{Baseline: "t"},
	}
	_, err := New(c, WithRegistry(reg))
	require.Error(t, err)
	assert.ErrorIs(t, err, errDial)
	for _, secret := range []string{password, "Ab9x/yz#q?r sAtuv", "s3cr3t-v4lue", "hunter2x"} {
		assert.Empty(t, leak(err.Error(), secret), "%s in %q", secret, err)
	}
	assert.Contains(t, err.Error(), `bus: transport "t": leaky: `)
}

// The Redis transport's own error about a URL whose password holds an
// unescaped "/" leaves nothing of the password either.
func TestNewRedisURLErrorIsRedacted(t *testing.T) {
	t.Parallel()
	for _, password := range []string{"Ab9x/yz", "Ab9x#yz", "Ab9x?yz", "Ab9x%yz", "Ab9x yz", "Ab9x@yz:/"} {
		c := DefaultConfig()
		c.Transports["redis"] = map[string]any{"type": redisstream.Name, "url": "redis://:" + password + "@127.0.0.1:1/0"}
		b, err := New(c)
		if err == nil {
			require.NoError(t, b.Close())
			continue
		}
		assert.Empty(t, leak(err.Error(), password), "%q in %q", password, err)
	}
}

func TestNewScrubsQuerySecrets(t *testing.T) {
	t.Parallel()
	const token = "Ab9x#yz&q r"
	reg := transports.NewRegistry()
	reg.Register("leaky", func(s transports.Settings) (transports.Transport, error) {
		return transports.Transport{}, fmt.Errorf("leaky: %q, %s", token, token[:5])
	})
	c := Config{
		Bus:        BusConfig{DeadLetter: DeadLetterConfig{Transport: "t"}},
		Transports: map[string]map[string]any{"t": {"type": "leaky", "url": "https://h/x?page=2&token=" + token}},
		Routing:    RoutingConfig{Baseline: "t"},
	}
	_, err := New(c, WithRegistry(reg))
	require.Error(t, err)
	assert.Empty(t, leak(err.Error(), token), err.Error())
	assert.Empty(t, leak(c.String(), token))
}
