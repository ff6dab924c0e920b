package refetch

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

// minReload is the least time between two schema reloads of one table
// triggered by events that name a column the cache does not know, so a
// source that keeps sending a dropped column does not reload on every call.
const minReload = time.Second

type tableKey struct{ db, table string }

// tableInfo is a table's definition from information_schema and the
// select list that reads its rows as text.
type tableInfo struct {
	cols   []cdc.Column // ordinal order; shared read-only by output events
	byName map[string]int
	// sel is the SELECT list: every column backquoted, BIT as `c`+0 (the
	// text protocol sends BIT as raw bytes) and FLOAT widened to DOUBLE
	// (MariaDB prints FLOAT with 6 significant digits; the widened double
	// parses back to the exact float32 the binlog carries).
	sel    string
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
	rows, err := r.db.QueryContext(ctx, `SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, k.db, k.table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s.%s: %w", k.db, k.table, err)
	}
	ti := &tableInfo{byName: map[string]int{}, loaded: time.Now()}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return nil, fmt.Errorf("columns of %s.%s: %w", k.db, k.table, err)
		}
		ti.byName[name] = len(ti.cols)
		ti.cols = append(ti.cols, cdc.ParseColumnType(name, typ))
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, fmt.Errorf("columns of %s.%s: %w", k.db, k.table, err)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("columns of %s.%s: %w", k.db, k.table, err)
	}
	if len(ti.cols) == 0 {
		return nil, nil
	}
	maria, err := r.isMariaDB(ctx)
	if err != nil {
		return nil, err
	}
	if maria {
		if err := markMariaDBJSON(ctx, r.db, k, ti); err != nil {
			return nil, err
		}
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

// isMariaDB asks the server once which flavor it is.
func (r *Refetcher) isMariaDB(ctx context.Context) (bool, error) {
	r.mu.Lock()
	known, maria := r.flavorKnown, r.mariaDB
	r.mu.Unlock()
	if known {
		return maria, nil
	}
	var v string
	if err := r.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return false, fmt.Errorf("server version: %w", err)
	}
	maria = strings.Contains(strings.ToLower(v), "mariadb")
	r.mu.Lock()
	r.flavorKnown, r.mariaDB = true, maria
	r.mu.Unlock()
	return maria, nil
}

// markMariaDBJSON types as JSON the LONGTEXT columns guarded by a
// CHECK (json_valid(`col`)) constraint: that constraint is MariaDB's only
// trace of the JSON type, and the binlog source reads it the same way, so
// both paths give cdc.JSON.
func markMariaDBJSON(ctx context.Context, db *sql.DB, k tableKey, ti *tableInfo) error {
	rows, err := db.QueryContext(ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? AND CHECK_CLAUSE LIKE 'json_valid(%'`, k.db, k.table)
	if err != nil {
		return fmt.Errorf("check constraints of %s.%s: %w", k.db, k.table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var clause string
		if err := rows.Scan(&clause); err != nil {
			return fmt.Errorf("check constraints of %s.%s: %w", k.db, k.table, err)
		}
		name, ok := jsonValidColumn(clause)
		if !ok {
			continue
		}
		if i, ok := ti.byName[name]; ok && ti.cols[i].Kind == cdc.KindString {
			ti.cols[i].Kind = cdc.KindJSON
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check constraints of %s.%s: %w", k.db, k.table, err)
	}
	return nil
}

// jsonValidColumn returns col from a check clause "json_valid(`col`)".
func jsonValidColumn(clause string) (string, bool) {
	s := strings.TrimSpace(clause)
	const fn = "json_valid("
	if len(s) <= len(fn) || !strings.EqualFold(s[:len(fn)], fn) || s[len(s)-1] != ')' {
		return "", false
	}
	s = strings.TrimSpace(s[len(fn) : len(s)-1])
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		return strings.ReplaceAll(s[1:len(s)-1], "``", "`"), true
	}
	if s == "" || strings.ContainsAny(s, " (),`'\"") {
		return "", false
	}
	return s, true
}
