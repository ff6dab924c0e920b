package binlog

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowsync/rowsync/cdc"
)

// rows turns one rows event into events. offset is where the event sits in
// the current file (for a compressed transaction, see payload).
func (s *Source) rows(ctx context.Context, ev *replication.BinlogEvent, e *replication.RowsEvent, offset uint64) error {
	h := ev.Header
	tm := e.Table
	if tm == nil {
		return fmt.Errorf("%s at %s:%d without its table map: %w", h.EventType, s.file, offset, ErrUnsupported)
	}
	if cap(s.cur) == 0 {
		// Sized like the last batch: a fixed large capacity would cost
		// hundreds of KiB of garbage per one-transaction batch and keep
		// the GC busy at low latency; append grows it in a burst.
		// A rows event that crosses BatchSize is taken whole and split
		// at the cut (see cut): 1/16 headroom keeps that append from
		// regrowing, and so copying, the whole batch.
		n := min(s.cfg.BatchSize, max(16, s.lastLen))
		s.cur = s.eventList(n + n/16)
	}
	// a table whose plan fits this table map is wanted (plans hold wanted
	// tables only): found without building the key
	s.keyBuf = append(append(append(s.keyBuf[:0], tm.Schema...), 0), tm.Table...)
	p := s.plans[string(s.keyBuf)]
	var key string
	if p != nil && p.matches(tm, s.schemaGen) {
		key = p.key
	} else {
		p, key = nil, string(s.keyBuf)
		if !s.filter.wants(key, string(tm.Schema), string(tm.Table)) {
			return nil
		}
	}
	pos := cdc.Position{Version: cdc.BinlogPosVersion(s.file, offset), Text: s.file + ":" + strconv.FormatUint(offset, 10)}
	var op cdc.Op
	switch {
	case e.Type() == replication.EnumRowsEventTypeInsert:
		op = cdc.Insert
	case e.Type() == replication.EnumRowsEventTypeUpdate, h.EventType == replication.PARTIAL_UPDATE_ROWS_EVENT:
		op = cdc.Update
	case e.Type() == replication.EnumRowsEventTypeDelete:
		op = cdc.Delete
	default:
		return fmt.Errorf("%s on %s.%s at %s: rowsync cannot read this rows event type: %w",
			h.EventType, tm.Schema, tm.Table, pos.Text, ErrUnsupported)
	}
	var err error
	if p == nil {
		if p, err = s.planFor(ctx, key, tm); err != nil {
			return err // transient (server unreachable): reconnect and read again
		}
	}
	var diffOps []map[int]int
	if h.EventType == replication.PARTIAL_UPDATE_ROWS_EVENT {
		if diffOps, err = partialDiffCounts(ev.RawData, e); err != nil {
			return fmt.Errorf("%s on %s.%s at %s: %v: %w", h.EventType, tm.Schema, tm.Table, pos.Text, err, ErrUnsupported)
		}
	}
	if s.txStarted.IsZero() {
		s.txStarted = time.Now()
	}
	if raw := rawOf(e); raw != nil {
		if ok, err := s.ownRows(ev, e, raw, p, op, pos); ok {
			return err
		}
		if err := raw.decodeAll(e); err != nil {
			// as when go-mysql failed to decode it while reading: read it again
			return fmt.Errorf("decode %s on %s.%s at %s: %w", h.EventType, tm.Schema, tm.Table, pos.Text, err)
		}
	}
	commit := time.Unix(int64(h.Timestamp), 0).UTC()
	step := 1
	if op == cdc.Update {
		step = 2
	}
	db, table := p.db, p.table // once per table, not per row
	rows := s.batchRows()
	for i := 0; i+step-1 < len(e.Rows); i += step {
		ev := cdc.Event{DB: db, Table: table, Op: op, PK: p.pk,
			Columns: p.cols, Commit: commit, Pos: pos}
		var (
			missing []string
			err     error
		)
		var rk string
		switch op {
		case cdc.Insert:
			ev.After, missing, err = p.image(rows, e.Rows[i], skipped(e, i), nil, nil)
		case cdc.Delete:
			ev.Before, missing, err = p.image(rows, e.Rows[i], skipped(e, i), nil, nil)
			if err == nil && p.hasKey(ev.Before) {
				missing = nil // a delete needs only its key
			}
		case cdc.Update:
			ev.Before, _, err = p.image(rows, e.Rows[i], skipped(e, i), nil, nil)
			if err == nil {
				var ops map[int]int
				if diffOps != nil {
					ops = diffOps[i/2]
				}
				prev := ev.Before
				if p.hasJSON {
					prev = withRemembered(ev.Before, s.jsonPrev.get(rowKey(key, p.pk, ev.Before)))
					// the key may change: forget the old one
					s.jsonPrev.del(rowKey(key, p.pk, ev.Before))
				}
				ev.After, missing, err = p.image(rows, e.Rows[i+1], skipped(e, i+1), prev, ops)
			}
		}
		if p.hasJSON {
			img := ev.After
			if op == cdc.Delete {
				img = ev.Before
			}
			if rk = rowKey(key, p.pk, img); err != nil || op == cdc.Delete {
				s.jsonPrev.del(rk)
			} else {
				s.jsonPrev.put(rk, p, ev.After)
			}
		}
		if err != nil {
			// bad data in one row must not stop the stream: it goes to the
			// dead letter with its position
			s.curRejects = append(s.curRejects, cdc.Reject{Pos: pos,
				Raw:    []byte(fmt.Sprintf("%s.%s %s %v", ev.DB, ev.Table, op, e.Rows[i])),
				Reason: fmt.Errorf("decode %s.%s at %s: %w", ev.DB, ev.Table, pos.Text, err)})
			continue
		}
		if len(missing) > 0 && (s.cfg.Refetched == nil || !s.cfg.Refetched(ev.DB, ev.Table)) {
			return missingErr(&ev, missing)
		}
		// With refetch, the row is read again by key: the columns known
		// here (the key among them) are enough.
		if len(s.cur) == cap(s.cur) {
			s.growEvents()
		}
		s.cur = append(s.cur, ev)
	}
	return nil
}

func missingErr(ev *cdc.Event, missing []string) error {
	return fmt.Errorf("%s of %s.%s at %s lacks the value of %s (binlog_row_image is not FULL, or a partial JSON update "+
		"whose previous value the event does not carry); set binlog_row_image=FULL and binlog_row_value_options='' "+
		"on the server, or refetch: true for the table: %w",
		ev.Op, ev.DB, ev.Table, ev.Pos.Text, strings.Join(missing, ", "), ErrUnsupported)
}

// ownRows is the rows loop below for an event whose images go-mysql left
// raw (see decode.go), decoded straight into rows with p. Such a table has
// no JSON column and the event is no partial update, so the JSON memory
// and diff handling do not apply. It returns false, having added nothing,
// when anything in the event is not as expected: the caller then has
// go-mysql decode it and takes the old path, which knows the error. An
// image of no bytes (never logged by a server) is an error here: go-mysql
// would loop on it.
func (s *Source) ownRows(ev *replication.BinlogEvent, e *replication.RowsEvent, raw *rawImages,
	p *plan, op cdc.Op, pos cdc.Position) (bool, error) {
	if p.hasJSON || e.ColumnCount != uint64(len(p.cols)) {
		return false, nil
	}
	data, ok := raw.images(ev.Header.EventType)
	if !ok {
		return false, nil
	}
	start := len(s.cur)
	undo := func() (bool, error) {
		clear(s.cur[start:])
		s.cur = s.cur[:start]
		return false, nil
	}
	commit := time.Unix(int64(ev.Header.Timestamp), 0).UTC()
	db, table := p.db, p.table
	rows := s.batchRows()
	firstMissing, missingAt := []string(nil), -1
	for off := 0; off < len(data); {
		// the event is made in place (160 bytes, not copied again)
		if len(s.cur) == cap(s.cur) {
			s.growEvents()
		}
		s.cur = append(s.cur, cdc.Event{DB: db, Table: table, Op: op, PK: p.pk, Columns: p.cols, Commit: commit, Pos: pos})
		row := &s.cur[len(s.cur)-1]
		var (
			img     *cdc.Row
			missing []string
			n       int
			err     error
		)
		img, missing, n, err = p.decodeImage(rows, data[off:], e.ColumnBitmap1, nil)
		if err != nil {
			return undo()
		}
		if n == 0 {
			// go-mysql would read this image forever
			undo()
			return true, fmt.Errorf("%s on %s.%s at %s: a row image of no bytes: %w",
				ev.Header.EventType, db, table, pos.Text, ErrUnsupported)
		}
		off += n
		switch op {
		case cdc.Insert:
			row.After = img
		case cdc.Delete:
			row.Before = img
			if p.hasKey(img) {
				missing = nil // a delete needs only its key
			}
		case cdc.Update:
			row.Before = img
			if row.After, missing, n, err = p.decodeImage(rows, data[off:], e.ColumnBitmap2, img); err != nil {
				return undo()
			}
			off += n
		}
		if len(missing) > 0 && missingAt < 0 {
			firstMissing, missingAt = missing, len(s.cur)-1
		}
	}
	if missingAt >= 0 && (s.cfg.Refetched == nil || !s.cfg.Refetched(db, table)) {
		// the old path stops at that row, the rows before it taken
		first := s.cur[missingAt]
		clear(s.cur[missingAt:])
		s.cur = s.cur[:missingAt]
		return true, missingErr(&first, firstMissing)
	}
	return true, nil
}

// withRemembered returns before completed with the remembered JSON values
// of the columns it lacks: a copy, read while decoding the after image
// and put in no event.
func withRemembered(before, remembered *cdc.Row) *cdc.Row {
	if remembered.Len() == 0 {
		return before
	}
	r := before.Clone()
	if r == nil {
		r = new(cdc.Row)
	}
	for k, v := range remembered.All() {
		if !r.Has(k) {
			r.Set(k, v)
		}
	}
	return r
}

// skipped returns the columns image i of e does not carry (not FULL
// binlog_row_image), nil when it carries all.
func skipped(e *replication.RowsEvent, i int) []int {
	if i < len(e.SkippedColumns) {
		return e.SkippedColumns[i]
	}
	return nil
}

// hasKey reports whether r, a row from p.row, holds every key column.
func (p *plan) hasKey(r *cdc.Row) bool {
	if p.layout == nil {
		return hasAll(r, p.pk)
	}
	for _, i := range p.pkAt {
		if i < 0 {
			return false
		}
		if _, _, ok := r.At(i); !ok {
			return false
		}
	}
	return true
}

// hasAll reports whether r holds every column of names.
func hasAll(r *cdc.Row, names []string) bool {
	for _, n := range names {
		if _, ok := r.Lookup(n); !ok {
			return false
		}
	}
	return true
}

// image decodes one row image by column name. Columns the image does not
// carry are left out of the row. For an update's after image, before is the
// decoded before image: a column missing from the after image did not
// change and takes the before image's value, and a partial JSON update
// (diffOps: the number of diff operations per column) is applied to the
// before image's value. Columns whose value stays unknown are returned in
// missing. The row comes from rows (see plan.row).
func (p *plan) image(rows *cdc.BatchRows, vals []any, skip []int, before *cdc.Row, diffOps map[int]int) (r *cdc.Row, missing []string, err error) {
	r = p.row(rows)
	for i, v := range vals {
		if i >= len(p.cols) {
			break
		}
		name := p.names[i]
		if slices.Contains(skip, i) {
			if bv, ok := p.beforeValue(before, i); ok {
				p.set(r, i, bv)
			} else {
				missing = append(missing, name)
			}
			continue
		}
		if d, ok := v.(*replication.JsonDiff); ok {
			x, known, err := p.applyDiff(i, d, before, diffOps[i])
			if err != nil {
				return nil, nil, err
			}
			if !known {
				missing = append(missing, name)
				continue
			}
			p.set(r, i, x)
			continue
		}
		x, err := p.value(i, v)
		if err != nil {
			return nil, nil, err
		}
		p.set(r, i, x)
	}
	return r, missing, nil
}

// value converts the value of column i.
func (p *plan) value(i int, v any) (cdc.Value, error) {
	if s, ok := v.(string); ok && p.jsonBin[i] {
		j, err := mysqlJSON(s)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", p.names[i], err)
		}
		return j, nil
	}
	return convert(&p.cols[i], v, p.binLen[i])
}

// applyDiff computes the new value of JSON column i from its previous value
// in before and a partial update. known is false when the previous value is
// not in the event or the update holds more operations than go-mysql
// decodes (it keeps only the first of a column's diff vector).
func (p *plan) applyDiff(i int, d *replication.JsonDiff, before *cdc.Row, ops int) (cdc.Value, bool, error) {
	prev, ok := before.Get(p.names[i]).(cdc.JSON)
	if !ok || ops != 1 {
		return nil, false, nil
	}
	doc, err := parseJSONDoc(string(prev))
	if err != nil {
		return nil, false, fmt.Errorf("column %s: previous value: %w", p.names[i], err)
	}
	if doc, err = applyJSONDiff(doc, d); err != nil {
		return nil, false, fmt.Errorf("column %s: %w", p.names[i], err)
	}
	return cdc.JSON(doc.text()), true, nil
}

// dmlVerb returns the verb of a data-changing statement, "" for others.
func dmlVerb(q string) string {
	for _, kw := range []string{"INSERT", "REPLACE", "UPDATE", "DELETE", "LOAD"} {
		if hasPrefixFold(q, kw) {
			return kw
		}
	}
	return ""
}

// statement handles a data change the server logged as a statement
// (binlog_format STATEMENT or MIXED): rowsync only reads row events, so
// one that may touch a watched table stops the stream.
func (s *Source) statement(h *replication.EventHeader, schema, q string) error {
	db, table, ok := statementTarget(q)
	if db == "" {
		db = schema
	}
	if ok && db != "" {
		if !s.filter.wants(db+"\x00"+table, db, table) {
			return nil
		}
	}
	what := "a table rowsync cannot tell"
	if ok {
		what = db + "." + table
	}
	return fmt.Errorf("statement-logged change of %s at %s:%d (%.60q): rowsync reads row events only; "+
		"set binlog_format=ROW on the server and for every session: %w",
		what, s.file, uint64(h.LogPos)-uint64(h.EventSize), q, ErrUnsupported)
}

// statementTarget finds the table an INSERT/REPLACE/UPDATE/DELETE writes
// to; ok is false when the statement is not that simple (multi-table
// forms, LOAD DATA).
func statementTarget(q string) (db, table string, ok bool) {
	f := strings.Fields(q)
	if len(f) < 2 {
		return "", "", false
	}
	verb := strings.ToUpper(f[0])
	f = f[1:]
	skip := func(words ...string) {
		for len(f) > 0 && slices.Contains(words, strings.ToUpper(f[0])) {
			f = f[1:]
		}
	}
	switch verb {
	case "INSERT", "REPLACE":
		skip("LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "INTO")
	case "UPDATE":
		skip("LOW_PRIORITY", "IGNORE")
	case "DELETE":
		skip("LOW_PRIORITY", "QUICK", "IGNORE")
		if len(f) == 0 || strings.ToUpper(f[0]) != "FROM" {
			return "", "", false
		}
		f = f[1:]
	default:
		return "", "", false
	}
	if len(f) == 0 {
		return "", "", false
	}
	name := f[0]
	if i := strings.IndexAny(name, "(,"); i >= 0 {
		if name[i] == ',' {
			return "", "", false // several tables
		}
		name = name[:i]
	}
	if verb != "INSERT" && verb != "REPLACE" && len(f) > 1 && (f[1] == "," || strings.HasPrefix(f[1], ",") ||
		strings.EqualFold(f[1], "JOIN") || strings.EqualFold(f[1], "USING")) {
		return "", "", false
	}
	parts := splitIdent(name)
	switch len(parts) {
	case 1:
		return "", parts[0], parts[0] != ""
	case 2:
		return parts[0], parts[1], parts[0] != "" && parts[1] != ""
	}
	return "", "", false
}

// splitIdent splits `db`.`t`, db.t or t into unquoted parts.
func splitIdent(s string) []string {
	var parts []string
	for len(s) > 0 {
		var part string
		if s[0] == '`' {
			end := 1
			for end < len(s) {
				if s[end] == '`' {
					if end+1 < len(s) && s[end+1] == '`' {
						end += 2
						continue
					}
					break
				}
				end++
			}
			if end >= len(s) {
				return nil
			}
			part = strings.ReplaceAll(s[1:end], "``", "`")
			s = s[end+1:]
		} else {
			end := strings.IndexByte(s, '.')
			if end < 0 {
				end = len(s)
			}
			part, s = s[:end], s[end:]
		}
		parts = append(parts, part)
		if len(s) > 0 {
			if s[0] != '.' {
				return nil
			}
			s = s[1:]
		}
	}
	return parts
}

// isJSONType reports a column whose binlog values are MySQL's binary JSON.
func isJSONType(tp byte) bool { return tp == mysql.MYSQL_TYPE_JSON }
