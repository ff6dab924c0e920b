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

// File appends JSON lines to a file and fsyncs after each Write.
type File struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

var _ Writer = (*File)(nil)

// OpenFile opens (creating if needed) the JSON-lines file at path.
func OpenFile(path string) (*File, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("dead letter dir %s: %w", dir, err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open dead letter file: %w", err)
	}
	return &File{f: f, path: path}, nil
}

// Write appends recs as JSON lines and syncs the file.
func (w *File) Write(_ context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	bw := bufio.NewWriter(w.f)
	for i := range recs {
		_, _ = bw.Write(Encode(&recs[i]))
		_ = bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write dead letter %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("sync dead letter %s: %w", w.path, err)
	}
	return nil
}

// Close closes the file.
func (w *File) Close() error { return w.f.Close() }

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
