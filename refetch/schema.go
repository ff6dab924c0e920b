package refetch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/mysqlmeta"
)

// minReload is the least time between two schema reloads of one table
// triggered by events that name a column the cache does not know, so a
// source that keeps sending a dropped column does not reload on every call.
const minReload = time.Second

type tableKey struct{ db, table string }

// tableInfo is a table's definition from information_schema and the
// select list that reads its rows as text.
type tableInfo struct {
	*cdc.TableDef
	cols []cdc.Column // TableDef.Columns: ordinal order; shared read-only by output events
	// sel is the SELECT list: every column backquoted, BIT as `c`+0 (the
	// text protocol sends BIT as raw bytes) and FLOAT widened to DOUBLE
	// (MariaDB prints FLOAT with 6 significant digits; the widened double
	// parses back to the exact float32 the binlog carries).
	sel string
	// layout is cols' names, shared by every row read with sel: a row is
	// filled by index (cdc.Row.SetAt) instead of hashing or scanning for
	// each column's name, and a sink resolves a column once per layout.
	layout *cdc.Layout
	loaded time.Time
}

// quote backquotes an identifier, doubling any backquote inside.
func quote(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// table returns the cached definition of db.table, loading it on a miss.
// A table information_schema does not show gives (nil, nil).
func (r *Refetcher) table(ctx context.Context, k tableKey) (*tableInfo, error) {
	r.mu.Lock()
	ti := r.tables[k]
	r.mu.Unlock()
	if ti != nil {
		return ti, nil
	}
	return r.reload(ctx, k)
}

// reload reads db.table's definition again and caches it.
func (r *Refetcher) reload(ctx context.Context, k tableKey) (*tableInfo, error) {
	ti, err := r.loadTable(ctx, k)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ti == nil {
		delete(r.tables, k)
		return nil, nil
	}
	r.tables[k] = ti
	return ti, nil
}

// Forget drops the cached definition of db.table, so the next Refetch reads
// it again. Call it after DDL on the table (a source that sees DDL can);
// without it the cache still refreshes when a query names a dropped column
// or an event names a column the cache does not know.
func (r *Refetcher) Forget(db, table string) {
	r.mu.Lock()
	delete(r.tables, tableKey{db, table})
	r.mu.Unlock()
}

func (r *Refetcher) loadTable(ctx context.Context, k tableKey) (*tableInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	t, err := r.cat.Table(ctx, k.db, k.table)
	if errors.Is(err, mysqlmeta.ErrNoTable) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ti, err := newTableInfo(t)
	if err != nil {
		return nil, fmt.Errorf("table %s.%s: %w", k.db, k.table, err)
	}
	return ti, nil
}

// newTableInfo returns the tableInfo of t: its select list and its rows'
// layout.
func newTableInfo(t *cdc.TableDef) (*tableInfo, error) {
	ti := &tableInfo{TableDef: t, cols: t.Columns, loaded: time.Now()}
	names := make([]string, len(ti.cols))
	for i := range ti.cols {
		names[i] = ti.cols[i].Name
	}
	var err error
	if ti.layout, err = cdc.NewLayout(names); err != nil {
		return nil, err
	}
	var sel strings.Builder
	for i, c := range ti.cols {
		if i > 0 {
			sel.WriteByte(',')
		}
		switch c.Kind {
		case cdc.KindBit:
			sel.WriteString(quote(c.Name) + "+0")
		case cdc.KindFloat:
			sel.WriteString(quote(c.Name) + "+0e0")
		default:
			sel.WriteString(quote(c.Name))
		}
	}
	ti.sel = sel.String()
	return ti, nil
}
