package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
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
	files, err := newTLSFiles(t.TempDir())
	if err != nil {
		t.Fatalf("redistest: generate TLS files: %v", err)
	}
	return files
}

// ClientTLSConfig returns a new client configuration that trusts the CA,
// presents the client certificate and verifies the server as 127.0.0.1.
func (f *TLSFiles) ClientTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      f.roots,
		Certificates: []tls.Certificate{f.client},
		ServerName:   "127.0.0.1",
	}
}

func newTLSFiles(dir string) (*TLSFiles, error) {
	f := &TLSFiles{
		CACert:      filepath.Join(dir, "ca.pem"),
		ServerCert:  filepath.Join(dir, "server.pem"),
		ServerKey:   filepath.Join(dir, "server-key.pem"),
		ClientCert:  filepath.Join(dir, "client.pem"),
		ClientKey:   filepath.Join(dir, "client-key.pem"),
		OtherCACert: filepath.Join(dir, "other-ca.pem"),
	}
	ca, _, err := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "redistest CA"}, IsCA: true}, nil, f.CACert, "")
	if err != nil {
		return nil, err
	}
	if _, _, err := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "redistest unrelated CA"}, IsCA: true}, nil, f.OtherCACert, ""); err != nil {
		return nil, err
	}
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if _, _, err := issue(server, ca, f.ServerCert, f.ServerKey); err != nil {
		return nil, err
	}
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "redistest client"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if _, f.client, err = issue(client, ca, f.ClientCert, f.ClientKey); err != nil {
		return nil, err
	}
	f.roots = x509.NewCertPool()
	f.roots.AddCert(ca.cert)
	return f, nil
}

type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// issue makes a certificate from template with a fresh ECDSA P-256 key,
// signed by ca or, when ca is nil, by itself as a CA; it writes the
// certificate to certPath and, unless keyPath is empty, the key.
func issue(template *x509.Certificate, ca *authority, certPath, keyPath string) (*authority, tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	if template.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, tls.Certificate{}, err
	}
	template.NotBefore, template.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	parent, parentKey := template, key
	if ca == nil {
		template.BasicConstraintsValid = true
		template.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	} else {
		parent, parentKey = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("issue %s: %w", template.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, tls.Certificate{}, err
	}
	if keyPath != "" {
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, tls.Certificate{}, err
		}
		if err := writePEM(keyPath, "PRIVATE KEY", keyDER, 0o600); err != nil {
			return nil, tls.Certificate{}, err
		}
	}
	return &authority{cert: cert, key: key}, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func writePEM(path, blockType string, der []byte, perm os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	return os.WriteFile(path, data, perm)
}
