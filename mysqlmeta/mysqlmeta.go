// Package mysqlmeta is the one home of MySQL metadata: connection defaults
// (DSN), table definitions from information_schema (columns, types,
// primary key, MariaDB's JSON columns), table listing outside the system
// schemas, the include/exclude table filter, and the server settings a
// binlog tap needs. The binlog source, refetch, snapshot, verify and the
// command's checks all read MySQL's catalog through it, so they agree.
package mysqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/cdc"
)

// Connection defaults: a server address and user left empty in the config
// mean these.
const (
	DefaultAddr = "127.0.0.1:3306"
	DefaultUser = "root"
)

// DSN returns a go-sql-driver config for a server given as host:port,
// user and password, the way the binlog source's config names it: TCP,
// DefaultAddr and DefaultUser where empty. Callers add their own
// parameters (timeouts, time_zone) before FormatDSN.
func DSN(addr, user, password string) *mysql.Config {
	c := mysql.NewConfig()
	c.Net, c.Addr, c.User, c.Passwd = "tcp", addr, user, password
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.User == "" {
		c.User = DefaultUser
	}
	return c
}

// Querier is what the catalog reads with; *sql.DB, *sql.Conn and *sql.Tx
// are all one.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ErrNoTable means information_schema shows no such table: it does not
// exist, or the user may not see it.
var ErrNoTable = errors.New("table not found (or no privilege to see it)")

// Catalog reads table definitions through one connection pool. It asks
// the server once whether it is MariaDB (whose JSON type only shows as a
// CHECK constraint). It is safe for concurrent use and caches nothing but
// the flavor: callers keep their own table caches, refreshed on their own
// terms.
type Catalog struct {
	q Querier

	mu    sync.Mutex
	known bool
	maria bool
}

// NewCatalog returns a catalog reading through q.
func NewCatalog(q Querier) *Catalog { return &Catalog{q: q} }

// MariaDB reports whether the server is MariaDB, asking it on the first call.
func (c *Catalog) MariaDB(ctx context.Context) (bool, error) {
	c.mu.Lock()
	known, maria := c.known, c.maria
	c.mu.Unlock()
	if known {
		return maria, nil
	}
	var v string
	if err := c.q.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return false, fmt.Errorf("server version: %w", err)
	}
	maria = strings.Contains(strings.ToLower(v), "mariadb")
	c.mu.Lock()
	c.known, c.maria = true, maria
	c.mu.Unlock()
	return maria, nil
}

// Table reads db.table's columns and primary key from information_schema:
// columns typed by cdc.ParseColumnType from COLUMN_TYPE (MariaDB JSON
// columns as cdc.KindJSON), the PRIMARY index as the key (a UNIQUE NOT
// NULL index is not taken for one: the config's pk: says which columns to
// key on). A table it does not show is an error wrapping ErrNoTable.
func (c *Catalog) Table(ctx context.Context, db, table string) (*cdc.TableDef, error) {
	t, err := c.columns(ctx, db, table)
	if err != nil {
		return nil, err
	}
	if t.PK, err = c.primaryKey(ctx, db, table); err != nil {
		return nil, err
	}
	maria, err := c.MariaDB(ctx)
	if err != nil {
		return nil, err
	}
	if maria {
		if err := c.markMariaDBJSON(ctx, db, table, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (c *Catalog) columns(ctx context.Context, db, table string) (*cdc.TableDef, error) {
	rows, err := c.q.QueryContext(ctx, `SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s.%s: %w", db, table, err)
	}
	defer rows.Close()
	var cols []cdc.Column
	for rows.Next() {
		var name, typ string
		var charset sql.NullString
		if err := rows.Scan(&name, &typ, &charset); err != nil {
			return nil, fmt.Errorf("columns of %s.%s: %w", db, table, err)
		}
		col := cdc.ParseColumnType(name, typ)
		if col.Kind == cdc.KindString && !utf8Charset(charset.String) {
			col.Charset = strings.ToLower(charset.String)
		}
		cols = append(cols, col)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("columns of %s.%s: %w", db, table, err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("%s.%s: %w", db, table, ErrNoTable)
	}
	return cdc.NewTableDef(cols, nil), nil
}

func (c *Catalog) primaryKey(ctx context.Context, db, table string) ([]string, error) {
	rows, err := c.q.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, db, table)
	if err != nil {
		return nil, fmt.Errorf("primary key of %s.%s: %w", db, table, err)
	}
	defer rows.Close()
	var pk []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("primary key of %s.%s: %w", db, table, err)
		}
		pk = append(pk, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("primary key of %s.%s: %w", db, table, err)
	}
	return pk, nil
}

// markMariaDBJSON types as JSON the text columns guarded by a
// CHECK (json_valid(`col`)) constraint, column-level (what MariaDB's JSON
// type creates) or table-level (the same thing written by hand): MariaDB's
// JSON is LONGTEXT, and that constraint is the type's only trace. MariaDB
// prints the clause with the column's own spelling, backquoted.
func (c *Catalog) markMariaDBJSON(ctx context.Context, db, table string, t *cdc.TableDef) error {
	rows, err := c.q.QueryContext(ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? AND CHECK_CLAUSE LIKE 'json\_valid(%'`, db, table)
	if err != nil {
		return fmt.Errorf("check constraints of %s.%s: %w", db, table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var clause string
		if err := rows.Scan(&clause); err != nil {
			return fmt.Errorf("check constraints of %s.%s: %w", db, table, err)
		}
		name, ok := jsonValidColumn(clause)
		if !ok {
			continue
		}
		if i, ok := t.Index(name); ok && t.Columns[i].Kind == cdc.KindString {
			t.Columns[i].Kind = cdc.KindJSON
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check constraints of %s.%s: %w", db, table, err)
	}
	return nil
}

// jsonValidColumn returns col from a check clause "json_valid(`col`)" (or
// json_valid(col)); any other clause, even one that contains json_valid
// among other conditions, gives false.
func jsonValidColumn(clause string) (string, bool) {
	s := strings.TrimSpace(clause)
	const fn = "json_valid("
	if len(s) <= len(fn) || !strings.EqualFold(s[:len(fn)], fn) || s[len(s)-1] != ')' {
		return "", false
	}
	s = strings.TrimSpace(s[len(fn) : len(s)-1])
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		inner := s[1 : len(s)-1]
		if strings.Contains(strings.ReplaceAll(inner, "``", ""), "`") {
			return "", false // `a` and `b`: not one identifier
		}
		return strings.ReplaceAll(inner, "``", "`"), true
	}
	if s == "" || strings.ContainsAny(s, " (),`'\"") {
		return "", false
	}
	return s, true
}

// utf8Charset reports a character set whose text is UTF-8 as it is
// (ascii is a subset; binary columns are bytes, not text).
func utf8Charset(cs string) bool {
	switch strings.ToLower(cs) {
	case "", "utf8mb4", "utf8mb3", "utf8", "ascii", "binary":
		return true
	}
	return false
}
