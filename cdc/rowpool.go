package cdc

import (
	"math/bits"
	"sync"
)

// RowPool is a bounded free list of the Rows of acked batches, so a
// source decodes new rows into cleared value slices instead of making new
// ones (a row image per change, then collected, was the largest single
// allocation of decoding).
//
// A source takes a BatchRows per batch (Rows), takes every row it puts
// into the batch's events from it (BatchRows.Of, Get), and calls Recycle
// once the batch is acked with nil. Only the rows the source took for
// that batch go back, each once: the events are never walked to find
// them, because a pipeline stage may have put a row of its own into an
// event (refetch's row read) or one row into two events (a key change
// split in two).
//
// Recycling relies on Batch's contract: once a batch is acked, nothing
// holds a Row of it (a Sink keeps no Row after Apply returns). A nacked
// batch's rows are left to the collector, not recycled: the pipeline
// nacks the batches it gives up on while a worker may still be inside
// Apply with them.
//
// The pool keeps at most MaxRows rows, with room for at most MaxEntries
// values in all, and no row that held more than MaxRow values, so what it
// holds stays bounded whatever the rows. It is safe for concurrent use;
// the zero value is ready, with the defaults.
type RowPool struct {
	// MaxRows bounds the rows kept. Default: 16384 (two batches of 4096
	// updates, before and after image each).
	MaxRows int
	// MaxEntries bounds the values the kept rows have room for, summed.
	// Default: 131072, a few MiB.
	MaxEntries int
	// MaxRow is the most values a row may have held to be kept.
	// Default: 1024.
	MaxRow int

	mu      sync.Mutex
	free    [rowClasses][]pooledRow // by rowClass of size
	rows    int                     // rows in free
	entries int                     // their sizes, summed
	spare   [][]pooledRow           // emptied lists of recycled BatchRows, for Rows
	reused  uint64
	made    uint64
}

// RowPool's defaults.
const (
	DefaultRowPoolRows    = 16384
	DefaultRowPoolEntries = 131072
	DefaultRowPoolRow     = 1024
)

// rowClasses covers the sizes a pool keeps: rowClass(MaxRow) must be
// below it for the largest MaxRow a caller may set (1<<20).
const rowClasses = 22

// maxSpare and maxSpareCap bound the emptied BatchRows lists the pool
// keeps for reuse: their count and their capacity.
const maxSpare, maxSpareCap = 16, 1 << 16

// pooledRow is a recycled row with the most columns it has held (its
// size): its value slice has room for that many.
type pooledRow struct {
	row  *Row
	size int
}

// rowClass is the free list of rows of size n: sizes in [2^(c-1), 2^c)
// share class c.
func rowClass(n int) int { return bits.Len(uint(n)) }

func (p *RowPool) limits() (rows, entries, row int) {
	rows, entries, row = p.MaxRows, p.MaxEntries, p.MaxRow
	if rows <= 0 {
		rows = DefaultRowPoolRows
	}
	if entries <= 0 {
		entries = DefaultRowPoolEntries
	}
	if row <= 0 {
		row = DefaultRowPoolRow
	}
	return rows, entries, min(row, 1<<(rowClasses-2))
}

// Rows returns an empty BatchRows taking its rows from p, for one batch.
func (p *RowPool) Rows() *BatchRows {
	r := &BatchRows{pool: p}
	p.mu.Lock()
	if n := len(p.spare); n > 0 {
		r.taken = p.spare[n-1]
		p.spare[n-1] = nil
		p.spare = p.spare[:n-1]
	}
	p.mu.Unlock()
	return r
}

// Stats returns how many rows Get took from the pool (reused) and how
// many it had to make.
func (p *RowPool) Stats() (reused, made uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reused, p.made
}

// get pops a free row with room for n values, false if there is none:
// from n's class when its newest row is large enough, else from the next
// class up, whose rows all are (at most four times n's room).
func (p *RowPool) get(n int) (pooledRow, bool) {
	c := rowClass(n)
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := c; k <= c+1 && k < rowClasses; k++ {
		f := p.free[k]
		if len(f) == 0 || f[len(f)-1].size < n {
			continue
		}
		e := f[len(f)-1]
		f[len(f)-1] = pooledRow{}
		p.free[k] = f[:len(f)-1]
		p.rows--
		p.entries -= max(e.size, 1)
		p.reused++
		return e, true
	}
	p.made++
	return pooledRow{}, false
}

// BatchRows is the rows one batch took from a RowPool. One goroutine at a
// time uses it: the source's, until it hands the batch out (a channel
// send or the return of Next orders that), then the one acking it. A nil
// *BatchRows is valid: Get, Of and Clone make new rows and Recycle does
// nothing, so a decoder calls them on whatever its caller gave it. So is
// one already recycled: its rows went back once, and a second Recycle
// finds none.
type BatchRows struct {
	pool  *RowPool
	taken []pooledRow
}

// take returns a recycled row with room for n values, or a new one, and
// records it as r's.
func (r *BatchRows) take(n int) *Row {
	if r == nil || r.pool == nil {
		return &Row{vals: make([]Value, 0, n)}
	}
	e, ok := r.pool.get(n)
	if !ok {
		e = pooledRow{row: &Row{vals: make([]Value, 0, n)}, size: n}
	}
	r.taken = append(r.taken, e)
	return e.row
}

// Of returns an empty row of layout l (NewRow's): a recycled row of an
// acked batch, or a new one. It belongs to r's batch and goes back to the
// pool with it.
func (r *BatchRows) Of(l *Layout) *Row {
	row := r.take(l.Len())
	row.layout, row.n = l.own(), 0
	row.vals = row.vals[:l.Len()]
	for i := range row.vals {
		row.vals[i] = absent
	}
	return row
}

// Get returns an empty row with a layout of its own and room for n
// columns, which Set adds: for a decoder whose messages name their
// columns. It belongs to r's batch and goes back to the pool with it,
// its layout too.
func (r *BatchRows) Get(n int) *Row {
	row := r.take(n)
	if row.ownsLayout() {
		row.layout.names = row.layout.names[:0]
		clear(row.layout.index)
	} else {
		row.layout = &Layout{names: make([]string, 0, n)}
	}
	row.vals, row.n = row.vals[:0], 0
	return row
}

// Clone returns a row of r's batch holding src's columns (nil for nil),
// as Row.Clone does.
func (r *BatchRows) Clone(src *Row) *Row {
	if src == nil {
		return nil
	}
	if r == nil || r.pool == nil {
		return src.Clone()
	}
	row := r.take(len(src.vals))
	row.copyFrom(src)
	return row
}

// Len is the number of rows taken through r.
func (r *BatchRows) Len() int {
	if r == nil {
		return 0
	}
	return len(r.taken)
}

// Recycle clears every row taken through r and gives it back to the pool
// (those the pool has no room for, or that grew past MaxRow, are left to
// the collector); none of them may be used afterwards. r is empty then
// and out of the pool: a second Recycle does nothing, and Get makes new
// rows that nothing recycles. Call it when r's batch is acked with nil;
// see RowPool.
func (r *BatchRows) Recycle() {
	if r == nil || r.pool == nil {
		return
	}
	p := r.pool
	maxRows, maxEntries, maxRow := p.limits()
	keep := r.taken[:0]
	for _, e := range r.taken {
		row := e.row
		e.size = max(e.size, cap(row.vals))
		if e.size > maxRow {
			continue
		}
		clear(row.vals[:cap(row.vals)])
		row.vals, row.n = row.vals[:0], 0
		if row.ownsLayout() {
			clear(row.layout.names[:cap(row.layout.names)])
			row.layout.names = row.layout.names[:0]
			clear(row.layout.index) // kept: a wide row refills it without regrowing
		} else {
			row.layout = nil
		}
		keep = append(keep, e)
	}
	p.mu.Lock()
	for _, e := range keep {
		if p.rows >= maxRows || p.entries+max(e.size, 1) > maxEntries {
			break
		}
		c := rowClass(e.size)
		p.free[c] = append(p.free[c], e)
		p.rows++
		p.entries += max(e.size, 1)
	}
	clear(r.taken)
	if len(p.spare) < maxSpare && cap(r.taken) <= maxSpareCap {
		p.spare = append(p.spare, r.taken[:0])
	}
	p.mu.Unlock()
	r.pool, r.taken = nil, nil
}

// CloneEvents returns a copy of events whose Before and After are rows of
// their own, for a holder that keeps events past their batch's ack (see
// Batch): the source may reuse the originals' rows then.
func CloneEvents(events []Event) []Event {
	out := make([]Event, len(events))
	for i, ev := range events {
		ev.Before, ev.After = ev.Before.Clone(), ev.After.Clone()
		out[i] = ev
	}
	return out
}
