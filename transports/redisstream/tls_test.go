package redisstream_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestTLS runs the transport over TLS, configured as a file would: a
// rediss:// URL, the CA that signed the server's certificate and a client
// certificate (the server requires one).
func TestTLS(t *testing.T) {
	files := redistest.NewTLSFiles(t)
	files.RequireClientCert = true
	srv := redistest.Start(t, redistest.WithTLS(files))
	require.Regexp(t, `^rediss://127\.0\.0\.1:\d+/0$`, srv.URL())

	cfg := opsConfig(srv.URL(), "hub")
	cfg.TLS = redisstream.TLSConfig{CAFile: files.CACert, CertFile: files.ClientCert, KeyFile: files.ClientKey}

	t.Run("end to end", func(t *testing.T) {
		pub := opsPublisher(t, cfg)
		sub, _ := opsSubscriber(t, cfg)
		ch := subscribe(t, sub, "events:tls")
		require.NoError(t, pub.Publish("events:tls", msg("secret")))
		require.Equal(t, []string{"secret"}, receiveAck(t, ch, 1, 5*time.Second))
	})
	t.Run("wrong CA", func(t *testing.T) {
		bad := cfg
		bad.TLS.CAFile = files.OtherCACert
		pub := opsPublisher(t, bad)
		err := pub.Publish("events:tls", msg("x"))
		require.Error(t, err)
		var unknown x509.UnknownAuthorityError
		var verify *tls.CertificateVerificationError
		require.True(t, errors.As(err, &unknown) || errors.As(err, &verify), "a certificate error: %v", err)
		require.ErrorContains(t, err, "certificate")
	})
	t.Run("no client certificate", func(t *testing.T) {
		bad := cfg
		bad.TLS.CertFile, bad.TLS.KeyFile = "", ""
		pub := opsPublisher(t, bad)
		require.Error(t, pub.Publish("events:tls", msg("x")), "the server requires a client certificate")
	})
	t.Run("plain connection refused", func(t *testing.T) {
		bad := cfg
		bad.URL = "redis://" + srv.Addr() + "/0"
		bad.TLS = redisstream.TLSConfig{}
		bad.PublishTimeout = 500 * time.Millisecond
		pub := opsPublisher(t, bad)
		require.Error(t, pub.Publish("events:tls", msg("x")))
	})
}
