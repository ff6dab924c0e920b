package backfill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

// OwnerTimeout is how old the newest beat of a pipeline's owner may be
// before `rowsync backfill` takes the pipeline as not running: several
// of the owner's beats (it beats every few seconds) must have been missed.
const OwnerTimeout = 30 * time.Second

// OwnerRunning reports whether a beat by owner at `at` shows a running
// owner at now.
func OwnerRunning(owner string, at, now time.Time) bool {
	return owner != "" && now.Sub(at) < OwnerTimeout
}

// Catalog is what Resolve reads of MySQL (a *mysqlmeta.Catalog).
type Catalog interface {
	// Tables returns the base tables outside the system schemas that
	// match accepts, as {db, table} ordered by name.
	Tables(ctx context.Context, match func(db, table string) bool) ([][2]string, error)
	// Table returns db.table's columns and primary key.
	Table(ctx context.Context, db, table string) (*cdc.TableDef, error)
}

// SelectionError is a command line whose table names select something a
// backfill cannot take: one problem per name or table, each naming it.
type SelectionError struct {
	Problems []string
}

func (e *SelectionError) Error() string { return strings.Join(e.Problems, "\n") }

// Resolve returns the tables that names select, ordered by name, each
// once. A name is an exact "db.table" of a base table, or else a regex
// over "db.table" anchored at both ends (cdc.CompileMatch) that selects
// the matching tables which routed accepts (the tables the pipeline
// streams into a sink). A name that is a bad regex, matches no table or
// no routed one, or selects a table without a primary key (a backfill
// reads in primary-key order) makes a *SelectionError naming every such
// problem; other errors are MySQL's.
func Resolve(ctx context.Context, cat Catalog, names []string, routed func(db, table string) bool) ([][2]string, error) {
	if len(names) == 0 {
		return nil, &SelectionError{Problems: []string{"no table named"}}
	}
	all, err := cat.Tables(ctx, nil)
	if err != nil {
		return nil, err
	}
	exists := make(map[string]bool, len(all))
	for _, t := range all {
		exists[t[0]+"."+t[1]] = true
	}
	var problems []string
	var out [][2]string
	for _, name := range names {
		var re *regexp.Regexp
		if !exists[name] {
			if re, err = cdc.CompileMatch(name); err != nil {
				problems = append(problems, fmt.Sprintf("%s: not a table, and %v", name, err))
				continue
			}
		}
		var matched, took int
		for _, t := range all {
			full := t[0] + "." + t[1]
			if re == nil && full != name || re != nil && !re.MatchString(full) {
				continue
			}
			matched++
			if routed(t[0], t[1]) {
				took++
				out = append(out, t)
			}
		}
		switch {
		case matched == 0:
			problems = append(problems, fmt.Sprintf("%s: no such table in MySQL", name))
		case took == 0 && re == nil:
			problems = append(problems, fmt.Sprintf("%s: the pipeline streams it into no sink (no tables[] entry with a sink decides it, or source.binlog include/exclude leaves it out)", name))
		case took == 0:
			problems = append(problems, fmt.Sprintf("%s: matches %d table(s), none that the pipeline streams into a sink (tables[], source.binlog include/exclude)", name, matched))
		}
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0]+"."+a[1], b[0]+"."+b[1]) })
	out = slices.Compact(out)
	for _, t := range out {
		def, err := cat.Table(ctx, t[0], t[1])
		if err != nil {
			return nil, err
		}
		if len(def.PK) == 0 {
			problems = append(problems, fmt.Sprintf("%s.%s: no primary key (a backfill reads in primary-key order)", t[0], t[1]))
		}
	}
	if len(problems) > 0 {
		return nil, &SelectionError{Problems: problems}
	}
	return out, nil
}

// NewID returns a new request ID: 16 random hex digits.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Submitted is what RequestTables did for one table: State is the
// request it stored, or, when Already is true, the active backfill of the
// table that was there before (and that the caller can follow instead).
type Submitted struct {
	State   State
	Already bool
}

// RequestTables stores one request per table (a new ID each, chunk rows
// per chunk query, 0 for the owner's default). A table with an active
// backfill keeps it and is reported with Already.
func RequestTables(ctx context.Context, s Store, tables [][2]string, chunk int, now time.Time) ([]Submitted, error) {
	out := make([]Submitted, 0, len(tables))
	for _, t := range tables {
		st := State{DB: t[0], Table: t[1], ID: NewID(), Status: Requested, Chunk: chunk, Requested: now}
		err := s.Request(ctx, st)
		if errors.Is(err, ErrActive) {
			cur, found, lerr := find(ctx, s, st.Name())
			if lerr != nil {
				return out, lerr
			}
			if found && cur.Status.Active() {
				out = append(out, Submitted{State: cur, Already: true})
				continue
			}
			// It ended between the two calls: ask again.
			err = s.Request(ctx, st)
		}
		if err != nil {
			return out, fmt.Errorf("request backfill of %s: %w", st.Name(), err)
		}
		out = append(out, Submitted{State: st})
	}
	return out, nil
}

// find returns the stored state of the table called name.
func find(ctx context.Context, s Store, name string) (State, bool, error) {
	l, err := s.List(ctx)
	if err != nil {
		return State{}, false, err
	}
	for _, st := range l {
		if st.Name() == name {
			return st, true, nil
		}
	}
	return State{}, false, nil
}

// CancelTable asks the owner to stop the active backfill of the table
// called name ("db.table", as --status prints it). It returns the state
// it flagged, and false when the table has no active backfill.
func CancelTable(ctx context.Context, s Store, name string) (State, bool, error) {
	st, found, err := find(ctx, s, name)
	if err != nil || !found || !st.Status.Active() {
		return st, false, err
	}
	ok, err := s.Cancel(ctx, st.DB, st.Table)
	return st, ok, err
}
