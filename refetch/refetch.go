// Package refetch re-reads the newest rows from MySQL by primary key, so a
// change message is only a trigger: whatever image it carried (partial,
// stale, out of order, duplicated), the sinks get what MySQL holds now.
//
// One Refetch call groups its events by table, reads the distinct keys of
// each table with one `SELECT ... WHERE (pk...) IN (...)` per chunk, and
// returns one event per key. Values are read as text and typed by
// cdc.ParseText with the column types from information_schema, the same
// conversion the text-carrying sources use, so a refetched row equals the
// row the binlog path would produce.
//
// Read from the primary: a lagging replica can return a row older than the
// change that triggered the read (see Config).
package refetch

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"golang.org/x/sync/errgroup"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/mysqlmeta"
)

var _ cdc.Pinger = (*Refetcher)(nil)

// Server error numbers that decide how a failed query is classified.
const (
	erDBAccessDenied     = 1044 // access denied for user to database
	erBadDB              = 1049 // unknown database
	erBadField           = 1054 // unknown column: the cached definition is stale
	erTableAccessDenied  = 1142 // SELECT command denied for table
	erColumnAccessDenied = 1143
	erNoSuchTable        = 1146
)

// Refetcher re-reads rows by primary key. It is safe for concurrent use by
// the pipeline's shards; its pool bounds the queries in flight.
type Refetcher struct {
	db  *sql.DB
	cat *mysqlmeta.Catalog
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	tables map[tableKey]*tableInfo

	minReload time.Duration // see stale; tests lower it
	queries   atomic.Int64  // row queries sent, for tests
}

// New opens a bounded pool on cfg.DSN. It does not connect; use Ping to
// check the server is reachable.
func New(cfg Config, logger *slog.Logger) (*Refetcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("refetch config: %w", err)
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dc, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("refetch dsn: %w", err)
	}
	// TIMESTAMP columns print in the session time zone; UTC makes their
	// text the instant cdc.ParseDateTime expects.
	if tz, ok := dc.Params["time_zone"]; ok && tz != "'+00:00'" {
		logger.Warn("refetch: overriding the DSN's time_zone with '+00:00' so TIMESTAMP values read as UTC", "dsn_time_zone", tz)
	}
	if dc.Params == nil {
		dc.Params = map[string]string{}
	}
	dc.Params["time_zone"] = "'+00:00'"
	// Text protocol in one round trip: interpolated queries return every
	// value as MySQL's text, which cdc.ParseText types; prepared statements
	// would use the binary protocol and cost two extra round trips.
	dc.InterpolateParams = true
	dc.ParseTime = false
	if dc.Timeout == 0 {
		dc.Timeout = cfg.Timeout
	}
	dc.Logger = driverLogger{logger}
	conn, err := mysql.NewConnector(dc)
	if err != nil {
		return nil, fmt.Errorf("refetch dsn: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(cfg.MaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &Refetcher{db: db, cat: mysqlmeta.NewCatalog(db), cfg: cfg, log: logger, tables: map[tableKey]*tableInfo{}, minReload: minReload}, nil
}

// driverLogger sends the driver's own messages (dropped connections) to slog.
type driverLogger struct{ log *slog.Logger }

func (l driverLogger) Print(v ...any) {
	l.log.Debug("mysql driver: " + strings.TrimSpace(fmt.Sprint(v...)))
}

// Ping checks that MySQL answers within the configured timeout.
func (r *Refetcher) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if err := r.db.PingContext(ctx); err != nil {
		return fmt.Errorf("refetch ping: %w", err)
	}
	return nil
}

// Close closes the pool. Refetch must not be called after it.
func (r *Refetcher) Close() error {
	return r.db.Close()
}

// group is the events of one table (and one primary-key column list).
type group struct {
	k    tableKey
	pk   []string
	ti   *tableInfo
	idx  []int // input indices
	keys map[string]*keyState
	list []*keyState // in first-seen order
	err  error       // permanent failure of the whole group
}

// keyState is what one distinct primary key collects.
type keyState struct {
	key         string // canonical text (writeKey)
	args        []any  // query arguments, in pk order
	last        int    // input index of the key's last event
	idx         []int  // every input index of the key
	firstBefore *cdc.Row
	found       *cdc.Row
	cols        []cdc.Column // definition the row was read with
	err         error        // permanent failure of this key
}

// chunk is one IN (...) query's worth of keys.
type chunk struct {
	g    *group
	keys []*keyState
	err  error // permanent failure of this chunk's query
}

// Refetch re-reads the rows of events and returns one event per distinct
// (db, table, primary key), ordered by each key's last occurrence in
// events:
//
//   - row found: Op Update (Insert when the key's last input op was
//     Insert), After the current row, Before the first Before seen for the
//     key, Columns the table's definition;
//   - row gone: Op Delete, Before the last known image (After of the
//     key's last event, else its Before), so sinks can compute keys.
//
// Pos is the key's last event's Pos with Version 0, Commit its Commit.
//
// Events that can never be re-read (no primary key, key column missing or
// NULL, table missing or not readable) are reported in a *cdc.BatchError
// by index into events, alongside the output for the others. Any other
// error (MySQL down, timeout, deadlock, too many connections) is transient
// and returned alone: the caller retries the whole call.
func (r *Refetcher) Refetch(ctx context.Context, events []cdc.Event) ([]cdc.Event, error) {
	var be cdc.BatchError
	groups, order := r.groupEvents(events, &be)

	var chunks []*chunk
	for _, gk := range order {
		g := groups[gk]
		if err := r.prepare(ctx, g, events, &be); err != nil {
			return nil, err
		}
		if g.err != nil {
			continue
		}
		for i := 0; i < len(g.list); i += r.cfg.ChunkSize {
			chunks = append(chunks, &chunk{g: g, keys: g.list[i:min(i+r.cfg.ChunkSize, len(g.list))]})
		}
	}

	if len(chunks) == 1 {
		if err := r.readChunk(ctx, chunks[0]); err != nil {
			return nil, err
		}
	} else if len(chunks) > 1 {
		eg, egCtx := errgroup.WithContext(ctx)
		eg.SetLimit(r.cfg.MaxOpenConns)
		for _, c := range chunks {
			eg.Go(func() error { return r.readChunk(egCtx, c) })
		}
		if err := eg.Wait(); err != nil {
			return nil, err
		}
	}
	for _, c := range chunks {
		if c.err != nil && c.g.err == nil {
			c.g.err = c.err
		}
	}

	var keys []*keyState
	for _, gk := range order {
		g := groups[gk]
		if g.err != nil {
			for _, i := range g.idx {
				be.Fail(i, g.err)
			}
			r.log.Debug("refetch: table cannot be read", "table", g.k.db+"."+g.k.table, "events", len(g.idx), "err", g.err)
			continue
		}
		for _, ks := range g.list {
			if ks.err != nil {
				for _, i := range ks.idx {
					be.Fail(i, ks.err)
				}
				continue
			}
			keys = append(keys, ks)
		}
	}
	slices.SortFunc(keys, func(a, b *keyState) int { return a.last - b.last })
	out := make([]cdc.Event, 0, len(keys))
	for _, ks := range keys {
		out = append(out, output(&events[ks.last], ks))
	}
	return out, be.Err()
}

// output builds the event of one refetched key from its last input event.
func output(last *cdc.Event, ks *keyState) cdc.Event {
	ev := cdc.Event{
		DB: last.DB, Table: last.Table, PK: last.PK, Commit: last.Commit,
		// Version 0: the row just read is the newest truth, newer than any
		// version a sink stored, so the version guard must not reject it
		// (sinks apply Version 0 unguarded).
		Pos: cdc.Position{Text: last.Pos.Text},
	}
	if ks.found == nil {
		ev.Op = cdc.Delete
		ev.Before = last.After
		if ev.Before == nil {
			ev.Before = last.Before
		}
		// Columns describe Before, the event's own image, where it has them.
		ev.Columns = last.Columns
		if len(ev.Columns) == 0 {
			ev.Columns = ks.cols
		}
		return ev
	}
	ev.Op = cdc.Update
	if last.Op == cdc.Insert {
		ev.Op = cdc.Insert
	}
	ev.Before = ks.firstBefore
	ev.After = ks.found
	ev.Columns = ks.cols
	return ev
}

type groupKey struct {
	tableKey
	pk string
}

// groupEvents sorts events by table; events without a primary key fail.
func (r *Refetcher) groupEvents(events []cdc.Event, be *cdc.BatchError) (map[groupKey]*group, []groupKey) {
	groups := map[groupKey]*group{}
	var order []groupKey
	var last *group
	for i := range events {
		ev := &events[i]
		if len(ev.PK) == 0 {
			be.Fail(i, errors.New("no primary key"))
			continue
		}
		g := last
		if g == nil || g.k.db != ev.DB || g.k.table != ev.Table || !slices.Equal(g.pk, ev.PK) {
			gk := groupKey{tableKey{ev.DB, ev.Table}, strings.Join(ev.PK, "\x00")}
			g = groups[gk]
			if g == nil {
				g = &group{k: gk.tableKey, pk: ev.PK, keys: map[string]*keyState{}}
				groups[gk] = g
				order = append(order, gk)
			}
			last = g
		}
		g.idx = append(g.idx, i)
	}
	return groups, order
}

// prepare loads g's table definition and collects its distinct keys. It
// returns only transient errors; a permanent one lands in g.err, or in be
// for a single event whose key cannot be read.
func (r *Refetcher) prepare(ctx context.Context, g *group, events []cdc.Event, be *cdc.BatchError) error {
	ti, err := r.table(ctx, g.k)
	if err != nil {
		return transient(g.k, err)
	}
	if ti != nil && time.Since(ti.loaded) >= r.minReload && ti.stale(g, events) {
		if ti, err = r.reload(ctx, g.k); err != nil {
			return transient(g.k, err)
		}
	}
	if ti == nil {
		g.err = fmt.Errorf("table %s.%s not found (or no privilege to see it)", g.k.db, g.k.table)
		return nil
	}
	pkCols := make([]*cdc.Column, len(g.pk))
	for j, name := range g.pk {
		ci, ok := ti.Index(name)
		if !ok {
			g.err = fmt.Errorf("primary key column %q not in table %s.%s", name, g.k.db, g.k.table)
			return nil
		}
		pkCols[j] = &ti.cols[ci]
	}
	g.ti = ti

	var kb strings.Builder
	vals := make([]cdc.Value, len(g.pk))
	for _, i := range g.idx {
		ev := &events[i]
		if err := eventKey(ev.Image(), g.pk, pkCols, vals); err != nil {
			// Only this event is unusable; the key's other events (if any)
			// still trigger the read.
			be.Fail(i, err)
			continue
		}
		kb.Reset()
		writeKey(&kb, pkCols, vals)
		ks := g.keys[kb.String()]
		if ks == nil {
			ks = &keyState{key: kb.String(), args: queryArgs(pkCols, vals), firstBefore: ev.Before}
			g.keys[ks.key] = ks
			g.list = append(g.list, ks)
		} else if ks.firstBefore == nil {
			ks.firstBefore = ev.Before
		}
		ks.last = i
		ks.idx = append(ks.idx, i)
	}
	return nil
}

// eventKey fills vals with the canonical key values of img.
func eventKey(img *cdc.Row, pk []string, pkCols []*cdc.Column, vals []cdc.Value) error {
	for j, name := range pk {
		v, ok := img.Lookup(name)
		if !ok || v == nil {
			return fmt.Errorf("primary key column %q missing or NULL", name)
		}
		var err error
		if vals[j], err = canonical(pkCols[j], v); err != nil {
			return fmt.Errorf("primary key: %w", err)
		}
	}
	return nil
}

// stale reports whether an event names a column the cached definition
// lacks: a column added since it was loaded.
func (ti *tableInfo) stale(g *group, events []cdc.Event) bool {
	for _, i := range g.idx {
		ev := &events[i]
		if len(ev.Columns) > 0 {
			for _, c := range ev.Columns {
				if _, ok := ti.Index(c.Name); !ok {
					return true
				}
			}
			continue
		}
		for name := range ev.Image().All() {
			if _, ok := ti.Index(name); !ok {
				return true
			}
		}
	}
	return false
}

// canonical converts a key value from an event to the type the column's
// rows have, so "42" from a text source and int64(42) from the binlog name
// the same key.
func canonical(col *cdc.Column, v cdc.Value) (cdc.Value, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case cdc.Decimal:
		s = string(x)
	case cdc.JSON:
		s = string(x)
	case []byte:
		if col.Kind == cdc.KindBytes || col.Kind == cdc.KindUnknown {
			return x, nil
		}
		s = string(x)
	case int64, uint64:
		if col.Kind == cdc.KindInt || col.Kind == cdc.KindYear || col.Kind == cdc.KindBit {
			return x, nil
		}
		s, _ = cdc.FormatText(col, x)
	default:
		return v, nil
	}
	return cdc.ParseText(col, s)
}

// writeKey writes the canonical text of a key: each part length-prefixed,
// so composite keys cannot collide.
func writeKey(b *strings.Builder, cols []*cdc.Column, vals []cdc.Value) {
	for j, v := range vals {
		s, _ := cdc.FormatText(cols[j], v)
		if len(vals) > 1 {
			b.WriteString(strconv.Itoa(len(s)))
			b.WriteByte(':')
		}
		b.WriteString(s)
	}
}

// queryArgs renders key values as query arguments: integers and bytes as
// they are, everything else (DECIMAL, dates, TIME) as MySQL's text.
//
// A uint64 (BIGINT UNSIGNED above 2^63-1) goes as quoted text: as a bare
// literal MySQL reads it as a DECIMAL, and an IN list mixing it with
// integer literals loses the index range and the sorted lookup, so every
// query scanned the table and compared each row with every key (9× the
// time of the quoted form on a 3,400-row table and 220 keys; the
// ordering chaos test's users table drained at a third of the plain
// rate). Quoted, it is matched through the primary key exactly.
func queryArgs(cols []*cdc.Column, vals []cdc.Value) []any {
	args := make([]any, len(vals))
	for j, v := range vals {
		switch x := v.(type) {
		case uint64:
			args[j] = strconv.FormatUint(x, 10)
		case int64, []byte:
			args[j] = v
		default:
			args[j], _ = cdc.FormatText(cols[j], v)
		}
	}
	return args
}

// readChunk queries one chunk's rows. A stale definition (unknown column)
// is reloaded and the query retried once. It returns only transient
// errors; a permanent one lands in c.err.
func (r *Refetcher) readChunk(ctx context.Context, c *chunk) error {
	ti := c.g.ti
	for attempt := 0; ; attempt++ {
		err := r.query(ctx, c, ti)
		if err == nil {
			return nil
		}
		var me *mysql.MySQLError
		if !errors.As(err, &me) {
			return transient(c.g.k, err)
		}
		switch me.Number {
		case erBadField:
			if attempt > 0 {
				return transient(c.g.k, err)
			}
			r.log.Info("refetch: table definition changed, reloading", "table", c.g.k.db+"."+c.g.k.table)
			if ti, err = r.reload(ctx, c.g.k); err != nil {
				return transient(c.g.k, err)
			}
			if ti == nil {
				c.err = fmt.Errorf("table %s.%s not found (or no privilege to see it)", c.g.k.db, c.g.k.table)
				return nil
			}
		case erNoSuchTable, erBadDB, erTableAccessDenied, erColumnAccessDenied, erDBAccessDenied:
			r.Forget(c.g.k.db, c.g.k.table)
			c.err = fmt.Errorf("select %s.%s: %w", c.g.k.db, c.g.k.table, err)
			return nil
		default:
			return transient(c.g.k, err)
		}
	}
}

func transient(k tableKey, err error) error {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) {
		return fmt.Errorf("refetch %s.%s: connection lost: %w", k.db, k.table, err)
	}
	return fmt.Errorf("refetch %s.%s: %w", k.db, k.table, err)
}

// query runs one SELECT for c's keys and records the rows found.
func (r *Refetcher) query(ctx context.Context, c *chunk, ti *tableInfo) error {
	pkCols := make([]*cdc.Column, len(c.g.pk))
	for j, name := range c.g.pk {
		ci, ok := ti.Index(name)
		if !ok {
			// the key column itself went away: no row can be matched
			return &mysql.MySQLError{Number: erBadField, Message: "unknown column " + name}
		}
		pkCols[j] = &ti.cols[ci]
	}
	query, args := c.sql(ti, pkCols)
	qctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	r.queries.Add(1)
	rows, err := r.db.QueryContext(qctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if names, err := rows.Columns(); err != nil {
		return err
	} else if len(names) != len(ti.cols) {
		return fmt.Errorf("select returned %d columns, expected %d", len(names), len(ti.cols))
	}
	byKey := make(map[string]*keyState, len(c.keys))
	for _, ks := range c.keys {
		byKey[ks.key] = ks
	}
	var kb strings.Builder
	vals := make([]cdc.Value, len(pkCols))

	raw := make([]sql.RawBytes, len(ti.cols))
	dest := make([]any, len(raw))
	for i := range raw {
		dest[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		row, convErr := ti.row(raw)
		kb.Reset()
		for j := range pkCols {
			vals[j] = row.Get(pkCols[j].Name)
		}
		writeKey(&kb, pkCols, vals)
		ks := byKey[kb.String()]
		if ks == nil {
			// a key MySQL matched that the events spelled differently
			// (collation, trailing spaces): it is not ours to report
			r.log.Debug("refetch: row matched no event key", "table", c.g.k.db+"."+c.g.k.table, "key", kb.String())
			continue
		}
		if convErr != nil {
			ks.err = fmt.Errorf("convert row: %w", convErr)
			continue
		}
		ks.found, ks.cols = row, ti.cols
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, ks := range c.keys {
		if ks.found == nil {
			ks.cols = ti.cols
		}
	}
	return nil
}

// sql renders the SELECT of c's keys: `pk IN (?,...)`, or `(pk1,pk2) IN
// ((?,?),...)` for a composite key, with its arguments.
func (c *chunk) sql(ti *tableInfo, pkCols []*cdc.Column) (string, []any) {
	var q strings.Builder
	q.Grow(len(ti.sel) + 64 + len(c.keys)*(2+4*len(pkCols)))
	q.WriteString("SELECT ")
	q.WriteString(ti.sel)
	q.WriteString(" FROM ")
	q.WriteString(quote(c.g.k.db))
	q.WriteByte('.')
	q.WriteString(quote(c.g.k.table))
	q.WriteString(" WHERE ")
	args := make([]any, 0, len(c.keys)*len(pkCols))
	if len(pkCols) == 1 {
		q.WriteString(quote(c.g.pk[0]))
		q.WriteString(" IN (")
		for i, ks := range c.keys {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('?')
			args = append(args, ks.args...)
		}
	} else {
		q.WriteByte('(')
		for j, name := range c.g.pk {
			if j > 0 {
				q.WriteByte(',')
			}
			q.WriteString(quote(name))
		}
		q.WriteString(") IN (")
		tuple := "(?" + strings.Repeat(",?", len(pkCols)-1) + ")"
		for i, ks := range c.keys {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString(tuple)
			args = append(args, ks.args...)
		}
	}
	q.WriteByte(')')
	return q.String(), args
}

// row types one row read with ti.sel: NULL is nil, everything else goes
// through cdc.ParseText with the column's type. It returns the row, of
// ti's layout, with every column it could convert and the first
// conversion error.
func (ti *tableInfo) row(raw []sql.RawBytes) (*cdc.Row, error) {
	row := cdc.NewRow(ti.layout)
	var convErr error
	for i := range ti.cols {
		if raw[i] == nil {
			row.SetAt(i, nil)
			continue
		}
		v, err := cdc.ParseText(&ti.cols[i], string(raw[i]))
		if err != nil && convErr == nil {
			convErr = err
		}
		row.SetAt(i, v)
	}
	return row, convErr
}
