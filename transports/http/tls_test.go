package httptransport_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// writePEM writes the certificate and key of a new self-signed client
// certificate, and returns their paths and the certificate.
func newClientCert(t *testing.T) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "switchyard-publisher"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err = x509.ParseCertificate(der)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile, cert
}

// writeCA writes the certificate of a TLS test server, to trust it.
func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	return path
}

func TestPublishTLS(t *testing.T) {
	certFile, keyFile, clientCert := newClientCert(t)
	otherCert, otherKey, _ := newClientCert(t)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(clientCert)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "switchyard-publisher" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: clientCAs}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := writeCA(t, srv)

	t.Run("ca_file and a client certificate", func(t *testing.T) {
		p := newPublisher(t, httptransport.Config{URL: srv.URL, TLS: httptransport.TLSConfig{
			CAFile: caFile, CertFile: certFile, KeyFile: keyFile,
		}})
		require.NoError(t, p.Publish("chat", newMessage("m-1")))
	})
	t.Run("without the client certificate", func(t *testing.T) {
		p := newPublisher(t, httptransport.Config{URL: srv.URL, TLS: httptransport.TLSConfig{CAFile: caFile}})
		var se *httptransport.StatusError
		require.ErrorAs(t, p.Publish("chat", newMessage("m-1")), &se)
		require.Equal(t, http.StatusForbidden, se.Code)
	})
	t.Run("an unknown CA is permanent", func(t *testing.T) {
		p := newPublisher(t, fastRetries(httptransport.Config{URL: srv.URL}))
		err := p.Publish("chat", newMessage("m-1"))
		require.ErrorIs(t, err, httptransport.ErrPermanent)
		require.ErrorContains(t, err, "certificate")
		require.ErrorContains(t, err, "(1 attempts)")
	})
	t.Run("a server that does not speak TLS is permanent", func(t *testing.T) {
		plain := newServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
		p := newPublisher(t, fastRetries(httptransport.Config{URL: strings.Replace(plain.URL, "http://", "https://", 1)}))
		err := p.Publish("chat", newMessage("m-1"))
		require.ErrorIs(t, err, httptransport.ErrPermanent)
		require.ErrorContains(t, err, "(1 attempts)")
	})
	t.Run("a TLS alert from the server is permanent", func(t *testing.T) {
		strict := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))
		strict.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
		strict.StartTLS()
		t.Cleanup(strict.Close)
		for name, cfg := range map[string]httptransport.TLSConfig{
			"no client certificate":           {CAFile: writeCA(t, strict)},
			"a client certificate it refuses": {CAFile: writeCA(t, strict), CertFile: otherCert, KeyFile: otherKey},
		} {
			p := newPublisher(t, fastRetries(httptransport.Config{URL: strict.URL, TLS: cfg}))
			err := p.Publish("chat", newMessage("m-1"))
			require.ErrorIs(t, err, httptransport.ErrPermanent, name)
			require.ErrorContains(t, err, "(1 attempts)", name)
			require.ErrorContains(t, err, "tls", name)
		}
	})
	t.Run("bad key pair", func(t *testing.T) {
		_, err := httptransport.NewPublisher(httptransport.Config{URL: srv.URL, TLS: httptransport.TLSConfig{
			CertFile: certFile, KeyFile: caFile,
		}}, nil)
		require.ErrorContains(t, err, "tls.cert_file")
	})
}
