// Package kafkaauth is the `sasl:` block of a Kafka client's config and
// the dialer (Dialer, Ping), shared by the Kafka source, the Kafka dead
// letter and `rowsync check`, so every Kafka connection authenticates the
// same way.
package kafkaauth

import (
	"fmt"
	"os"
	"strings"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/rowsync/rowsync/internal/secret"
	"github.com/rowsync/rowsync/internal/tlsconf"
)

// SASL configures SASL authentication; off unless Mechanism is set.
type SASL struct {
	// Mechanism is plain, scram-sha-256 or scram-sha-512. Empty: no SASL.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password, or PasswordFile naming a file that holds it (trailing
	// newline trimmed); not both.
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// Validate reports every problem, each starting with prefix and its key
// ("sasl.username: required").
func (s SASL) Validate(prefix string) []error {
	var errs []error
	switch strings.ToLower(s.Mechanism) {
	case "":
		if s.Username != "" || s.Password != "" || s.PasswordFile != "" {
			errs = append(errs, fmt.Errorf("%smechanism: required when username or password is set", prefix))
		}
		return errs
	case "plain", "scram-sha-256", "scram-sha-512":
	default:
		errs = append(errs, fmt.Errorf("%smechanism: %q is not plain, scram-sha-256 or scram-sha-512", prefix, s.Mechanism))
	}
	if s.Username == "" {
		errs = append(errs, fmt.Errorf("%susername: required", prefix))
	}
	if s.Password != "" && s.PasswordFile != "" {
		errs = append(errs, fmt.Errorf("%spassword_file: set either password or password_file, not both", prefix))
	}
	return errs
}

// Plain reports whether the mechanism sends the password as it is (PLAIN),
// which only TLS protects on the wire.
func (s SASL) Plain() bool { return strings.EqualFold(s.Mechanism, "plain") }

// Build returns the SASL mechanism, or nil when SASL is off.
func (s SASL) Build() (sasl.Mechanism, error) {
	if s.Mechanism == "" {
		return nil, nil
	}
	pass := s.Password
	if s.PasswordFile != "" {
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("sasl.password_file: %w", err)
		}
		pass = strings.TrimRight(string(b), "\r\n")
	}
	switch strings.ToLower(s.Mechanism) {
	case "plain":
		return plain.Mechanism{Username: s.Username, Password: pass}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, s.Username, pass)
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, s.Username, pass)
	}
	return nil, fmt.Errorf("sasl.mechanism: unknown %q", s.Mechanism)
}

// Cleartext lists the brokers a SASL PLAIN password would travel to in
// clear (no TLS), under key (".sasl").
func Cleartext(key string, brokers []string, s SASL, t tlsconf.Config) []secret.Cleartext {
	if !s.Plain() || t.Enabled {
		return nil
	}
	var out []secret.Cleartext
	for _, b := range brokers {
		out = append(out, secret.Cleartext{Key: key, Addr: b, What: "the SASL PLAIN password"})
	}
	return out
}
