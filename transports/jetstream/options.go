package jetstream

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard-go/switchyard/internal/tlsfiles"
)

// options are the nats.go connection options: credentials, TLS, and a
// client that keeps reconnecting for as long as it lives.
func (c *Config) options(name string) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(-1), // a publish during a reconnect fails at once; the caller falls back
		nats.RetryOnFailedConnect(true),
	}
	if c.ClientName != "" {
		opts = append(opts, nats.Name(c.ClientName))
	} else if name != "" {
		opts = append(opts, nats.Name("switchyard "+name))
	}
	switch {
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nkey_file: %w", err)
		}
		opts = append(opts, o)
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	useTLS := c.TLS.Enabled || c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.InsecureSkipVerify
	for _, u := range c.serverURLs() {
		useTLS = useTLS || strings.HasPrefix(u, "tls://")
	}
	if useTLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLS.ServerName, InsecureSkipVerify: c.TLS.InsecureSkipVerify}
		if err := tlsfiles.Load(tc, c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile); err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// redacted replaces a secret in a dump of a Config, the same for every
// secret so that its length says nothing.
const redacted = "xxxxx"

// String shows c with its secrets replaced: the password, the token, and
// the user info of each URL. fmt uses it for %v, %+v, %s, %q and %x, so a
// Config may go into a log or an error as it is. The NKey and creds files
// are paths, shown as they are.
func (c Config) String() string { return fmt.Sprintf("%+v", c.redacted()) }

// GoString is String in Go syntax, for %#v.
func (c Config) GoString() string {
	return "jetstream.Config" + strings.TrimPrefix(fmt.Sprintf("%#v", c.redacted()), "jetstream.plainConfig")
}

// plainConfig is a Config without its methods, to format its fields.
type plainConfig Config

func (c Config) redacted() plainConfig {
	r := plainConfig(c)
	if r.Password != "" {
		r.Password = redacted
	}
	if r.Token != "" {
		r.Token = redacted
	}
	if c.URL != "" {
		parts := strings.Split(c.URL, ",")
		for i, p := range parts {
			parts[i] = redactURL(p)
		}
		r.URL = strings.Join(parts, ",")
	}
	if len(c.URLs) > 0 {
		r.URLs = make([]string, len(c.URLs))
		for i, u := range c.URLs {
			r.URLs[i] = redactURL(u)
		}
	}
	return r
}

// redactURL replaces the user info of s: everything between the scheme and
// the last '@'. A text that is not a URL of a known scheme is replaced
// whole: where a secret would be in it is unknown.
func redactURL(s string) string {
	lead := len(s) - len(strings.TrimLeft(s, " "))
	scheme, rest, ok := strings.Cut(strings.TrimSpace(s), "://")
	if !ok || (scheme != "nats" && scheme != "tls") {
		return redacted
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = redacted + "@" + rest[i+1:]
	}
	return s[:lead] + scheme + "://" + rest
}
