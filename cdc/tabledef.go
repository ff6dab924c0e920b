package cdc

import (
	"context"
	"strconv"
	"strings"
)

// TableDef is a table's definition: its columns in ordinal order and its
// primary key. Build it with NewTableDef; it is read-only afterwards and
// shared between goroutines.
type TableDef struct {
	// Columns in ordinal order; shared read-only (events may carry them).
	Columns []Column
	// PK is the primary key's columns in key order; nil for a table
	// without one.
	PK     []string
	byName map[string]int
	layout *Layout // nil when a name repeats
}

// NewTableDef indexes cols by name and makes the layout of the table's
// rows (Layout).
func NewTableDef(cols []Column, pk []string) *TableDef {
	t := &TableDef{Columns: cols, PK: pk, byName: make(map[string]int, len(cols))}
	for i, c := range cols {
		t.byName[c.Name] = i
	}
	t.layout, _ = NewLayout(t.Names())
	return t
}

// Layout returns the layout of the table's rows, its columns in ordinal
// order, shared by every row typed by t (BatchRows.Of, Row.SetAt); nil
// when t names a column twice, or was not made by NewTableDef: such rows
// are filled by name.
func (t *TableDef) Layout() *Layout {
	if t == nil {
		return nil
	}
	return t.layout
}

// Index returns the position of the column named name (exact match). It
// is safe on a nil or zero TableDef, which has no columns.
func (t *TableDef) Index(name string) (int, bool) {
	if t == nil {
		return 0, false
	}
	i, ok := t.byName[name]
	return i, ok
}

// Column returns the column named name, or nil.
func (t *TableDef) Column(name string) *Column {
	if i, ok := t.Index(name); ok {
		return &t.Columns[i]
	}
	return nil
}

// Names returns the column names in ordinal order.
func (t *TableDef) Names() []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

// Schemas gives the column types of tables to decoders of formats whose
// messages carry none (Debezium without schemas, Maxwell, JSON lines), so
// they type values exactly as the binlog path does. mysqlmeta.Schemas
// implements it over information_schema. Implementations are safe for
// concurrent use.
type Schemas interface {
	// Table returns db.table's definition, read the first time the table
	// is asked for and cached. refresh asks for a new read when the cached
	// one looks stale (the message names a column it lacks, or a value does
	// not parse as its type); implementations may rate-limit such reads
	// and return the cached definition meanwhile. A table the database
	// does not have gives (nil, nil). An error means the database could
	// not be asked (transient).
	Table(ctx context.Context, db, table string, refresh bool) (*TableDef, error)
	// Forget drops the cached definition of db.table, after a DDL
	// statement, so the next Table reads it again.
	Forget(db, table string)
}

// BinaryWidth returns n for a column type "binary(n)", else 0. MySQL pads
// BINARY(n) values with zero bytes to n, but the binlog (and producers that
// read it) carry them without the trailing zeros.
func BinaryWidth(typ string) int {
	if len(typ) < len("binary(") || !strings.EqualFold(typ[:len("binary(")], "binary(") {
		return 0
	}
	t := typ[len("binary("):]
	end := strings.IndexByte(t, ')')
	if end < 0 {
		return 0
	}
	n, _ := strconv.Atoi(t[:end])
	return n
}

// PadBinary pads b with zero bytes to the width of a BINARY(n) column, as
// MySQL stores it; other columns' values are returned as they are.
func PadBinary(col *Column, b []byte) []byte {
	if n := BinaryWidth(col.Type); len(b) < n {
		return append(b, make([]byte, n-len(b))...)
	}
	return b
}
