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
		{"redis://user@host", "redis://user@host"},
		{"plain text: no secrets", "plain text: no secrets"},
		{"redis://user:xxxxx@host", "redis://user:xxxxx@host"},
	} {
		assert.Equal(t, tc.want, redactString(tc.in), tc.in)
	}
}

func TestRedactError(t *testing.T) {
	t.Parallel()
	assert.NoError(t, redactError(nil))

	cause := &url.Error{Op: "Get", URL: "https://u:hunter2@api.example/x", Err: fs.ErrNotExist}
	err := redactError(fmt.Errorf("bus: publish: %w", cause))
	assert.Equal(t, `bus: publish: Get "https://u:xxxxx@api.example/x": file does not exist`, err.Error())
	assert.ErrorIs(t, err, fs.ErrNotExist)
	var ue *url.Error
	require.ErrorAs(t, err, &ue)
	assert.Same(t, cause, ue)

	joined := redactError(errors.Join(ErrClosed, errors.New("redis://:hunter2@h")))
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
