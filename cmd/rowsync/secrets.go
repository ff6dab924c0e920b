package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/deadletter"
	"github.com/rowsync/rowsync/internal/redisconn"
	"github.com/rowsync/rowsync/internal/secret"
	mongoproj "github.com/rowsync/rowsync/projector/mongo"
	"github.com/rowsync/rowsync/source/binlog"
	"github.com/rowsync/rowsync/source/kafka"
	"github.com/rowsync/rowsync/source/rabbitmq"
)

// scrubberFor returns the scrubber that keeps cfg's secrets out of logs,
// `rowsync check` output and dead-letter reasons: every configured password
// (and the contents of every *_file), and the password of every URL and
// DSN.
func scrubberFor(cfg *config.Config) *secret.Scrubber {
	return secret.NewScrubber(cfg.Secrets()...)
}

// scrubbedLogger is newLogger behind cfg's scrubber.
func scrubbedLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	return slog.New(scrubberFor(cfg).Handler(newLogger(cfg.Log, w).Handler()))
}

// plaintextWarnings names every client that would send a password in clear
// over TCP to a host other than this one: SASL PLAIN or a password without
// TLS. rowsync runs anyway (the network may be trusted), but says so.
func plaintextWarnings(cfg *config.Config) []string {
	var out []string
	warn := func(key, addr, what string) {
		if !loopback(addr) {
			out = append(out, fmt.Sprintf("%s: %s travels in clear to %s; enable tls", key, what, addr))
		}
	}
	for _, key := range []string{"redis", "invalidate_redis"} {
		if r, ok := config.Block[redisconn.Config](cfg, key); ok && (r.Password != "" || r.PasswordFile != "") && !r.TLS.Enabled {
			for _, a := range r.Addresses() {
				warn(key, a, "the password")
			}
		}
	}
	if k, ok := config.Block[kafka.Config](cfg, "source.kafka"); ok && k.SASL.Plain() && !k.TLS.Enabled {
		for _, b := range k.Brokers {
			warn("source.kafka.sasl", b, "the SASL PLAIN password")
		}
	}
	if dc, ok := config.Block[deadletter.Config](cfg, "deadletter"); ok && dc.Kafka != nil && dc.Kafka.SASL.Plain() && !dc.Kafka.TLS.Enabled {
		for _, b := range dc.Kafka.Brokers {
			warn("deadletter.kafka.sasl", b, "the SASL PLAIN password")
		}
	}
	if b, ok := config.Block[binlog.Config](cfg, "source.binlog"); ok && b.Password != "" && !b.TLS.Enabled && b.Addr != "" {
		warn("source.binlog", b.Addr, "the password")
	}
	if r, ok := config.Block[rabbitmq.Config](cfg, "source.rabbitmq"); ok {
		if u, err := url.Parse(r.URL); err == nil && u.Scheme == "amqp" && u.User != nil {
			if _, ok := u.User.Password(); ok {
				warn("source.rabbitmq.url", u.Host, "the password (amqp://, not amqps://)")
			}
		}
	}
	if m, ok := config.Block[mongoproj.Config](cfg, mongoproj.RuleKey); ok {
		if u, err := url.Parse(m.URI); err == nil && u.Scheme == "mongodb" && u.User != nil {
			q := u.Query()
			if _, ok := u.User.Password(); ok && q.Get("tls") != "true" && q.Get("ssl") != "true" {
				for _, h := range strings.Split(u.Host, ",") {
					warn("mongo.uri", h, "the password")
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// loopback reports whether addr ("host:port" or "host") is this machine.
func loopback(addr string) bool {
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
