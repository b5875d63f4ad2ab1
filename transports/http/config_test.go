package httptransport_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

func buildLogged(t *testing.T, name string, logger watermill.LoggerAdapter, section map[string]any) (transports.Transport, error) {
	t.Helper()
	return httptransport.Factory(transports.Settings{
		Name:       name,
		Decode:     decodeFrom(section),
		Logger:     logger,
		Registerer: prometheus.NewRegistry(),
	})
}

func fieldKeys(t *testing.T, err error) []string {
	t.Helper()
	fields, only := transports.FieldErrors(err)
	require.True(t, only, "every error is a *transports.FieldError: %v", err)
	keys := make([]string, 0, len(fields))
	for _, f := range fields {
		keys = append(keys, f.Key)
	}
	return keys
}

// Every config error is a *transports.FieldError naming its key relative
// to the section, so that the bus can name it in full.
func TestConfigErrorsAreFieldErrors(t *testing.T) {
	cfg := httptransport.Config{URL: "ftp://x/", Timeout: -1, TLS: httptransport.TLSConfig{CertFile: "c.pem"}}
	assert.Equal(t, []string{"url", "timeout", "tls.key_file"}, fieldKeys(t, cfg.Validate()))

	_, err := build(t, map[string]any{
		"url":      "http://h/{nope}",
		"receiver": map[string]any{"handler_timeout": "-1s", "read_timeout": "1s"},
	})
	assert.Equal(t, []string{"url", "receiver.handler_timeout", "receiver.read_timeout"}, fieldKeys(t, err))

	_, err = build(t, map[string]any{"receiver": map[string]any{"listen": "nowhere", "queue_size": -1}})
	assert.Equal(t, []string{"receiver.queue_size", "receiver.listen"}, fieldKeys(t, err))

	_, err = build(t, map[string]any{"url": "https://h/", "tls": map[string]any{"ca_file": "/nonexistent/ca.pem"}})
	assert.Equal(t, []string{"tls.ca_file"}, fieldKeys(t, err))

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	_, err = build(t, map[string]any{"receiver": map[string]any{"listen": busy.Addr().String()}})
	assert.Equal(t, []string{"receiver.listen"}, fieldKeys(t, err))
}

// tls.insecure_skip_verify is logged when the transport is built, at the
// error level (watermill has no warning level), naming the transport.
func TestFactoryWarnsOfInsecureSkipVerify(t *testing.T) {
	for _, insecure := range []bool{true, false} {
		logger := watermill.NewCaptureLogger()
		tr, err := buildLogged(t, "hub", logger, map[string]any{
			"url": "https://127.0.0.1:1/e", "tls": map[string]any{"insecure_skip_verify": insecure},
		})
		require.NoError(t, err)
		closeTransport(t, tr)
		logged := logger.Captured()[watermill.ErrorLogLevel]
		if !insecure {
			assert.Empty(t, logged)
			continue
		}
		require.Len(t, logged, 1)
		assert.Contains(t, logged[0].Msg, "tls.insecure_skip_verify is on")
		assert.Equal(t, "hub", logged[0].Fields["transport"])
	}
}

// leaks returns the pieces of 3 bytes or more of secret that out holds.
// hexOnly leaves out pieces made of escapes alone (%2F%3), which any
// escaped text may hold.
func leaks(out, secret string, hexOnly bool) []string {
	var found []string
	for i := 0; i+3 <= len(secret); i++ {
		piece := secret[i : i+3]
		if hexOnly && escapeOnly.MatchString(piece) {
			continue
		}
		if strings.Contains(out, piece) {
			found = append(found, piece)
		}
	}
	return found
}

var escapeOnly = regexp.MustCompile(`^[%0-9A-F]+$`)

// Credentials with every character that breaks a URL left unescaped (and,
// apart, properly escaped) never show in String, in any fmt verb that takes
// it, in slog output, in config errors, nor in what publishing logs and
// returns.
func TestConfigsNeverShowSecrets(t *testing.T) {
	const (
		password = "Zq7/#?% @:é€pw"
		token    = "Tk9/#?% @:ü£qt"
		header   = "Hv3-hdr-Zz"
		signing  = "Hm4-sig-Qq"
		bearer   = "Br5-brr-Jj"
	)
	raw := map[string]string{"password": password, "token": token, "header": header, "hmac": signing, "bearer": bearer}
	escaped := map[string]string{
		"password": url.UserPassword("u", password).String()[2:],
		"token":    url.QueryEscape(token),
	}
	check := func(t *testing.T, what, out string) {
		t.Helper()
		for name, s := range raw {
			assert.Empty(t, leaks(out, s, false), "%s shows pieces of the %s: %s", what, name, out)
		}
		for name, s := range escaped {
			assert.Empty(t, leaks(out, s, true), "%s shows pieces of the escaped %s: %s", what, name, out)
		}
	}
	dump := func(t *testing.T, name string, v any) {
		t.Helper()
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			check(t, name+" "+verb, fmt.Sprintf(verb, v))
		}
		if s, ok := v.(fmt.Stringer); ok {
			check(t, name+" String", s.String())
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", v)
		slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "cfg", v)
		check(t, name+" slog", buf.String())
	}

	for _, u := range []string{
		"https://user:" + password + "@hub.example.com/e/{topic}?token=" + token,
		"https://user:" + escaped["password"] + "@hub.example.com/e/{topic}?token=" + escaped["token"] + "&k=" + escaped["token"] + "#" + escaped["token"],
		"https://hub.example.com/e?token=" + token,
	} {
		cfg := httptransport.Config{
			URL:        u,
			Headers:    map[string]string{"Authorization": header, "X-Bad": header + "\n"},
			HMACSecret: signing,
			Proxy:      "http://proxy:" + password + "@proxy.example.com:3128",
		}
		rc := httptransport.ReceiverConfig{BearerToken: bearer, HMACSecret: signing, MaxBodyBytes: -1}
		sc := httptransport.ServerConfig{ReceiverConfig: rc, Listen: "127.0.0.1:0"}
		tc := httptransport.TransportConfig{Config: cfg, Receiver: &sc}
		for name, v := range map[string]any{"Config": cfg, "*Config": &cfg, "ReceiverConfig": rc, "ServerConfig": sc, "TransportConfig": tc, "*TransportConfig": &tc} {
			dump(t, name, v)
		}
		check(t, "Validate", cfg.Validate().Error())
		_, err := httptransport.NewPublisher(cfg, nil)
		check(t, "NewPublisher", err.Error())
		logger := watermill.NewCaptureLogger()
		_, err = buildLogged(t, "hub", logger, map[string]any{
			"url": u, "headers": map[string]any{"Authorization": header, "X-Bad": header + "\n"}, "hmac_secret": signing,
			"receiver": map[string]any{"bearer_token": bearer, "hmac_secret": signing, "max_body_bytes": -1},
		})
		check(t, "Factory", err.Error())
		check(t, "Factory logs", fmt.Sprint(logger.Captured()))
	}

	// A URL that works: the escaped credentials are sent, and neither the
	// retries' logs nor the error show them.
	seen := make(chan string, 10)
	srv := newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		_, pw, _ := r.BasicAuth()
		seen <- pw + " " + r.URL.Query().Get("token")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, password)
	})
	u := strings.Replace(srv.URL, "http://", "http://user:"+escaped["password"]+"@", 1) + "/e/{topic}?token=" + escaped["token"]
	logger := watermill.NewCaptureLogger()
	tr, err := buildLogged(t, "hub", logger, map[string]any{
		"url": u, "headers": map[string]any{"X-Api-Key": header}, "hmac_secret": signing,
		"retry_backoff": "1ms", "max_retry_backoff": "2ms",
	})
	require.NoError(t, err)
	defer closeTransport(t, tr)
	err = tr.Publisher.Publish("chat", newMessage("m-1"))
	require.Error(t, err)
	require.Equal(t, password+" "+token, <-seen, "the credentials were sent")
	check(t, "Publish error", err.Error())
	logged := fmt.Sprint(logger.Captured())
	require.Contains(t, logged, "retrying")
	check(t, "Publish logs", logged)
}
