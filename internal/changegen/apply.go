package changegen

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/rowsync/rowsync/cdc"
)

// ApplyTxChanges is how many changes ApplySQL commits per transaction.
const ApplyTxChanges = 50

// ApplySQL executes the set's changes in order as INSERT, UPDATE and
// DELETE statements against db (the set's tables must exist, as
// CreateSQL makes them, and start empty), ApplyTxChanges per transaction,
// so that MySQL ends in Final and its binlog holds the changes.
func (s *Set) ApplySQL(ctx context.Context, db *sql.DB) error {
	return s.ApplySQLRange(ctx, db, 0, len(s.Changes))
}

// ApplySQLRange executes Changes[from:to] as ApplySQL does; a test can
// stop between two ranges (to kill a consumer) and go on.
func (s *Set) ApplySQLRange(ctx context.Context, db *sql.DB, from, to int) error {
	if from < 0 || to > len(s.Changes) || from > to {
		return fmt.Errorf("changegen: range [%d, %d) outside the %d changes", from, to, len(s.Changes))
	}
	for start := from; start < to; start += ApplyTxChanges {
		end := min(start+ApplyTxChanges, to)
		if err := s.applyTx(ctx, db, start, end); err != nil {
			return err
		}
	}
	return nil
}

func (s *Set) applyTx(ctx context.Context, db *sql.DB, from, to int) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("changegen: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	for i := from; i < to; i++ {
		c := &s.Changes[i]
		q, args := c.SQL()
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("changegen: change %d (%s %s.%s): %w", c.Seq, c.Op, c.Table.DB, c.Table.Name, err)
		}
		// An update that changes nothing affects no row (and logs none);
		// an insert or delete that misses its row is a generator bug.
		if c.Op != cdc.Update {
			if n, err := res.RowsAffected(); err == nil && n != 1 {
				return fmt.Errorf("changegen: change %d (%s %s.%s) affected %d rows", c.Seq, c.Op, c.Table.DB, c.Table.Name, n)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("changegen: commit: %w", err)
	}
	return nil
}

// SQL returns the statement that makes c in MySQL and its arguments: an
// INSERT of every column, an UPDATE setting every column (the key too, so
// a key change moves the row) where the key is the before image's, or a
// DELETE by key.
func (c *Change) SQL() (string, []any) {
	t := c.Table
	name := quoteIdent(t.DB) + "." + quoteIdent(t.Name)
	var b strings.Builder
	var args []any
	where := func(row *cdc.Row) {
		b.WriteString(" WHERE ")
		for i, k := range t.PK {
			if i > 0 {
				b.WriteString(" AND ")
			}
			b.WriteString(quoteIdent(k) + " = ?")
			args = append(args, applyArg(t.Column(k), row.Get(k)))
		}
	}
	switch c.Op {
	case cdc.Insert:
		b.WriteString("INSERT INTO " + name + " (")
		for i := range t.cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteIdent(t.cols[i].Name))
			args = append(args, applyArg(&t.cols[i], c.After.Get(t.cols[i].Name)))
		}
		b.WriteString(") VALUES (" + strings.TrimSuffix(strings.Repeat("?, ", len(t.cols)), ", ") + ")")
	case cdc.Update:
		b.WriteString("UPDATE " + name + " SET ")
		for i := range t.cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteIdent(t.cols[i].Name) + " = ?")
			args = append(args, applyArg(&t.cols[i], c.After.Get(t.cols[i].Name)))
		}
		where(c.Before)
	case cdc.Delete:
		b.WriteString("DELETE FROM " + name)
		where(c.Before)
	}
	return b.String(), args
}

// applyArg is the argument that stores v in col: numbers as numbers (a
// BIGINT UNSIGNED compared with a string is compared as a double, which
// cannot tell neighbouring keys near 2^64 apart), bytes as bytes, the
// rest in MySQL text form, NULL as nil.
func applyArg(col *cdc.Column, v cdc.Value) any {
	switch x := v.(type) {
	case int64, uint64, float64, []byte:
		return x
	}
	return sqlArg(col, v)
}
