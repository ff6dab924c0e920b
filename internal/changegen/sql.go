package changegen

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rowsync/rowsync/cdc"
)

// quoteIdent quotes a MySQL identifier.
func quoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// CreateSQL is the CREATE TABLE statement of t (qualified by its
// database), with its column types, NULL-ability and primary key, in
// utf8mb4 with a binary collation so that every generated key is
// distinct.
func (t *Table) CreateSQL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s.%s (", quoteIdent(t.DB), quoteIdent(t.Name))
	for _, d := range t.Defs {
		null := " NOT NULL"
		if d.Nullable {
			null = " NULL"
		}
		fmt.Fprintf(&b, "%s %s%s, ", quoteIdent(d.Name), d.Type, null)
	}
	pk := make([]string, len(t.PK))
	for i, c := range t.PK {
		pk[i] = quoteIdent(c)
	}
	fmt.Fprintf(&b, "PRIMARY KEY (%s)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin", strings.Join(pk, ", "))
	return b.String()
}

// sqlArg is the argument that stores v in a column of col: the MySQL text
// form (cdc.FormatText), bytes for BLOBs, nil for NULL.
func sqlArg(col *cdc.Column, v cdc.Value) any {
	if b, ok := v.([]byte); ok {
		return b
	}
	s, ok := cdc.FormatText(col, v)
	if !ok {
		return nil
	}
	return s
}

// LoadFinal creates the set's tables in db (whose database, Config.DB,
// must exist and must not hold them yet) and inserts the final rows, so
// that MySQL holds what the change sequence ends in.
func (s *Set) LoadFinal(ctx context.Context, db *sql.DB) error {
	const rowsPerInsert = 200
	for _, t := range s.Tables {
		if _, err := db.ExecContext(ctx, t.CreateSQL()); err != nil {
			return fmt.Errorf("create %s.%s: %w", t.DB, t.Name, err)
		}
		rows := s.Final[t]
		keys := slices.Sorted(maps.Keys(rows))
		names := make([]string, len(t.cols))
		for i := range t.cols {
			names[i] = quoteIdent(t.cols[i].Name)
		}
		head := fmt.Sprintf("INSERT INTO %s.%s (%s) VALUES ", quoteIdent(t.DB), quoteIdent(t.Name), strings.Join(names, ", "))
		tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.cols)), ", ") + ")"
		for len(keys) > 0 {
			chunk := keys[:min(len(keys), rowsPerInsert)]
			keys = keys[len(chunk):]
			tuples := make([]string, len(chunk))
			args := make([]any, 0, len(chunk)*len(t.cols))
			for i, k := range chunk {
				tuples[i] = tuple
				for j := range t.cols {
					args = append(args, sqlArg(&t.cols[j], rows[k].Get(t.cols[j].Name)))
				}
			}
			if _, err := db.ExecContext(ctx, head+strings.Join(tuples, ", "), args...); err != nil {
				return fmt.Errorf("insert into %s.%s: %w", t.DB, t.Name, err)
			}
		}
	}
	return nil
}

// NumbersCTE is a WITH clause whose table nums(n) holds the integers
// 1..rows, built on the server from a ten-row digits table joined with
// itself once per decimal digit, so a table of a million rows is filled by
// one INSERT … SELECT without sending the rows:
//
//	INSERT INTO t NumbersCTE(1000) SELECT n, CONCAT('row ', n) FROM nums WHERE n <= 1000
//
// nums may hold more than rows numbers (up to the next power of ten):
// filter with n <= rows.
func NumbersCTE(rows int) string {
	terms, joins := []string{"1"}, []string(nil)
	for i, p := 0, 1; i == 0 || p < rows; i, p = i+1, p*10 {
		terms = append(terms, fmt.Sprintf("d%d.x * %d", i, p))
		joins = append(joins, fmt.Sprintf("d AS d%d", i))
	}
	return "WITH RECURSIVE d(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM d WHERE x < 9), nums(n) AS (SELECT " +
		strings.Join(terms, " + ") + " FROM " + strings.Join(joins, " CROSS JOIN ") + ") "
}
