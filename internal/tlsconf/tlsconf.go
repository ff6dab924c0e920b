// Package tlsconf builds the TLS client config that the Kafka and RabbitMQ
// sources share from the files their configs name.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Load returns a TLS 1.2+ client config that trusts the PEM certificates of
// caFile (the system pool when empty) and presents the key pair of
// certFile/keyFile (none when certFile is empty). serverName overrides the
// name checked against the server certificate; insecure skips that check.
// Errors start with the key that caused them, "ca_file: " or "cert_file: ",
// for the caller to prefix with its own path.
func Load(caFile, certFile, keyFile, serverName string, insecure bool) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		InsecureSkipVerify: insecure, //nolint:gosec // opt-in by the user
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: no PEM certificates in %s", caFile)
		}
		tc.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
