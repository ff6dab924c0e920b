// Package verify compares what rowsync wrote with what MySQL holds. For a
// redis_hash table it reads every row in MySQL's own text form (the form
// the projector writes), renders the row's key, and checks that the hash
// holds exactly the row's non-NULL columns; it then scans for keys of the
// table's key pattern that no row explains (rows deleted in MySQL but not
// in Redis). `rowsync verify` and the end-to-end tests use it.
//
// It keeps the set of expected keys in memory: fine for tables of
// millions of rows, not for billions.
package verify

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/keymap"
)

// RedisTable describes one table's projection.
type RedisTable struct {
	DB, Table string
	Key       *keymap.Template
	// PK overrides the table's primary key (for keyless tables).
	PK               []string
	Include, Exclude []string
	// Ignore lists hash fields that are not columns (a version field).
	Ignore []string
}

// Mismatch is one difference.
type Mismatch struct {
	Key    string
	Kind   string // "missing", "different", "extra", "unrenderable"
	Detail string
}

// Stats summarises a comparison.
type Stats struct {
	Rows, Missing, Different, Extra int
}

// OK reports whether Redis equals MySQL.
func (s Stats) OK() bool { return s.Missing == 0 && s.Different == 0 && s.Extra == 0 }

func (s Stats) String() string {
	return fmt.Sprintf("%d rows: %d missing, %d different, %d extra keys", s.Rows, s.Missing, s.Different, s.Extra)
}

// Column is a table column as information_schema describes it.
type Column struct {
	Name, DataType string
}

// Redis compares t's rows with their hashes. report, if not nil, gets
// each mismatch. db should be a connection whose session time_zone is
// '+00:00' so TIMESTAMP text is UTC, as the sources produce it.
func Redis(ctx context.Context, db *sql.DB, rdb goredis.UniversalClient, t RedisTable, report func(Mismatch)) (Stats, error) {
	if report == nil {
		report = func(Mismatch) {}
	}
	var st Stats
	cols, pk, err := Schema(ctx, db, t.DB, t.Table)
	if err != nil {
		return st, err
	}
	if len(t.PK) > 0 {
		pk = t.PK
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = quote(c.Name)
		if c.DataType == "bit" { // the text protocol sends BIT as raw bytes
			sel[i] = quote(c.Name) + "+0"
		}
	}
	rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(sel, ",")+" FROM "+quote(t.DB)+"."+quote(t.Table))
	if err != nil {
		return st, fmt.Errorf("select %s.%s: %w", t.DB, t.Table, err)
	}
	defer rows.Close()

	expected := map[string]bool{}
	type pending struct {
		key    string
		fields map[string]string
	}
	var batch []pending
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		pipe := rdb.Pipeline()
		cmds := make([]*goredis.MapStringStringCmd, len(batch))
		for i, p := range batch {
			cmds[i] = pipe.HGetAll(ctx, p.key)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("hgetall: %w", err)
		}
		for i, p := range batch {
			got := cmds[i].Val()
			for _, f := range t.Ignore {
				delete(got, f)
			}
			switch {
			case len(got) == 0:
				st.Missing++
				report(Mismatch{Key: p.key, Kind: "missing"})
			default:
				if d := diff(p.fields, got); d != "" {
					st.Different++
					report(Mismatch{Key: p.key, Kind: "different", Detail: d})
				}
			}
		}
		batch = batch[:0]
		return nil
	}
	raw := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return st, fmt.Errorf("scan %s.%s: %w", t.DB, t.Table, err)
		}
		st.Rows++
		row := make(cdc.Row, len(cols))
		fields := make(map[string]string, len(cols))
		for i, c := range cols {
			if raw[i] == nil {
				continue
			}
			v := string(raw[i])
			row[c.Name] = v
			if keep(c.Name, t.Include, t.Exclude) {
				fields[c.Name] = v
			}
		}
		key, err := t.Key.Render(keymap.Input{DB: t.DB, Table: t.Table, PK: pk, Row: row})
		if err != nil {
			report(Mismatch{Kind: "unrenderable", Detail: err.Error()})
			st.Missing++
			continue
		}
		expected[key] = true
		batch = append(batch, pending{key, fields})
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return st, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("read %s.%s: %w", t.DB, t.Table, err)
	}
	if err := flush(); err != nil {
		return st, err
	}
	pattern := Pattern(t.Key, t.DB, t.Table)
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if !expected[k] && !strings.HasSuffix(k, ":rowsync-tomb") {
			if typ, err := rdb.Type(ctx, k).Result(); err == nil && typ != "hash" {
				continue // not one of ours
			}
			st.Extra++
			report(Mismatch{Key: k, Kind: "extra"})
		}
	}
	if err := iter.Err(); err != nil {
		return st, fmt.Errorf("scan %s: %w", pattern, err)
	}
	return st, nil
}

// Pattern turns a key template into a SCAN glob for one table: {db} and
// {table} become their names, every other placeholder "*".
func Pattern(t *keymap.Template, db, table string) string {
	s := t.String()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			b.WriteString(`\{`)
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			b.WriteString(`\}`)
			i++
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			name := strings.TrimSpace(strings.Split(s[i+1:i+end], "|")[0])
			switch name {
			case "db":
				b.WriteString(globEscape(db))
			case "table":
				b.WriteString(globEscape(table))
			default:
				b.WriteByte('*')
			}
			i += end
		default:
			b.WriteString(globEscape(string(c)))
		}
	}
	return b.String()
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`, `\`, `\\`)
	return r.Replace(s)
}

func keep(col string, include, exclude []string) bool {
	if len(include) > 0 {
		return slices.Contains(include, col)
	}
	return !slices.Contains(exclude, col)
}

func diff(want, got map[string]string) string {
	var d []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			d = append(d, fmt.Sprintf("%s: missing (want %q)", k, w))
		} else if g != w {
			d = append(d, fmt.Sprintf("%s: %q (want %q)", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s: %q (want absent)", k, g))
		}
	}
	slices.Sort(d)
	return strings.Join(d, "; ")
}

// Schema returns a table's columns in order and its primary key in key
// order (empty for a table without one).
func Schema(ctx context.Context, db *sql.DB, schemaName, table string) ([]Column, []string, error) {
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schemaName, table)
	if err != nil {
		return nil, nil, fmt.Errorf("columns of %s.%s: %w", schemaName, table, err)
	}
	var cols []Column
	for rows.Next() {
		var c Column
		if err := rows.Scan(&c.Name, &c.DataType); err != nil {
			rows.Close()
			return nil, nil, err
		}
		cols = append(cols, c)
	}
	rows.Close()
	if len(cols) == 0 {
		return nil, nil, fmt.Errorf("table %s.%s not found", schemaName, table)
	}
	rows, err = db.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, schemaName, table)
	if err != nil {
		return nil, nil, fmt.Errorf("primary key of %s.%s: %w", schemaName, table, err)
	}
	defer rows.Close()
	var pk []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, nil, err
		}
		pk = append(pk, c)
	}
	return cols, pk, rows.Err()
}

// Tables lists the tables whose "db.table" name match re, for rules
// written as regexes.
func Tables(ctx context.Context, db *sql.DB, match func(db, table string) bool) ([][2]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ('mysql','sys','performance_schema','information_schema')
		ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var d, t string
		if err := rows.Scan(&d, &t); err != nil {
			return nil, err
		}
		if match(d, t) {
			out = append(out, [2]string{d, t})
		}
	}
	return out, rows.Err()
}

func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }
