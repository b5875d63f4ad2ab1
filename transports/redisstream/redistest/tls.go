package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSFiles is a throwaway PKI written as PEM files: a CA, a server
// certificate for 127.0.0.1 and localhost and a client certificate, both
// signed by the CA, and a second CA that signed nothing, for tests that
// expect verification to fail.
type TLSFiles struct {
	CACert      string // the CA that signed ServerCert and ClientCert
	ServerCert  string // for 127.0.0.1, ::1 and localhost
	ServerKey   string
	ClientCert  string
	ClientKey   string
	OtherCACert string // an unrelated CA: trusting only it must fail

	// RequireClientCert makes a server started WithTLS refuse clients without
	// a certificate (tls-auth-clients yes); by default a certificate is
	// optional, but one that is presented must be signed by the CA.
	RequireClientCert bool

	roots  *x509.CertPool
	client tls.Certificate
}

// NewTLSFiles generates the certificates (ECDSA P-256, valid from an hour ago
// for a day) into a temporary directory of t.
func NewTLSFiles(t testing.TB) *TLSFiles {
	t.Helper()
	dir := t.TempDir()
	f := &TLSFiles{
		CACert: filepath.Join(dir, "ca.pem"), OtherCACert: filepath.Join(dir, "other-ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
	}
	ca := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "redistest CA"}, IsCA: true}, nil, f.CACert, "")
	issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "redistest unrelated CA"}, IsCA: true}, nil, f.OtherCACert, "")
	issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, f.ServerCert, f.ServerKey)
	f.client = *issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "redistest client"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, f.ClientCert, f.ClientKey)
	f.roots = x509.NewCertPool()
	f.roots.AddCert(ca.Leaf)
	return f
}

// ClientTLSConfig returns a new client configuration that trusts the CA,
// presents the client certificate and verifies the server as 127.0.0.1.
func (f *TLSFiles) ClientTLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: f.roots,
		Certificates: []tls.Certificate{f.client}, ServerName: "127.0.0.1"}
}

// issue makes a certificate from template with a fresh ECDSA P-256 key,
// signed by ca or, when ca is nil, by itself as a CA; it writes the
// certificate to certPath and, unless keyPath is empty, the key.
func issue(t testing.TB, template *x509.Certificate, ca *tls.Certificate, certPath, keyPath string) *tls.Certificate {
	t.Helper()
	fail := func(err error) {
		if err != nil {
			t.Fatalf("redistest: generate TLS files: %s: %v", template.Subject.CommonName, err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	fail(err)
	template.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	fail(err)
	template.NotBefore, template.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	parent, parentKey := template, any(key)
	if ca == nil {
		template.BasicConstraintsValid = true
		template.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	} else {
		parent, parentKey = ca.Leaf, ca.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	fail(err)
	cert := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	cert.Leaf, err = x509.ParseCertificate(der)
	fail(err)
	fail(os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	if keyPath != "" {
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		fail(err)
		fail(os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	}
	return cert
}
