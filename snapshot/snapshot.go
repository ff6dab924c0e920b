// Package snapshot reads the rows that already exist in MySQL tables and
// hands them to the pipeline as Insert events, the initial load before a
// change stream takes over (`rowsync snapshot`).
//
// Source is a finite cdc.Source: it scans the tables one after the other
// with refetch.Cursor (primary-key order, keyset pagination, rows typed
// exactly as the binlog and refetch paths type them), returns one batch
// per chunk, and cdc.ErrEndOfStream after the last one, so pipeline.Run
// applies and acks everything and returns.
//
// Consistency: each chunk is its own short read, not one transaction over
// the whole table, so the rows of a table are not a single point-in-time
// image. That is fine when the change stream is started from a position
// taken before the scan (the binlog checkpoint `rowsync snapshot` pins
// first): every change made during or after the scan is streamed again
// later, and as every write is a full-row image the sinks converge on the
// current rows.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/backoff"
	"github.com/rowsync/rowsync/refetch"
)

var _ cdc.Source = (*Source)(nil)

// DefaultChunk is the rows per query and per batch when Options.Chunk is 0.
const DefaultChunk = 5000

// Scanner opens table scans; *refetch.Refetcher is one.
type Scanner interface {
	Scan(ctx context.Context, db, table string, chunk int) (*refetch.Cursor, error)
}

var _ Scanner = (*refetch.Refetcher)(nil)

// Options tune a Source. The zero value of each field means its default.
type Options struct {
	// Chunk is the rows read per query and handed out per batch.
	// Default: 5000 (at most refetch.MaxChunkSize)
	Chunk int
	// Retries is how many times a failed chunk read is retried (with
	// backoff from 100ms to 10s) before the snapshot fails. A table
	// without a primary key cannot resume its scan and is never retried.
	// Default: 10
	Retries int
	Logger  *slog.Logger
}

// TableStats is the progress of one table.
type TableStats struct {
	DB, Table string
	// Keyless is true for a table without a primary key (one full scan).
	Keyless bool
	// Read counts rows read so far; Applied rows acked by the pipeline
	// (applied to every sink or sent to the dead letter); Bad rows that
	// could not be typed (sent to the dead letter, included in Applied).
	Read, Applied, Bad int64
	// Start is when the scan began, End when its last row was acked; both
	// zero until then.
	Start, End time.Time
	// Gone is true when the table was dropped before it could be read.
	Gone bool
}

// Done reports whether every row of the table was read and acked.
func (t TableStats) Done() bool { return !t.End.IsZero() || t.Gone }

// Duration is End-Start, or the time since Start while the table runs.
func (t TableStats) Duration() time.Duration {
	switch {
	case t.Start.IsZero():
		return 0
	case t.End.IsZero():
		return time.Since(t.Start)
	}
	return t.End.Sub(t.Start)
}

// Source scans tables in order and yields their rows as Insert events.
// Next must be called from one goroutine; Stats, Done and Ack are safe
// from any.
type Source struct {
	scan   Scanner
	tables [][2]string
	opts   Options
	log    *slog.Logger

	next int             // index of the table to open next
	cur  *refetch.Cursor // open cursor of tables[next-1]
	ci   int             // index of cur's table

	mu       sync.Mutex
	stats    []TableStats
	readDone []bool // the table's cursor hit its end (or the table is gone)
}

// New returns a Source over tables ({db, table} pairs), read in the given
// order. It opens nothing until the first Next.
func New(scan Scanner, tables [][2]string, opts Options) *Source {
	if opts.Chunk <= 0 {
		opts.Chunk = DefaultChunk
	}
	opts.Chunk = min(opts.Chunk, refetch.MaxChunkSize)
	if opts.Retries <= 0 {
		opts.Retries = 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{scan: scan, tables: tables, opts: opts, log: opts.Logger.With("source", "snapshot"),
		stats: make([]TableStats, len(tables)), readDone: make([]bool, len(tables))}
	for i, t := range tables {
		s.stats[i].DB, s.stats[i].Table = t[0], t[1]
	}
	return s
}

// Next returns the next chunk of the current table as a batch of Insert
// events (PK, After, Columns set; Pos.Version 0 so version-guarded sinks
// apply it; Pos.Text "snapshot db.table"). Rows that cannot be typed come
// as the batch's Rejects. After the last table it returns
// cdc.ErrEndOfStream.
func (s *Source) Next(ctx context.Context) (cdc.Batch, error) {
	for {
		if err := ctx.Err(); err != nil {
			return cdc.Batch{}, err
		}
		if s.cur == nil {
			if s.next >= len(s.tables) {
				return cdc.Batch{}, cdc.ErrEndOfStream
			}
			s.ci = s.next
			s.next++
			if err := s.open(ctx); err != nil {
				return cdc.Batch{}, err
			}
			if s.cur == nil { // table gone
				continue
			}
		}
		rows, bad, err := s.read(ctx)
		if errors.Is(err, io.EOF) {
			s.cur.Close()
			s.cur = nil
			s.finishRead(s.ci)
			continue
		}
		if err != nil && gone(err) {
			s.log.Warn("table dropped during its snapshot; skipped", "table", s.tables[s.ci][0]+"."+s.tables[s.ci][1], "err", err)
			s.cur.Close()
			s.cur = nil
			s.mu.Lock()
			s.stats[s.ci].Gone = true
			s.readDone[s.ci] = true
			s.mu.Unlock()
			continue
		}
		if err != nil {
			return cdc.Batch{}, err
		}
		return s.batch(s.ci, rows, bad), nil
	}
}

// open starts the scan of tables[s.ci], retrying transient errors; a
// table that no longer exists is skipped with a warning.
func (s *Source) open(ctx context.Context) error {
	db, table := s.tables[s.ci][0], s.tables[s.ci][1]
	s.mu.Lock()
	s.stats[s.ci].Start = time.Now()
	s.mu.Unlock()
	return s.retry(ctx, db+"."+table, true, func() error {
		c, err := s.scan.Scan(ctx, db, table, s.opts.Chunk)
		if err != nil {
			if gone(err) {
				s.log.Warn("table gone before its snapshot; skipped", "table", db+"."+table, "err", err)
				s.mu.Lock()
				s.stats[s.ci].Gone = true
				s.readDone[s.ci] = true
				s.mu.Unlock()
				return nil
			}
			return err
		}
		s.cur = c
		s.mu.Lock()
		s.stats[s.ci].Keyless = len(c.PK()) == 0
		s.mu.Unlock()
		s.log.Info("snapshot of table started", "table", db+"."+table, "pk", c.PK())
		return nil
	})
}

// readRetry spaces the retries of a failed chunk read: 100ms doubling to
// 10s, with jitter.
var readRetry = backoff.Policy{Min: 100 * time.Millisecond, Max: 10 * time.Second}

// read reads the next chunk, retrying a keyed cursor's transient errors.
func (s *Source) read(ctx context.Context) (rows []cdc.Row, bad []refetch.BadRow, err error) {
	name := s.tables[s.ci][0] + "." + s.tables[s.ci][1]
	err = s.retry(ctx, name, len(s.cur.PK()) > 0, func() error {
		var err error
		rows, bad, err = s.cur.Next(ctx)
		return err
	})
	return rows, bad, err
}

// retry calls fn until it succeeds, returns io.EOF, fails Retries times,
// or ctx ends; canRetry false makes the first error final.
func (s *Source) retry(ctx context.Context, table string, canRetry bool, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || errors.Is(err, io.EOF) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !canRetry || gone(err) || attempt > s.opts.Retries {
			return fmt.Errorf("snapshot %s: %w", table, err)
		}
		sleep := readRetry.Delay(attempt)
		s.log.Warn("snapshot read failed, retrying", "table", table, "attempt", attempt, "backoff", sleep, "err", err)
		if !backoff.Sleep(ctx, sleep) {
			return ctx.Err()
		}
	}
}

// gone reports a table dropped (or made invisible) since it was listed.
func gone(err error) bool {
	if errors.Is(err, refetch.ErrNoTable) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1146 || me.Number == 1049
	}
	return false
}

func (s *Source) batch(ti int, rows []cdc.Row, bad []refetch.BadRow) cdc.Batch {
	db, table := s.tables[ti][0], s.tables[ti][1]
	pos := cdc.Position{Text: "snapshot " + db + "." + table}
	pk, cols := s.cur.PK(), s.cur.Columns()
	b := cdc.Batch{Events: make([]cdc.Event, len(rows))}
	for i, row := range rows {
		b.Events[i] = cdc.Event{DB: db, Table: table, Op: cdc.Insert, PK: pk, After: row, Columns: cols, Pos: pos}
	}
	for _, br := range bad {
		b.Rejects = append(b.Rejects, cdc.Reject{Pos: pos, Raw: []byte(br.Key), Reason: br.Err})
	}
	n := int64(len(rows) + len(bad))
	s.mu.Lock()
	s.stats[ti].Read += n
	s.stats[ti].Bad += int64(len(bad))
	s.mu.Unlock()
	b.Ack = func(_ context.Context, err error) error {
		if err != nil {
			// Rows read from MySQL are not kept: run the snapshot again.
			return fmt.Errorf("snapshot %s.%s: a batch cannot be redelivered: %w", db, table, err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.stats[ti].Applied += n
		s.maybeEnd(ti)
		return nil
	}
	return b
}

func (s *Source) finishRead(ti int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readDone[ti] = true
	s.maybeEnd(ti)
}

// maybeEnd marks a table finished once it is read to the end and every
// row is acked. Called with mu held.
func (s *Source) maybeEnd(ti int) {
	st := &s.stats[ti]
	if s.readDone[ti] && st.Applied == st.Read && st.End.IsZero() && !st.Gone {
		st.End = time.Now()
		s.log.Info("snapshot of table done", "table", st.DB+"."+st.Table, "rows", st.Applied,
			"seconds", st.End.Sub(st.Start).Seconds())
	}
}

// Stats returns the progress of every table, in scan order.
func (s *Source) Stats() []TableStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TableStats(nil), s.stats...)
}

// Done reports whether every table was read to its end and every row
// acked: the snapshot is complete.
func (s *Source) Done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.stats {
		if !st.Done() {
			return false
		}
	}
	return true
}

// Close ends an open scan. It acks nothing.
func (s *Source) Close(context.Context) error {
	if s.cur != nil {
		err := s.cur.Close()
		s.cur = nil
		return err
	}
	return nil
}
