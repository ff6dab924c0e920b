package main

import (
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/internal/secret"
)

// scrubberFor returns the scrubber that keeps cfg's secrets out of logs,
// `rowsync check` output and dead-letter reasons: every configured password
// (and the contents of every *_file), and the password of every URL and
// DSN.
func scrubberFor(cfg *config.Config) *secret.Scrubber {
	var vals []string
	file := func(p string) {
		if b, err := os.ReadFile(p); err == nil {
			vals = append(vals, strings.TrimSpace(string(b)))
		}
	}
	urlPass := func(s string) {
		if u, err := url.Parse(s); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				vals = append(vals, p, url.QueryEscape(p), url.PathEscape(p))
			}
		}
	}
	dsnPass := func(s string) {
		if c, err := mysql.ParseDSN(s); err == nil {
			vals = append(vals, c.Passwd)
		}
	}
	for _, r := range []*config.Redis{cfg.Redis, cfg.InvalidateRedis} {
		if r != nil {
			vals = append(vals, r.Password)
			file(r.PasswordFile)
		}
	}
	if b := cfg.Source.Binlog; b != nil {
		vals = append(vals, b.Password)
	}
	if k := cfg.Source.Kafka; k != nil {
		vals = append(vals, k.SASL.Password)
		file(k.SASL.PasswordFile)
	}
	if r := cfg.Source.RabbitMQ; r != nil {
		urlPass(r.URL)
	}
	if cfg.Mongo != nil {
		urlPass(cfg.Mongo.URI)
	}
	if cfg.MySQL != nil {
		dsnPass(cfg.MySQL.DSN)
	}
	if cfg.Schema != nil {
		dsnPass(cfg.Schema.DSN)
	}
	return secret.NewScrubber(vals...)
}

// scrubbedLogger is newLogger behind cfg's scrubber.
func scrubbedLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	return slog.New(scrubberFor(cfg).Handler(newLogger(cfg.Log, w).Handler()))
}
