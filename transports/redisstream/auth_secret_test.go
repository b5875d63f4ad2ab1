package redisstream_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
)

// secretPasswords each hold a character that a URL's user info must
// percent-encode, or that net/url reads specially, written unescaped.
var secretPasswords = map[string]string{
	"slash":     "Kq9/Wx7Zv",
	"hash":      "Kq9#Wx7Zv",
	"question":  "Kq9?Wx7Zv",
	"percent":   "Kq9%Wx7Zv",
	"percent41": "Kq9%41x7Zv",
	"space":     "Kq9 Wx7Zv",
	"at":        "Kq9@Wx7Zv",
	"colon":     "Kq9:Wx7Zv",
	"non-ascii": "Kq9äWx7€Zv",
	"all":       "K/#?% @:ä9Zv",
	"digits":    "1234/5678",
}

// leaks returns the first substring of secret, at least 3 bytes long, that
// s holds (checking every 3-byte window covers every longer substring).
func leaks(s, secret string) (string, bool) {
	for i := 0; i+3 <= len(secret); i++ {
		if w := secret[i : i+3]; strings.Contains(s, w) {
			return w, true
		}
	}
	return "", false
}

func requireNoLeak(t *testing.T, what, s, secret string) {
	t.Helper()
	if w, ok := leaks(s, secret); ok {
		t.Fatalf("%s holds %q of the password: %s", what, w, s)
	}
}

// configDumps is every way a config may end up in a log or an error.
func configDumps(c redisstream.Config) map[string]string {
	return map[string]string{
		"%v":  fmt.Sprintf("%v", c),
		"%+v": fmt.Sprintf("%+v", c),
		"%#v": fmt.Sprintf("%#v", c),
		//lint:ignore S1025 the %s verb itself is what is checked
		"%s":         fmt.Sprintf("%s", c),
		"%q":         fmt.Sprintf("%q", c),
		"%x":         fmt.Sprintf("%x", c),
		"pointer %v": fmt.Sprintf("%v", &c),
		"pointer +v": fmt.Sprintf("%+v", &c),
		"String":     c.String(),
		"GoString":   c.GoString(),
	}
}

// TestURLSecrets: whatever a password holds, written unescaped in the URL
// or given in the password key, no error of the configuration's check or
// of building a publisher or a transport, and no dump of the config, shows
// any part of it.
func TestURLSecrets(t *testing.T) {
	for name, pw := range secretPasswords {
		t.Run(name, func(t *testing.T) {
			url := "redis://svc:" + pw + "@127.0.0.1:6380/0"
			for what, c := range map[string]redisstream.Config{
				"in url":      {URL: url},
				"in password": {URL: "redis://127.0.0.1:6380/0", Password: pw},
				"in both":     {URL: url, Password: pw, TLS: redisstream.TLSConfig{Enabled: true}},
			} {
				if err := c.Validate(); err != nil {
					requireNoLeak(t, what+": Validate", err.Error(), pw)
					require.ErrorContains(t, err, "url: ", "the error names the key")
				}
				if pub, err := redisstream.NewPublisher(c, nil, nil); err != nil {
					requireNoLeak(t, what+": NewPublisher", err.Error(), pw)
				} else {
					require.NoError(t, pub.Close())
				}
				tr, err := buildTransport(t, map[string]any{"url": c.URL, "password": c.Password})
				if err != nil {
					requireNoLeak(t, what+": Factory", err.Error(), pw)
				} else {
					require.NoError(t, tr.Publisher.Close())
				}
				for verb, s := range configDumps(c) {
					requireNoLeak(t, what+": "+verb, s, pw)
				}
			}
		})
	}
}

// TestURLErrorsSayWhere: the errors of a bad URL say what is wrong and
// where, without quoting it.
func TestURLErrorsSayWhere(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"redis://svc:Kq9/Wx7Zv@h:1/0", "percent-encode"},
		{"redis://svc:Kq9#Wx7Zv@h:1/0", "percent-encode"},
		{"redis://h:1/0#frag", "'#'"},
		{"redis://svc:Kq9%zzWx@h:1/0", "%25"},
		{"redis://svc:Kq9 Wx@h:1/0", "percent-encode"},
		{"redis://svc:Kq9äWx@h:1/0", "percent-encode"},
		{"redis://h:port/0", "port"},
		{"redis://h:1/x", "database number"},
		{"redis://h:1/0/1", "database number"},
		{"redis://h:1/0?dial_timeout=soon", "query"},
		{"redis://h:1/0?nosuch=1", "query"},
		{"redis://h:1/0?client_name=a%zz", "query"},
		{"redis://svc:Kq9@?%Wx@h:1/0", "percent-encode"},
		{"unix://", "socket path"},
	} {
		err := (&redisstream.Config{URL: c.url}).Validate()
		require.ErrorContains(t, err, "url: ", c.url)
		require.ErrorContains(t, err, c.want, c.url)
	}
	// What parses stays as it was: an '@' or ':' in a password needs no
	// escape, and the user info is decoded.
	for _, url := range []string{"redis://svc:Kq9@Wx7@h:1/0", "redis://svc:Kq9:Wx@h:1/0", "redis://svc:Kq9%2FWx@h:1/2",
		"redis://h:1/0?client_name=a@b", "unix:///run/redis.sock?db=2"} {
		require.NoError(t, (&redisstream.Config{URL: url}).Validate(), url)
	}
}

// TestConfigDumpKeepsTheRest: a dump hides the secrets, not the settings.
func TestConfigDumpKeepsTheRest(t *testing.T) {
	c := redisstream.Config{URL: "redis://svc:Kq9Wx7@127.0.0.1:6380/2?client_name=hub", Password: "Zv8Lm3", MaxLen: 1234}
	for verb, s := range configDumps(c) {
		if verb == "%x" {
			continue
		}
		require.Contains(t, s, "127.0.0.1:6380/2?client_name=hub", verb)
		require.Contains(t, s, "1234", verb)
		require.NotContains(t, s, "svc", verb, "the whole user info is hidden")
	}
	require.Contains(t, fmt.Sprintf("%#v", c), "redisstream.Config{")
}
