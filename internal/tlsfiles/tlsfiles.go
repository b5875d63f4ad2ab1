// Package tlsfiles loads the CA and client certificate files that the
// network transports' tls sections name.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Load adds to tc the CA certificates of caFile (as RootCAs) and the client
// certificate of certFile and keyFile, each when given. Errors name the
// configuration key (tls.ca_file, tls.cert_file) as transports spell it.
func Load(tc *tls.Config, caFile, certFile, keyFile string) error {
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls.ca_file: no PEM certificate in %s", caFile)
		}
		tc.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("tls.cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return nil
}
