package backfill

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/mysqlmeta"
	"github.com/rowsync/rowsync/refetch"
)

// Method is how a chunk's watermarks are taken. Both read only: nothing
// is written to the source database.
type Method string

const (
	// MethodAuto picks MethodSnapshot on MariaDB and MethodLockingRead on
	// MySQL.
	MethodAuto Method = "auto"
	// MethodSnapshot reads the chunk in a consistent-snapshot transaction
	// and takes the binlog position exactly consistent with it from
	// MariaDB's Binlog_snapshot_file/position status: the chunk is the
	// table as of that position, the low and the high watermark at once.
	MethodSnapshot Method = "snapshot"
	// MethodLockingRead takes the binlog end (low), reads the chunk as a
	// shared locking read in a READ COMMITTED transaction, then takes the
	// binlog end again (high). The locking read waits for any transaction
	// already written to the binlog but not yet committed in InnoDB (the
	// race a plain consistent read would lose), and keeps the rows read
	// from changing until the high watermark is taken. MySQL 8.0.22+
	// requires SELECT plus one of LOCK TABLES, UPDATE or DELETE on the
	// table for a locking read.
	MethodLockingRead Method = "locking_read"
)

// resolveMethod turns MethodAuto into the method the server supports, and
// refuses MethodSnapshot where the server has no snapshot status.
func resolveMethod(m Method, version string) (Method, error) {
	maria := strings.Contains(strings.ToLower(version), "mariadb")
	switch m {
	case "", MethodAuto:
		if maria {
			return MethodSnapshot, nil
		}
		return MethodLockingRead, nil
	case MethodSnapshot:
		if !maria {
			return "", fmt.Errorf("watermark method snapshot needs MariaDB's Binlog_snapshot_* status; %s has none (use locking_read)", version)
		}
		return m, nil
	case MethodLockingRead:
		return m, nil
	}
	return "", fmt.Errorf("unknown watermark method %q (want auto, snapshot or locking_read)", m)
}

// Watermark is a binlog position read around a chunk. The zero value
// means the server writes no binlog.
type Watermark struct {
	File   string
	Offset uint64
}

// Version is the position as a cdc version (cdc.BinlogPosVersion).
func (w Watermark) Version() uint64 { return cdc.BinlogPosVersion(w.File, w.Offset) }

// String is "file:offset", or "none".
func (w Watermark) String() string {
	if w.File == "" {
		return "none"
	}
	return w.File + ":" + strconv.FormatUint(w.Offset, 10)
}

// Chunk is one read of a table.
type Chunk struct {
	// Rows are the rows read, in primary-key order; Bad the rows whose
	// values could not be typed; Missing, for a key-list backfill, the
	// requested keys without a row (rows of the key columns).
	Rows    []*cdc.Row
	Bad     []refetch.BadRow
	Missing []*cdc.Row
	// Low and High are the watermarks: the chunk holds every change
	// logged up to Low and none logged after High.
	Low, High Watermark
	// After is the cursor once the chunk is applied (the last key read,
	// or for a key list its position as text).
	After []string
}

// Reader reads one table's backfill chunk by chunk with watermarks. It is
// not safe for concurrent use; Close it when done.
type Reader struct {
	rf     *refetch.Refetcher
	cur    *refetch.Cursor
	method Method
	keys   [][]string // a key-list backfill's keys; nil for the whole table
	next   int        // index of the next key to read
	chunk  int
	scan   bool // a keyless table read in one full scan, no watermarks
}

// NewReader opens db.table for st: the whole table after st.Cursor, or
// st.Keys from the position st.Cursor records. A table without a primary
// key is an error wrapping refetch.ErrNoKey; a missing one wraps
// refetch.ErrNoTable.
func NewReader(ctx context.Context, rf *refetch.Refetcher, st State, chunk int, method Method) (*Reader, error) {
	return openReader(ctx, rf, st, chunk, method, false)
}

// openReader is NewReader; still says no stream runs beside the reader
// (`rowsync snapshot`, NewStill), so no chunk needs ordering against one:
// each chunk is a plain consistent read (MethodSnapshot; on MySQL its
// watermarks are zero, and no locking-read grant is needed), and a
// whole-table read of a table without a primary key is one streaming full
// scan (refetch.Cursor.Next) instead of an error: its chunks carry no
// watermarks and no cursor, and a new Reader starts it over from the
// first row.
func openReader(ctx context.Context, rf *refetch.Refetcher, st State, chunk int, method Method, still bool) (*Reader, error) {
	if st.Chunk > 0 {
		chunk = st.Chunk
	}
	chunk = min(max(chunk, 1), refetch.MaxChunkSize)
	if rf == nil {
		return nil, fmt.Errorf("backfill %s: no mysql connection to read the table through: %w", st.Name(), cdc.ErrPermanent)
	}
	cur, err := rf.Scan(ctx, st.DB, st.Table, chunk)
	if err != nil {
		return nil, err
	}
	r := &Reader{rf: rf, cur: cur, keys: st.Keys, chunk: chunk}
	fail := func(err error) (*Reader, error) {
		cur.Close()
		return nil, err
	}
	if len(cur.PK()) == 0 && still && st.Keys == nil {
		r.scan = true
		return r, nil
	}
	if len(cur.PK()) == 0 {
		return fail(fmt.Errorf("backfill %s: %w: it cannot be read in chunks that resume by key (use rowsync snapshot with run stopped)", st.Name(), refetch.ErrNoKey))
	}
	if len(st.Cursor) > 0 {
		if st.Keys != nil {
			if len(st.Cursor) != 1 {
				return fail(fmt.Errorf("backfill %s: key-list cursor %q: %w", st.Name(), st.Cursor, cdc.ErrPermanent))
			}
			n, err := strconv.Atoi(st.Cursor[0])
			if err != nil || n < 0 || n > len(st.Keys) {
				return fail(fmt.Errorf("backfill %s: key-list cursor %q: %w", st.Name(), st.Cursor, cdc.ErrPermanent))
			}
			r.next = n
		} else if err := cur.Seek(st.Cursor); err != nil {
			return fail(fmt.Errorf("backfill %s: cursor: %w: %w", st.Name(), err, cdc.ErrPermanent))
		}
	}
	if still {
		r.method = MethodSnapshot
		return r, nil
	}
	conn, err := rf.Conn(ctx)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	var version string
	if err := conn.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return fail(fmt.Errorf("mysql version: %w", err))
	}
	if r.method, err = resolveMethod(method, version); err != nil {
		return fail(fmt.Errorf("backfill %s: %w: %w", st.Name(), err, cdc.ErrPermanent))
	}
	return r, nil
}

// PK returns the primary-key columns; Columns the table's columns.
func (r *Reader) PK() []string                      { return r.cur.PK() }
func (r *Reader) Columns() []cdc.Column             { return r.cur.Columns() }
func (r *Reader) Method() Method                    { return r.method }
func (r *Reader) KeyOf(row *cdc.Row) (string, bool) { return r.cur.KeyOf(row) }

// FullScan reports a keyless table read in one full scan: its chunks
// have no watermarks and no cursor to resume from.
func (r *Reader) FullScan() bool { return r.scan }

// Close releases the cursor.
func (r *Reader) Close() error { return r.cur.Close() }

// Next reads the next chunk between its watermarks; io.EOF once the table
// (or the key list) is read to its end. After an error Next may be called
// again: it reads the same chunk once more.
func (r *Reader) Next(ctx context.Context) (Chunk, error) {
	if r.keys != nil && r.next >= len(r.keys) {
		return Chunk{}, io.EOF
	}
	if r.scan {
		var c Chunk
		var err error
		c.Rows, c.Bad, err = r.cur.Next(ctx)
		return c, err
	}
	conn, err := r.rf.Conn(ctx)
	if err != nil {
		return Chunk{}, err
	}
	defer conn.Close()
	var c Chunk
	lock := ""
	begin := []string{"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"}
	if r.method == MethodLockingRead {
		lock = " LOCK IN SHARE MODE"
		begin = []string{"SET TRANSACTION ISOLATION LEVEL READ COMMITTED", "START TRANSACTION"}
	}
	for _, q := range begin {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return Chunk{}, fmt.Errorf("backfill transaction: %w", err)
		}
	}
	open := true
	defer func() {
		if open {
			if _, err := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
				// never hand a connection with an open transaction back
				conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}
	}()
	if c.Low, err = r.watermark(ctx, conn); err != nil {
		return Chunk{}, err
	}
	if r.keys != nil {
		end := min(r.next+r.chunk, len(r.keys))
		c.Rows, c.Missing, c.Bad, err = r.cur.ReadKeys(ctx, conn, lock, r.keys[r.next:end])
		c.After = []string{strconv.Itoa(end)}
		if err == nil {
			r.next = end
		}
	} else {
		c.Rows, c.Bad, err = r.cur.NextIn(ctx, conn, lock)
		c.After = r.cur.After()
	}
	if err != nil {
		return Chunk{}, err
	}
	c.High = c.Low
	if r.method == MethodLockingRead {
		if c.High, err = r.watermark(ctx, conn); err != nil {
			return Chunk{}, err
		}
	}
	open = false
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return Chunk{}, fmt.Errorf("backfill transaction: %w", err)
	}
	return c, nil
}

// watermark reads the binlog position: the snapshot's own (snapshot) or
// the binlog end now (locking read). Zero when the server has no binlog.
func (r *Reader) watermark(ctx context.Context, q mysqlmeta.Querier) (Watermark, error) {
	if r.method == MethodLockingRead {
		file, off, _, _, err := mysqlmeta.BinlogStatus(ctx, q)
		if err != nil {
			return Watermark{}, fmt.Errorf("low/high watermark: %w", err)
		}
		return Watermark{File: file, Offset: off}, nil
	}
	rows, err := q.QueryContext(ctx, "SHOW STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return Watermark{}, fmt.Errorf("watermark: %w", err)
	}
	defer rows.Close()
	var w Watermark
	for rows.Next() {
		var name, val string
		if err := rows.Scan(&name, &val); err != nil {
			return Watermark{}, fmt.Errorf("watermark: %w", err)
		}
		switch strings.ToLower(name) {
		case "binlog_snapshot_file":
			w.File = val
		case "binlog_snapshot_position":
			w.Offset, _ = strconv.ParseUint(val, 10, 64)
		}
	}
	if err := rows.Err(); err != nil {
		return Watermark{}, fmt.Errorf("watermark: %w", err)
	}
	if w.File == "" {
		w = Watermark{}
	}
	return w, nil
}

// permanent reports an error retrying cannot fix: no such table, no
// primary key, no privilege, a bad key or cursor.
func permanent(err error) bool {
	if errors.Is(err, refetch.ErrNoTable) || errors.Is(err, refetch.ErrNoKey) || errors.Is(err, cdc.ErrPermanent) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1044, 1049, 1142, 1143, 1146: // access denied to the database, unknown database, SELECT/column denied, no such table
			return true
		}
	}
	return false
}
