package cdc

import (
	"fmt"
	"regexp"
	"sync"
)

// TableRule binds a sink's per-table settings to the tables whose
// "db.table" name matches Match (anchored). Config is the sink's own type.
type TableRule[T any] struct {
	Match *regexp.Regexp
	// PK is the configured primary key, used when events carry none.
	PK     []string
	Config T
}

// CompileMatch anchors a `match:` pattern ("shop.users", "shop\\..*") so
// it must match the whole "db.table" name.
func CompileMatch(pattern string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		return nil, fmt.Errorf("bad regex %q: %w", pattern, err)
	}
	return re, nil
}

// Tables finds the first rule that matches a table, caching answers.
// It is safe for concurrent use.
type Tables[T any] struct {
	rules []TableRule[T]
	cache sync.Map // "db.table" -> int (rule index, -1 for none)
}

// NewTables returns a lookup over rules, first match wins.
func NewTables[T any](rules []TableRule[T]) *Tables[T] {
	return &Tables[T]{rules: rules}
}

// Rules returns the rules in order.
func (t *Tables[T]) Rules() []TableRule[T] { return t.rules }

// Lookup returns the first rule matching db.table, or nil.
func (t *Tables[T]) Lookup(db, table string) *TableRule[T] {
	name := db + "." + table
	if i, ok := t.cache.Load(name); ok {
		if i.(int) < 0 {
			return nil
		}
		return &t.rules[i.(int)]
	}
	idx := -1
	for i := range t.rules {
		if t.rules[i].Match.MatchString(name) {
			idx = i
			break
		}
	}
	t.cache.Store(name, idx)
	if idx < 0 {
		return nil
	}
	return &t.rules[idx]
}
