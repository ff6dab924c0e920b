package cdc

import (
	"strings"
	"time"
)

// DDL is a schema change a source met. It carries no row images; sources
// report it rather than skip it, so a statement the sinks cannot mirror —
// a TRUNCATE or DROP TABLE leaves their rows in place — is visible.
type DDL struct {
	// DB and Table name what the statement changes; Table is empty for a
	// database-wide statement and may list several tables separated by
	// commas (a multi-table DROP or RENAME); a table of another schema
	// than DB is written db.table.
	DB, Table string
	// Type is the producer's name for the statement kind (canal: CREATE,
	// ALTER, ERASE, TRUNCATE, RENAME, CINDEX, DINDEX, QUERY; Maxwell:
	// table-create, table-drop, database-drop...; Debezium and the binlog:
	// the statement's verb).
	Type   string
	SQL    string
	Commit time.Time
	Pos    Position
}

// Tables returns the {db, table} pairs Table names.
func (d DDL) Tables() [][2]string {
	var out [][2]string
	for _, t := range strings.Split(d.Table, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		db := d.DB
		if i := strings.IndexByte(t, '.'); i > 0 {
			db, t = t[:i], t[i+1:]
		}
		out = append(out, [2]string{db, t})
	}
	return out
}

// Clears reports whether the statement removes every row of its tables
// (TRUNCATE, DROP TABLE, DROP DATABASE; canal's ERASE, Maxwell's
// table-drop and database-drop): rows the sinks still hold and MySQL no
// longer has, which no row event will remove.
func (d DDL) Clears() bool {
	switch strings.ToUpper(d.Type) {
	case "TRUNCATE", "ERASE", "TABLE-DROP", "DATABASE-DROP":
		return true
	}
	return StatementClears(d.SQL)
}

// StatementClears reports whether the SQL statement q is a TRUNCATE, a
// DROP TABLE or a DROP DATABASE/SCHEMA (leading comments and spaces
// ignored; a DROP TEMPORARY TABLE is not logged as a row change either
// way and does not count).
func StatementClears(q string) bool {
	f := strings.Fields(StripComments(q))
	if len(f) < 2 {
		return len(f) == 1 && strings.EqualFold(f[0], "TRUNCATE")
	}
	switch strings.ToUpper(f[0]) {
	case "TRUNCATE":
		return true
	case "DROP":
		switch strings.ToUpper(f[1]) {
		case "TABLE", "TABLES", "DATABASE", "SCHEMA":
			return true
		}
	}
	return false
}

// StripComments drops the /* ... */, -- and # comments and the spaces
// before the first word of q.
func StripComments(q string) string {
	for {
		q = strings.TrimLeft(q, " \t\r\n")
		switch {
		case strings.HasPrefix(q, "/*"):
			i := strings.Index(q[2:], "*/")
			if i < 0 {
				return ""
			}
			q = q[i+4:]
		case strings.HasPrefix(q, "--"), strings.HasPrefix(q, "#"):
			i := strings.IndexByte(q, '\n')
			if i < 0 {
				return ""
			}
			q = q[i+1:]
		default:
			return q
		}
	}
}
