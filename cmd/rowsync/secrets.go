package main

import (
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/internal/redisconn"
	"github.com/rowsync/rowsync/internal/secret"
	"github.com/rowsync/rowsync/mysqlmeta"
	mongoproj "github.com/rowsync/rowsync/projector/mongo"
	"github.com/rowsync/rowsync/refetch"
	"github.com/rowsync/rowsync/source/binlog"
	"github.com/rowsync/rowsync/source/kafka"
	"github.com/rowsync/rowsync/source/rabbitmq"
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
	for _, key := range []string{"redis", "invalidate_redis"} {
		if r, ok := config.Block[redisconn.Config](cfg, key); ok {
			vals = append(vals, r.Password)
			file(r.PasswordFile)
		}
	}
	if b, ok := config.Block[binlog.Config](cfg, "source.binlog"); ok {
		vals = append(vals, b.Password)
	}
	if k, ok := config.Block[kafka.Config](cfg, "source.kafka"); ok {
		vals = append(vals, k.SASL.Password)
		file(k.SASL.PasswordFile)
	}
	if r, ok := config.Block[rabbitmq.Config](cfg, "source.rabbitmq"); ok {
		urlPass(r.URL)
	}
	if m, ok := config.Block[mongoproj.Config](cfg, mongoproj.RuleKey); ok {
		urlPass(m.URI)
	}
	if m, ok := config.Block[refetch.Config](cfg, "mysql"); ok {
		dsnPass(m.DSN)
	}
	if sc, ok := config.Block[mysqlmeta.SchemaConfig](cfg, "schema"); ok {
		dsnPass(sc.DSN)
	}
	return secret.NewScrubber(vals...)
}

// scrubbedLogger is newLogger behind cfg's scrubber.
func scrubbedLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	return slog.New(scrubberFor(cfg).Handler(newLogger(cfg.Log, w).Handler()))
}
