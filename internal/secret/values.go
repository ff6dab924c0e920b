package secret

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// The helpers below give a config block's Secrets method the values a
// Scrubber must mask.

// File returns the trimmed content of a *_file secret, none if unreadable.
func File(path string) []string {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return []string{strings.TrimSpace(string(b))}
}

// InValue returns the passwords of value and of the content of file (a
// *_file variant of it), as passwords finds them (URLPassword,
// DSNPassword).
func InValue(value, file string, passwords func(string) []string) []string {
	out := passwords(value)
	for _, v := range File(file) {
		out = append(out, passwords(v)...)
	}
	return out
}

// URLPassword returns the password of a URL ("amqp://u:pw@host/") as
// written, query-escaped and path-escaped; none if it has none.
func URLPassword(s string) []string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return nil
	}
	p, ok := u.User.Password()
	if !ok {
		return nil
	}
	return []string{p, url.QueryEscape(p), url.PathEscape(p)}
}

// DSNPassword returns the password of a go-sql-driver DSN; none if it has
// none.
func DSNPassword(dsn string) []string {
	c, err := mysql.ParseDSN(dsn)
	if err != nil || c.Passwd == "" {
		return nil
	}
	return []string{c.Passwd}
}

// FromFile resolves a secret with a *_file variant: when *file is set it
// reads it (trailing white space trimmed) into *value, which must be empty,
// and clears *file, so the block validates again as it is now (a component
// validating its config once more sees the value only). Errors name fileKey
// ("password_file: ..."), for the caller to prefix.
func FromFile(value, file *string, key, fileKey string) error {
	if *file == "" {
		return nil
	}
	if *value != "" {
		return fmt.Errorf("%s: set %s or %s, not both", fileKey, key, fileKey)
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("%s: %w", fileKey, err)
	}
	*value, *file = strings.TrimSpace(string(b)), ""
	return nil
}

// Cleartext is a password a client would send in clear over TCP (no TLS,
// or SASL PLAIN without TLS). Key is where it is set below its block
// (".sasl"; "" for the block itself), Addr the "host:port" it goes to,
// What names it ("the password").
type Cleartext struct{ Key, Addr, What string }

// Loopback reports whether addr ("host:port", "host" or a socket path) is
// this machine, where a password in clear stays off the network.
func Loopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if host == "" || strings.EqualFold(host, "localhost") || strings.HasPrefix(addr, "/") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
