package main

import (
	"io"
	"log/slog"

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
