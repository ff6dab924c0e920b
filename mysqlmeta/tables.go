package mysqlmeta

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/rowsync/rowsync/cdc"
)

// systemSchemas hold the server's own tables: never listed, and never
// streamed unless an include pattern names them.
var systemSchemas = []string{"information_schema", "mysql", "performance_schema", "sys"}

// IsSystemSchema reports whether db is one of the server's own schemas
// (mysql, sys, performance_schema, information_schema), in any case.
func IsSystemSchema(db string) bool {
	return slices.Contains(systemSchemas, strings.ToLower(db))
}

// Tables returns the base tables (not views) outside the system schemas
// for which match returns true (every one if match is nil), as
// {db, table} ordered by name.
func (c *Catalog) Tables(ctx context.Context, match func(db, table string) bool) ([][2]string, error) {
	rows, err := c.q.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var d, t string
		if err := rows.Scan(&d, &t); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		if IsSystemSchema(d) || match != nil && !match(d, t) {
			continue
		}
		out = append(out, [2]string{d, t})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return out, nil
}

// Filter is a source's include/exclude choice of tables, as regexes on
// "db.table" anchored at both ends (cdc.CompileMatch). The zero Filter and
// a nil *Filter take every table outside the system schemas.
type Filter struct {
	include, exclude []*regexp.Regexp
}

// NewFilter compiles include and exclude. Every bad pattern is reported,
// each named by its key ("include[2]: ...").
func NewFilter(include, exclude []string) (*Filter, error) {
	f := &Filter{}
	var errs []error
	compile := func(key string, pats []string) []*regexp.Regexp {
		var out []*regexp.Regexp
		for i, p := range pats {
			re, err := cdc.CompileMatch(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", key, i, err))
				continue
			}
			out = append(out, re)
		}
		return out
	}
	f.include, f.exclude = compile("include", include), compile("exclude", exclude)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, nil
}

// Match reports whether db.table is taken: with no include patterns every
// table outside the system schemas, else the tables an include pattern
// matches (a system table too, if one names it); minus the tables an
// exclude pattern matches.
func (f *Filter) Match(db, table string) bool {
	if f == nil {
		return !IsSystemSchema(db)
	}
	name := db + "." + table
	ok := len(f.include) == 0 && !IsSystemSchema(db)
	for _, re := range f.include {
		if re.MatchString(name) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, re := range f.exclude {
		if re.MatchString(name) {
			return false
		}
	}
	return true
}
