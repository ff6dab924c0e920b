// Package secret keeps passwords out of what rowsync prints: errors, logs,
// `rowsync check` output and dead-letter reasons. It masks the password of
// every URL ("amqp://user:pw@host") and MySQL DSN ("user:pw@tcp(host)/db")
// it finds in a text, whether or not the URL parses, and the values a
// Scrubber is told about (a Redis password, a SASL password), wherever
// they appear.
package secret

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
)

// Mask stands in for a secret.
const Mask = "xxxxx"

var (
	// scheme://user:password@ — the password runs to the last '@' before
	// the host part (passwords with '@' are common in unescaped URLs).
	urlCreds = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)[^\s/]*@`)
	// go-sql-driver DSN: user:password@protocol(address)/
	dsnCreds = regexp.MustCompile(`((?:^|[\s"'=(])[^\s:@/"'=()]*:)[^\s]*@((?:tcp|unix|udp|tcp6|tcp4|unixgram)?\(|/)`)
)

// Redact masks URL and DSN passwords in s.
func Redact(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	s = urlCreds.ReplaceAllString(s, "${1}"+Mask+"@")
	return dsnCreds.ReplaceAllString(s, "${1}"+Mask+"@${2}")
}

// Scrubber masks known secret values, and URL and DSN passwords, in text.
// The zero value masks URLs and DSNs only. It is safe for concurrent use
// once built.
type Scrubber struct {
	values []string
}

// NewScrubber returns a Scrubber for values (empty ones and those shorter
// than 4 bytes are ignored: masking "a" everywhere would garble text).
func NewScrubber(values ...string) *Scrubber {
	s := &Scrubber{}
	for _, v := range values {
		if len(v) >= 4 {
			s.values = append(s.values, v)
		}
	}
	return s
}

// String returns text with every secret masked.
func (s *Scrubber) String(text string) string {
	if s != nil {
		for _, v := range s.values {
			if strings.Contains(text, v) {
				text = strings.ReplaceAll(text, v, Mask)
			}
		}
	}
	return Redact(text)
}

// Error returns err's text with every secret masked, as an error (nil
// stays nil). The result does not unwrap: it is for printing.
func (s *Scrubber) Error(err error) error {
	if err == nil {
		return nil
	}
	return scrubbed(s.String(err.Error()))
}

type scrubbed string

func (e scrubbed) Error() string { return string(e) }

// Handler wraps h so that every message and string, error or Stringer
// attribute is scrubbed before it is written.
func (s *Scrubber) Handler(h slog.Handler) slog.Handler { return &handler{h: h, s: s} }

type handler struct {
	h slog.Handler
	s *Scrubber
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.s.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.s.String(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = h.attr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.s.String(x.Error()))
		case interface{ String() string }:
			return slog.String(a.Key, h.s.String(x.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = h.attr(a)
	}
	return &handler{h: h.h.WithAttrs(out), s: h.s}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{h: h.h.WithGroup(name), s: h.s}
}
