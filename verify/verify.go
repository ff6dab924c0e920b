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
	"github.com/rowsync/rowsync/mysqlmeta"
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

// Redis compares t's rows with their hashes. report, if not nil, gets
// each mismatch. db should be a connection whose session time_zone is
// '+00:00' so TIMESTAMP text is UTC, as the sources produce it.
func Redis(ctx context.Context, db *sql.DB, rdb goredis.UniversalClient, t RedisTable, report func(Mismatch)) (Stats, error) {
	if report == nil {
		report = func(Mismatch) {}
	}
	var st Stats
	def, err := mysqlmeta.NewCatalog(db).Table(ctx, t.DB, t.Table)
	if err != nil {
		return st, err
	}
	cols, pk := def.Columns, def.PK
	if len(t.PK) > 0 {
		pk = t.PK
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = quote(c.Name)
		if c.Kind == cdc.KindBit { // the text protocol sends BIT as raw bytes
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

func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }
