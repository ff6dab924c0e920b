package decode

import (
	"sync"

	"github.com/rowsync/rowsync/cdc"
)

// Layouts keeps the row layout of each table definition a decoder types
// rows by (a schema source's, or one learnt from the stream), so the rows
// of a table share one layout and are filled by column index
// (BatchRows.Of, Row.SetAt) instead of each carrying its own names. It is
// safe for concurrent use; the zero value is ready.
type Layouts struct {
	mu sync.RWMutex
	m  map[*cdc.TableDef]*cdc.Layout
}

// maxLayouts bounds the definitions remembered: past it the map starts
// over (definitions replaced by a refresh are never asked for again).
const maxLayouts = 1024

// Of returns the layout of def's columns, in their order; nil when def
// names a column twice (its rows are then filled by name).
func (l *Layouts) Of(def *cdc.TableDef) *cdc.Layout {
	l.mu.RLock()
	lay, ok := l.m[def]
	l.mu.RUnlock()
	if ok {
		return lay
	}
	lay, _ = cdc.NewLayout(def.Names())
	l.mu.Lock()
	if l.m == nil || len(l.m) >= maxLayouts {
		l.m = make(map[*cdc.TableDef]*cdc.Layout)
	}
	l.m[def] = lay
	l.mu.Unlock()
	return lay
}
