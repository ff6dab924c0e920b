// Package tlsconf builds the TLS client config that the Kafka and RabbitMQ
// sources share from the files their configs name.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
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

// Config is the `tls:` block of every client's config (Redis, the Kafka
// source and dead letter, the binlog and RabbitMQ sources), one shape
// everywhere:
//
//	tls: {enabled: true, ca_file: ca.pem, cert_file: c.pem, key_file: c.key,
//	      server_name: db.internal, insecure_skip_verify: false}
//
// `tls: true` is short for `{enabled: true}`. It is off unless enabled; the server is verified against
// CAFile (or the system roots) unless InsecureSkipVerify.
type Config struct {
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of roots. Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key (both or
	// neither). Default: none
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server certificate.
	// Default: the host the client dials
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. Default: false
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Validate reports the problems of an enabled block, each starting with
// prefix and the key ("tls.cert_file: ...").
func (c Config) Validate(prefix string) []error {
	if !c.Enabled {
		return nil
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return []error{fmt.Errorf("%scert_file: cert_file and key_file go together", prefix)}
	}
	return nil
}

// Client builds the client config, or nil when the block is off.
// serverName applies when ServerName is empty ("" keeps the client's
// own default). Errors start with prefix and the key.
func (c Config) Client(prefix, serverName string) (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	if c.ServerName != "" {
		serverName = c.ServerName
	}
	tc, err := Load(c.CAFile, c.CertFile, c.KeyFile, serverName, c.InsecureSkipVerify)
	if err != nil {
		return nil, fmt.Errorf("%s%w", prefix, err)
	}
	return tc, nil
}

// UnmarshalYAML accepts `tls: true|false` (short for `{enabled: ...}`)
// as well as the mapping, whose unknown keys are errors.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var on bool
		if err := n.Decode(&on); err != nil {
			return fmt.Errorf("line %d: tls: want true, false or a mapping", n.Line)
		}
		*c = Config{Enabled: on}
		return nil
	}
	if n.Kind == yaml.MappingNode {
		known := map[string]bool{"enabled": true, "ca_file": true, "cert_file": true, "key_file": true,
			"server_name": true, "insecure_skip_verify": true}
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i].Value; !known[k] {
				return fmt.Errorf("line %d: tls: unknown key %q", n.Content[i].Line, k)
			}
		}
	}
	type plain Config
	return n.Decode((*plain)(c))
}
