package config

import (
	"slices"
	"strings"

	"github.com/rowsync/rowsync/cdc"
)

// Router is the one table router. For a table "db.table" it finds the
// first tables[] entry whose match covers the name; that entry, and only
// that entry, decides everything about the table: which sinks get its
// changes, its key columns, whether it is refetched, what snapshot copies,
// what verify compares and what the schema check reads. A later entry
// that also matches is never consulted, not even for a sink the first
// entry does not name:
//
//	tables:
//	  - match: shop\.cache_only       # invalidate only
//	    invalidate: {keys: ["page:{id}"]}
//	  - match: shop\..*               # every other shop table
//	    redis_hash: {}
//
// gives shop.cache_only no hash, under run and snapshot alike.
//
// Answers are cached; a Router is safe for concurrent use.
type Router struct {
	tables []Table
	lookup *cdc.Tables[int]
}

// Router returns the table router of c. Call it after Validate (Parse and
// Load do): entries whose match does not compile are left out.
func (c *Config) Router() *Router {
	var rules []cdc.TableRule[int]
	for i, t := range c.Tables {
		if re, err := cdc.CompileMatch(t.Match); err == nil { // Validate reported bad ones
			rules = append(rules, cdc.TableRule[int]{Match: re, PK: t.PK, Config: i})
		}
	}
	return &Router{tables: c.Tables, lookup: cdc.NewTables(rules)}
}

// Entry returns the index into tables[] of the entry that decides
// db.table, and the entry; -1 and nil when none matches.
func (r *Router) Entry(db, table string) (int, *Table) {
	rule := r.lookup.Lookup(db, table)
	if rule == nil {
		return -1, nil
	}
	return rule.Config, &r.tables[rule.Config]
}

// MayRouteDB reports whether some tables[] entry could match a table of
// database db, judged by the literal text each match pattern starts with
// (`shop\..*` can only match tables of shop; a pattern that starts with a
// class or group could match any). For statements that name a database
// and no table (DROP DATABASE).
func (r *Router) MayRouteDB(db string) bool {
	for _, rule := range r.lookup.Rules() {
		prefix, _ := rule.Match.LiteralPrefix()
		prefix = strings.TrimPrefix(prefix, "^")
		name := db + "."
		if strings.HasPrefix(name, prefix) || strings.HasPrefix(prefix, name) {
			return true
		}
	}
	return false
}

// KeyColumns returns the pk: of the entry deciding db.table, or nil.
func (r *Router) KeyColumns(db, table string) []string {
	if _, t := r.Entry(db, table); t != nil {
		return t.PK
	}
	return nil
}

// Refetch reports whether the entry deciding db.table has refetch: true.
func (r *Router) Refetch(db, table string) bool {
	_, t := r.Entry(db, table)
	return t != nil && t.Refetch
}

// ColumnSelector is implemented by a sink's table rule that writes only
// some of a row's columns (redis_hash and mongo include/exclude).
type ColumnSelector interface {
	// SelectedColumns returns the columns the rule keeps (include; empty:
	// all) and those it leaves out (exclude).
	SelectedColumns() (include, exclude []string)
}

// HiddenColumns returns the columns of db.table that a sink of its entry
// leaves out (a ColumnSelector's exclude, or not in its include), for the
// dead letter to leave out too; nil when the entry hides none.
func (r *Router) HiddenColumns(db, table string) func(col string) bool {
	_, t := r.Entry(db, table)
	if t == nil {
		return nil
	}
	type sel struct{ include, exclude []string }
	var sels []sel
	for _, key := range sortedKeys(t.Sinks) {
		if cs, ok := t.Sinks[key].(ColumnSelector); ok {
			if inc, exc := cs.SelectedColumns(); len(inc) > 0 || len(exc) > 0 {
				sels = append(sels, sel{inc, exc})
			}
		}
	}
	if len(sels) == 0 {
		return nil
	}
	return func(col string) bool {
		for _, s := range sels {
			if slices.Contains(s.exclude, col) || len(s.include) > 0 && !slices.Contains(s.include, col) {
				return true
			}
		}
		return false
	}
}

// Routes reports whether changes of db.table go to the sink with the
// table-rule key sink: the deciding entry has that sink's block.
func (r *Router) Routes(db, table, sink string) bool {
	_, t := r.Entry(db, table)
	if t == nil {
		return false
	}
	_, ok := t.Sinks[sink]
	return ok
}

// Uses reports whether any entry has the sink's block.
func (r *Router) Uses(sink string) bool {
	for _, t := range r.tables {
		if _, ok := t.Sinks[sink]; ok {
			return true
		}
	}
	return false
}

// Rules returns, in tables[] order, the entries that have the block of the
// sink with the table-rule key sink, as that sink's rules (T is the type
// its Rule codec decodes). A sink's own first match over these agrees with
// the router for every table the router sends it (no earlier entry matches
// such a table), so pair the sink with Routes.
func Rules[T any](r *Router, sink string) []cdc.TableRule[T] {
	var out []cdc.TableRule[T]
	for _, rule := range r.lookup.Rules() {
		t := r.tables[rule.Config]
		if c, ok := t.Sinks[sink].(T); ok {
			out = append(out, cdc.TableRule[T]{Match: rule.Match, PK: t.PK, Config: c})
		}
	}
	return out
}
