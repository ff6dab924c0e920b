package refetch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/mysqlmeta"
)

// ListTables returns the base tables (not views) outside the system
// schemas for which match returns true, as {db, table} ordered by name.
func (r *Refetcher) ListTables(ctx context.Context, match func(db, table string) bool) ([][2]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	return r.cat.Tables(ctx, match)
}

// ErrNoTable means Scan found no such table, or the user cannot see it.
var ErrNoTable = mysqlmeta.ErrNoTable

// BadRow is a row read by a Cursor whose values could not be typed. Key
// names it: "id=7", or "row 12" in a table without a primary key.
type BadRow struct {
	Key string
	Err error
}

// Cursor reads every row of one table, chunk by chunk, typed exactly as
// Refetch types them (information_schema column types, text protocol,
// cdc.ParseText), so a snapshot row equals the refetched and the binlog
// row. It is not safe for concurrent use; Close it when done.
//
// A table with a primary key is read in key order with keyset pagination:
// each chunk is one query `WHERE key > last key ORDER BY key LIMIT n`, so
// every chunk costs the same however deep into the table it is, and no
// query holds a snapshot or a lock for long. A composite key is compared
// as `a >= ? AND (a > ? OR (a = ? AND b > ?) ...)` rather than as the row
// constructor `(a, b) > (?, ?)`, which MariaDB does not turn into an index
// range (it scans the index from its start on every chunk).
//
// A table without a primary key cannot be paged reliably: it is read by
// one streaming full scan that stays open between chunks. If the reader
// stalls longer than the server's net_write_timeout (the sinks are down,
// say) the query fails and the table must be read again from the start.
type Cursor struct {
	r         *Refetcher
	db, table string
	ti        *tableInfo
	pk        []string
	pkIdx     []int         // ti.cols index of each key column
	pkCols    []*cdc.Column // the key columns, in key order
	chunk     int

	after []any    // query arguments of the last key read; nil before the first chunk
	last  []string // the last key read, its values in MySQL text form
	done  bool
	sel   string // SELECT ... FROM ...
	order string // ORDER BY ... LIMIT n

	// a keyless table's open scan
	rows   *sql.Rows
	cancel context.CancelFunc
	raw    []sql.RawBytes
	dest   []any
	n      int // rows read so far, to name bad keyless rows
}

// Scan opens a cursor over every row of db.table, chunk rows at a time
// (at most MaxChunkSize; 0 means DefaultChunkSize). It reads the table's
// current definition and primary key from information_schema; a table
// that does not exist (or that the user cannot see) is an error wrapping
// ErrNoTable.
func (r *Refetcher) Scan(ctx context.Context, db, table string, chunk int) (*Cursor, error) {
	if chunk <= 0 {
		chunk = DefaultChunkSize
	}
	chunk = min(chunk, MaxChunkSize)
	k := tableKey{db, table}
	ti, err := r.reload(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("scan %s.%s: %w", db, table, err)
	}
	if ti == nil {
		return nil, fmt.Errorf("scan %s.%s: %w", db, table, ErrNoTable)
	}
	pk := ti.PK
	c := &Cursor{r: r, db: db, table: table, ti: ti, pk: pk, chunk: chunk}
	for _, name := range pk {
		i, ok := ti.Index(name)
		if !ok {
			return nil, fmt.Errorf("scan %s.%s: primary key column %q not among the columns (table changed?)", db, table, name)
		}
		c.pkIdx = append(c.pkIdx, i)
		c.pkCols = append(c.pkCols, &ti.cols[i])
	}
	c.sel = "SELECT " + ti.sel + " FROM " + quote(db) + "." + quote(table)
	if len(pk) > 0 {
		var o strings.Builder
		o.WriteString(" ORDER BY ")
		for j, name := range pk {
			if j > 0 {
				o.WriteByte(',')
			}
			o.WriteString(quote(name))
		}
		o.WriteString(" LIMIT " + strconv.Itoa(chunk))
		c.order = o.String()
	}
	c.raw = make([]sql.RawBytes, len(ti.cols))
	c.dest = make([]any, len(c.raw))
	for i := range c.raw {
		c.dest[i] = &c.raw[i]
	}
	return c, nil
}

// Columns returns the table's columns in ordinal order (shared; do not
// modify).
func (c *Cursor) Columns() []cdc.Column { return c.ti.cols }

// PK returns the primary-key column names in key order; nil for a table
// without a primary key.
func (c *Cursor) PK() []string { return c.pk }

// Next returns the next chunk of rows, in primary-key order for a table
// with a key, and io.EOF once every row has been returned. Rows whose
// values cannot be typed come back in bad instead of rows.
//
// After an error a keyed cursor may be called again: it reads the same
// chunk once more. A keyless cursor cannot resume: its scan is gone and
// every later call fails.
func (c *Cursor) Next(ctx context.Context) (rows []*cdc.Row, bad []BadRow, err error) {
	if c.done {
		return nil, nil, io.EOF
	}
	if len(c.pk) == 0 {
		return c.nextKeyless(ctx)
	}
	return c.nextKeyed(ctx, c.r.db, "")
}

// Querier runs a cursor's queries: a *sql.Conn or *sql.Tx the caller
// holds (Conn gives one of the Refetcher's connections).
type Querier = mysqlmeta.Querier

// NextIn is Next for a table with a primary key, its query run on q (a
// backfill reads each chunk inside the transaction that takes its
// watermarks) with lock appended (" LOCK IN SHARE MODE" for a locking
// read, "" for none). A table without a primary key is an error wrapping
// ErrNoKey.
func (c *Cursor) NextIn(ctx context.Context, q Querier, lock string) (rows []*cdc.Row, bad []BadRow, err error) {
	if len(c.pk) == 0 {
		return nil, nil, c.wrap(ErrNoKey)
	}
	if c.done {
		return nil, nil, io.EOF
	}
	return c.nextKeyed(ctx, q, lock)
}

// ErrNoKey means a table has no primary key, so it cannot be read in
// chunks that resume by key.
var ErrNoKey = errors.New("table has no primary key")

// Conn returns one connection of the Refetcher's pool (text protocol,
// UTC session), for a caller that runs a cursor's queries in its own
// transaction. Close it when done.
func (r *Refetcher) Conn(ctx context.Context) (*sql.Conn, error) {
	c, err := r.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("mysql connection: %w", err)
	}
	return c, nil
}

// After returns the key of the last row read, its values in key order in
// MySQL text form (nil before the first chunk): where a new cursor
// resumes with Seek.
func (c *Cursor) After() []string { return c.last }

// Seek makes the next chunk start after key (values in key order, MySQL
// text form, as After returns them).
func (c *Cursor) Seek(key []string) error {
	row, err := c.keyRow(key)
	if err != nil {
		return c.wrap(err)
	}
	args, err := c.keyArgs(row)
	if err != nil {
		return c.wrap(err)
	}
	c.after, c.last, c.done = args, slices.Clone(key), false
	return nil
}

// keyRow types a key given as text into a row of its key columns.
func (c *Cursor) keyRow(key []string) (*cdc.Row, error) {
	if len(key) != len(c.pk) {
		return nil, fmt.Errorf("key %q has %d values, the primary key (%s) %d", key, len(key), strings.Join(c.pk, ","), len(c.pk))
	}
	row := new(cdc.Row)
	for j, i := range c.pkIdx {
		col := &c.ti.cols[i]
		v, err := cdc.ParseText(col, key[j])
		if err != nil {
			return nil, fmt.Errorf("key column %q: %w", col.Name, err)
		}
		row.Set(col.Name, v)
	}
	return row, nil
}

// KeyOf returns the canonical text of row's primary key (as refetch
// compares keys: a key value of another type, "42" from a text source,
// names the same key as int64(42)), or false when a key column is
// missing, NULL or not convertible.
func (c *Cursor) KeyOf(row *cdc.Row) (string, bool) {
	var b strings.Builder
	if !c.writeKeyOf(&b, row) {
		return "", false
	}
	return b.String(), true
}

func (c *Cursor) writeKeyOf(b *strings.Builder, row *cdc.Row) bool {
	if len(c.pk) == 0 {
		return false
	}
	var buf [4]cdc.Value
	vals := buf[:0]
	if len(c.pk) > len(buf) {
		vals = make([]cdc.Value, 0, len(c.pk))
	}
	vals = vals[:len(c.pk)]
	if eventKey(row, c.pk, c.pkCols, vals) != nil {
		return false
	}
	writeKey(b, c.pkCols, vals)
	return true
}

// ReadKeys reads the rows with the given primary keys (values in key
// order, MySQL text form) on q with lock appended, as NextIn does. Rows
// found come back in found (rows whose values cannot be typed in bad);
// a key no row has comes back in missing as a row of its key columns, so
// a caller can delete it from the sinks. A key that cannot be typed for
// its column is an error wrapping cdc.ErrPermanent.
func (c *Cursor) ReadKeys(ctx context.Context, q Querier, lock string, keys [][]string) (found, missing []*cdc.Row, bad []BadRow, err error) {
	if len(c.pk) == 0 {
		return nil, nil, nil, c.wrap(ErrNoKey)
	}
	if len(keys) == 0 {
		return nil, nil, nil, nil
	}
	cols := make([]*cdc.Column, len(c.pk))
	for j, i := range c.pkIdx {
		cols[j] = &c.ti.cols[i]
	}
	want := make(map[string]*cdc.Row, len(keys))
	order := make([]string, 0, len(keys))
	ch := &chunk{g: &group{k: tableKey{c.db, c.table}, pk: c.pk}}
	vals := make([]cdc.Value, len(c.pk))
	for _, key := range keys {
		row, err := c.keyRow(key)
		if err != nil {
			return nil, nil, nil, c.wrap(fmt.Errorf("%w: %w", err, cdc.ErrPermanent))
		}
		var kb strings.Builder
		if !c.writeKeyOf(&kb, row) {
			return nil, nil, nil, c.wrap(fmt.Errorf("key %q: %w", key, cdc.ErrPermanent))
		}
		if _, dup := want[kb.String()]; dup {
			continue
		}
		want[kb.String()] = row
		order = append(order, kb.String())
		for j := range c.pk {
			vals[j] = row.Get(c.pk[j])
		}
		ch.keys = append(ch.keys, &keyState{key: kb.String(), args: queryArgs(cols, vals)})
	}
	query, args := ch.sql(c.ti, cols)
	qctx, cancel := context.WithTimeout(ctx, c.r.cfg.Timeout)
	defer cancel()
	c.r.queries.Add(1)
	res, err := q.QueryContext(qctx, query+lock, args...)
	if err != nil {
		return nil, nil, nil, c.wrap(err)
	}
	defer res.Close()
	seen := make(map[string]bool, len(want))
	for res.Next() {
		if err := res.Scan(c.dest...); err != nil {
			return nil, nil, nil, c.wrap(err)
		}
		row, convErr := c.ti.row(c.raw)
		k, ok := c.KeyOf(row)
		if !ok || want[k] == nil {
			continue // matched by collation, not by our key text: not ours
		}
		seen[k] = true
		if convErr != nil {
			bad = append(bad, BadRow{Key: c.keyText(row), Err: convErr})
			continue
		}
		found = append(found, row)
	}
	if err := res.Err(); err != nil {
		return nil, nil, nil, c.wrap(err)
	}
	for _, k := range order {
		if !seen[k] {
			missing = append(missing, want[k])
		}
	}
	return found, missing, bad, nil
}

func (c *Cursor) nextKeyed(ctx context.Context, db Querier, lock string) ([]*cdc.Row, []BadRow, error) {
	q, args := c.sel, c.after
	if c.after != nil {
		q += " WHERE " + keysetWhere(c.pk)
	}
	q += c.order + lock
	qctx, cancel := context.WithTimeout(ctx, c.r.cfg.Timeout)
	defer cancel()
	c.r.queries.Add(1)
	res, err := db.QueryContext(qctx, q, args...)
	if err != nil {
		return nil, nil, c.wrap(err)
	}
	defer res.Close()
	var rows []*cdc.Row
	var bad []BadRow
	var last []any
	var lastRow *cdc.Row
	n := 0
	for res.Next() {
		if err := res.Scan(c.dest...); err != nil {
			return nil, nil, c.wrap(err)
		}
		n++
		row, convErr := c.ti.row(c.raw)
		lastRow = row
		if last, err = c.keyArgs(row); err != nil {
			// without the key's value the next chunk cannot be found
			return nil, nil, c.wrap(fmt.Errorf("row after %v: %w", c.after, err))
		}
		if convErr != nil {
			bad = append(bad, BadRow{Key: c.keyText(row), Err: convErr})
			continue
		}
		rows = append(rows, row)
	}
	if err := res.Err(); err != nil {
		return nil, nil, c.wrap(err)
	}
	if n < c.chunk {
		c.done = true
	}
	if n == 0 {
		return nil, nil, io.EOF
	}
	if c.after != nil && slices.EqualFunc(last, c.after, func(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
		return nil, nil, c.wrap(fmt.Errorf("keyset pagination made no progress past %v", last))
	}
	c.after = last
	c.last = make([]string, len(c.pkIdx)) // a new slice: After's callers keep theirs
	for j, i := range c.pkIdx {
		col := &c.ti.cols[i]
		c.last[j], _ = cdc.FormatText(col, lastRow.Get(col.Name))
	}
	return rows, bad, nil
}

// keysetWhere is the condition "key > (?, ?, ...)" in a form MySQL and
// MariaDB both read as an index range; its arguments are keysetArgs.
func keysetWhere(pk []string) string {
	if len(pk) == 1 {
		return quote(pk[0]) + " > ?"
	}
	var b strings.Builder
	b.WriteString(quote(pk[0]) + " >= ? AND (")
	for j := range pk {
		if j > 0 {
			b.WriteString(" OR ")
		}
		b.WriteByte('(')
		for i := 0; i < j; i++ {
			b.WriteString(quote(pk[i]) + " = ? AND ")
		}
		b.WriteString(quote(pk[j]) + " > ?)")
	}
	b.WriteByte(')')
	return b.String()
}

// keyArgs returns the arguments of keysetWhere for the key of row.
func (c *Cursor) keyArgs(row *cdc.Row) ([]any, error) {
	vals := make([]any, len(c.pk))
	for j, i := range c.pkIdx {
		col := &c.ti.cols[i]
		v, err := keysetArg(col, row.Get(col.Name))
		if err != nil {
			return nil, err
		}
		vals[j] = v
	}
	if len(vals) == 1 {
		return vals, nil
	}
	// a >= ? AND (a > ? OR (a = ? AND b > ?) OR ...)
	args := []any{vals[0]}
	for j := range vals {
		args = append(args, vals[:j+1]...)
	}
	return args, nil
}

// keysetArg renders one key value so that the server compares it the way
// ORDER BY sorts the column: numbers as numbers (a float exactly, as the
// double it was read as), bytes as binary, ENUM and SET as their index
// (they sort by index, not label), the rest as MySQL's own text.
func keysetArg(col *cdc.Column, v cdc.Value) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, fmt.Errorf("primary key column %q is NULL or not convertible", col.Name)
	case int64, uint64, float64, []byte:
		return x, nil
	case string:
		if col.Kind == cdc.KindEnum {
			// '' (an invalid value) is index 0
			return int64(slices.Index(col.Elems, x) + 1), nil
		}
		return x, nil
	case cdc.Set:
		var mask uint64
		for _, label := range x {
			if i := slices.Index(col.Elems, label); i >= 0 && i < 64 {
				mask |= 1 << i
			}
		}
		return mask, nil
	}
	s, ok := cdc.FormatText(col, v)
	if !ok {
		return nil, fmt.Errorf("primary key column %q: cannot render %T", col.Name, v)
	}
	return s, nil
}

// keyText names a row by its key for logs and the dead letter: "id=7" or
// "user_id=1,order_no=2".
func (c *Cursor) keyText(row *cdc.Row) string {
	var b strings.Builder
	for j, i := range c.pkIdx {
		if j > 0 {
			b.WriteByte(',')
		}
		col := &c.ti.cols[i]
		s, _ := cdc.FormatText(col, row.Get(col.Name))
		b.WriteString(col.Name + "=" + s)
	}
	return b.String()
}

func (c *Cursor) nextKeyless(ctx context.Context) ([]*cdc.Row, []BadRow, error) {
	if c.rows == nil {
		// The scan outlives this call, so it runs on its own context,
		// cancelled by Close (or by ctx while a call is reading).
		qctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c.r.queries.Add(1)
		res, err := c.r.db.QueryContext(qctx, c.sel)
		if err != nil {
			cancel()
			c.done = true
			return nil, nil, c.wrap(err)
		}
		c.rows, c.cancel = res, cancel
	}
	stop := context.AfterFunc(ctx, c.cancel)
	defer stop()
	var rows []*cdc.Row
	var bad []BadRow
	for len(rows)+len(bad) < c.chunk && c.rows.Next() {
		if err := c.rows.Scan(c.dest...); err != nil {
			c.done = true
			return nil, nil, c.wrap(err)
		}
		c.n++
		row, convErr := c.ti.row(c.raw)
		if convErr != nil {
			bad = append(bad, BadRow{Key: "row " + strconv.Itoa(c.n), Err: convErr})
			continue
		}
		rows = append(rows, row)
	}
	if len(rows)+len(bad) < c.chunk {
		c.done = true
		if err := c.rows.Err(); err != nil {
			return nil, nil, c.wrap(err)
		}
		if err := c.rows.Close(); err != nil {
			return nil, nil, c.wrap(err)
		}
	}
	if ctx.Err() != nil {
		c.done = true
		return nil, nil, ctx.Err()
	}
	if len(rows)+len(bad) == 0 {
		return nil, nil, io.EOF
	}
	return rows, bad, nil
}

func (c *Cursor) wrap(err error) error {
	return fmt.Errorf("scan %s.%s: %w", c.db, c.table, err)
}

// Close ends an open scan. The cursor must not be used after it.
func (c *Cursor) Close() error {
	c.done = true
	if c.rows == nil {
		return nil
	}
	c.cancel()
	err := c.rows.Close()
	c.rows = nil
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("scan %s.%s: %w", c.db, c.table, err)
	}
	return nil
}

// EstimateRows returns information_schema's estimate of db.table's row
// count (InnoDB's is approximate; 0 when unknown), for progress display.
func (r *Refetcher) EstimateRows(ctx context.Context, db, table string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var n sql.NullInt64
	err := r.db.QueryRowContext(ctx, `SELECT TABLE_ROWS FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, db, table).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("row estimate of %s.%s: %w", db, table, err)
	}
	return n.Int64, nil
}
