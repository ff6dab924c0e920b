package main

import (
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/internal/secret"
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
// TLS, as the blocks of the source, the other components and the sinks
// report it (Cleartext). rowsync runs anyway (the network may be trusted),
// but says so.
func plaintextWarnings(cfg *config.Config) []string {
	type cleartexter interface{ Cleartext() []secret.Cleartext }
	keys := []string{"source." + cfg.Source}
	for _, b := range blocks {
		keys = append(keys, b.key)
	}
	for _, s := range sinks {
		keys = append(keys, s.key)
	}
	var out []string
	for _, key := range keys {
		c, ok := config.Block[cleartexter](cfg, key)
		if !ok {
			continue
		}
		for _, ct := range c.Cleartext() {
			if !secret.Loopback(ct.Addr) {
				out = append(out, fmt.Sprintf("%s%s: %s travels in clear to %s; enable tls", key, ct.Key, ct.What, ct.Addr))
			}
		}
	}
	slices.Sort(out)
	return out
}
