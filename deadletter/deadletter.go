// Package deadletter keeps what rowsync could not apply: undecodable
// messages and changes a sink refused for good. Each record carries the
// reason and the source position, so nothing vanishes silently and an
// operator can replay or fix it.
package deadletter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

// Record is one dead letter.
type Record struct {
	Time     time.Time `json:"time"`
	Pipeline string    `json:"pipeline"`
	// Stage is where it failed: "decode", or the sink's name.
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
	Pos    string `json:"pos,omitempty"`
	DB     string `json:"db,omitempty"`
	Table  string `json:"table,omitempty"`
	Op     string `json:"op,omitempty"`
	// Event is the normalized change (rowsync decode's JSON line).
	Event json.RawMessage `json:"event,omitempty"`
	// Raw is the undecodable message body (base64 in JSON).
	Raw []byte `json:"raw,omitempty"`
	// Truncated is set when the record was cut to fit a size limit (the
	// Kafka dead letter's max_record_bytes): Event is left out and Raw
	// holds only the start of the message; EventBytes and RawBytes give
	// the full sizes.
	Truncated  bool `json:"truncated,omitempty"`
	EventBytes int  `json:"event_bytes,omitempty"`
	RawBytes   int  `json:"raw_bytes,omitempty"`
}

// maxReason is how much of Reason a truncated record keeps.
const maxReason = 1024

// EncodeMax is Encode, cut to at most max bytes when it is longer: the
// record keeps its reason (up to 1 KiB), position and names, drops Event
// and keeps as much of Raw as fits, marked Truncated.
func EncodeMax(rec *Record, max int) []byte {
	line := Encode(rec)
	if len(line) <= max {
		return line
	}
	r := *rec
	r.Truncated, r.EventBytes, r.RawBytes = true, len(rec.Event), len(rec.Raw)
	r.Event, r.Raw = nil, nil
	if len(r.Reason) > maxReason {
		r.Reason = r.Reason[:maxReason] + "..."
	}
	base := Encode(&r)
	if room := max - len(base) - len(`,"raw":""`); room >= 4 {
		r.Raw = rec.Raw[:min(len(rec.Raw), room/4*3)]
		return Encode(&r)
	}
	return base
}

// Writer stores dead letters. Write returns only once the records are
// durable, because the pipeline acks the source right after. An
// *UnwritableError (errors.Is cdc.ErrPermanent) names records that can
// never be written, whatever the retries; every other record was written.
// Any other error is transient: nothing is known to be written, and the
// caller retries the whole slice.
type Writer interface {
	Write(ctx context.Context, recs []Record) error
	Close() error
}

// UnwritableError reports records that can never be written, by index into
// the slice given to Write. The caller logs and counts them and goes on:
// retrying would stop the stream for good.
type UnwritableError struct {
	Failed map[int]error
}

func (e *UnwritableError) Error() string {
	var b bytes.Buffer
	b.WriteString(strconv.Itoa(len(e.Failed)) + " dead-letter record(s) cannot be written")
	for i, err := range e.Failed {
		fmt.Fprintf(&b, "; [%d]: %v", i, err)
		break
	}
	return b.String()
}

// Failure returns why record i cannot be written, or nil if it was
// written; safe on a nil *UnwritableError.
func (e *UnwritableError) Failure(i int) error {
	if e == nil {
		return nil
	}
	return e.Failed[i]
}

// Unwrap makes errors.Is(err, cdc.ErrPermanent) true.
func (e *UnwritableError) Unwrap() error { return cdc.ErrPermanent }

// Encode renders rec as one line of JSON (no newline). It cannot fail: the
// string fields are encoded by encoding/json (invalid UTF-8 becomes
// U+FFFD; Raw keeps the exact bytes in base64), and an Event that is not
// valid JSON is dropped with a note in Reason rather than making the write
// fail on every retry.
func Encode(rec *Record) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if len(rec.Event) > 0 && !json.Valid(rec.Event) {
		r := *rec
		r.Event = nil
		r.Reason += " (event rendering was not valid JSON and is left out)"
		rec = &r
	}
	if err := enc.Encode(rec); err != nil {
		// unreachable with the field types above; keep the line valid anyway
		buf.Reset()
		fmt.Fprintf(&buf, `{"time":%q,"stage":"deadletter","reason":"record not encodable"}`, rec.Time.Format(time.RFC3339Nano))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// File appends JSON lines to a file and fsyncs after each Write. The file
// is readable by its owner only (0600): records hold row data. It rotates
// by size, keeping a bounded number of old files.
type File struct {
	mu       sync.Mutex
	f        *os.File
	path     string
	size     int64
	maxBytes int64
	maxFiles int
}

var _ Writer = (*File)(nil)

// OpenFile opens (creating if needed) the JSON-lines file at path, with
// the default rotation.
func OpenFile(path string) (*File, error) {
	return OpenFileConfig(Config{File: path})
}

// OpenFileConfig opens c.File with c's rotation settings.
func OpenFileConfig(c Config) (*File, error) {
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxFiles <= 0 {
		c.MaxFiles = DefaultMaxFiles
	}
	if dir := filepath.Dir(c.File); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("dead letter dir %s: %w", dir, err)
		}
	}
	w := &File{path: c.File, maxBytes: c.MaxBytes, maxFiles: c.MaxFiles}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *File) open() error {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open dead letter file: %w", err)
	}
	// a file left by an older version may be world-readable
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("dead letter file %s: %w", w.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("dead letter file %s: %w", w.path, err)
	}
	w.f, w.size = f, st.Size()
	return nil
}

// rotate renames FILE to FILE.1 (shifting older ones, dropping the one
// past maxFiles) and starts a new FILE.
func (w *File) rotate() error {
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("close dead letter %s: %w", w.path, err)
	}
	_ = os.Remove(w.path + "." + strconv.Itoa(w.maxFiles))
	for i := w.maxFiles - 1; i >= 1; i-- {
		_ = os.Rename(w.path+"."+strconv.Itoa(i), w.path+"."+strconv.Itoa(i+1))
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		return fmt.Errorf("rotate dead letter %s: %w", w.path, err)
	}
	return w.open()
}

// Write appends recs as JSON lines and syncs the file, rotating first when
// the file has reached its size limit.
func (w *File) Write(_ context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil { // a failed rotation left no file open
		if err := w.open(); err != nil {
			return err
		}
	}
	if w.size >= w.maxBytes {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	bw := bufio.NewWriter(w.f)
	var n int64
	for i := range recs {
		line := Encode(&recs[i])
		_, _ = bw.Write(line)
		_ = bw.WriteByte('\n')
		n += int64(len(line)) + 1
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write dead letter %s: %w", w.path, err)
	}
	w.size += n
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("sync dead letter %s: %w", w.path, err)
	}
	return nil
}

// Close closes the file.
func (w *File) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// Scrubbed wraps w so that every record's Reason passes through scrub
// first (sink errors may quote a URL with its password).
func Scrubbed(w Writer, scrub func(string) string) Writer { return &scrubbedWriter{w, scrub} }

type scrubbedWriter struct {
	w     Writer
	scrub func(string) string
}

func (s *scrubbedWriter) Write(ctx context.Context, recs []Record) error {
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.Reason = s.scrub(r.Reason)
		out[i] = r
	}
	return s.w.Write(ctx, out)
}

func (s *scrubbedWriter) Close() error { return s.w.Close() }

// Memory keeps records in memory; for tests and `rowsync check`.
type Memory struct {
	mu   sync.Mutex
	Recs []Record
}

// Write appends recs.
func (m *Memory) Write(_ context.Context, recs []Record) error {
	m.mu.Lock()
	m.Recs = append(m.Recs, recs...)
	m.mu.Unlock()
	return nil
}

// Records returns a copy of what was written.
func (m *Memory) Records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.Recs...)
}

// Close does nothing.
func (m *Memory) Close() error { return nil }
