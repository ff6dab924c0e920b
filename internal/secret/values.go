package secret

import (
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
