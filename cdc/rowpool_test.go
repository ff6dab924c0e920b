package cdc

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// fill sets n columns of r, named by table t.
func fill(r *Row, t string, n int) {
	for i := range n {
		r.Set(fmt.Sprintf("%s_c%d", t, i), int64(i))
	}
}

func TestRowPoolReuse(t *testing.T) {
	var p RowPool
	// two tables of different widths, alternating batches
	widths := map[string]int{"narrow": 3, "wide": 40}
	seen := map[string]map[*Row]bool{}       // table -> rows it got
	layouts := map[string]map[*Layout]bool{} // table -> their own layouts
	for round := range 6 {
		for _, tb := range []string{"narrow", "wide"} {
			n := widths[tb]
			b := p.Rows()
			var rows []*Row
			for range 50 {
				r := b.Get(n)
				if r.Len() != 0 || r.Width() != 0 {
					t.Fatalf("round %d %s: Get returned a row holding %v (width %d)", round, tb, r, r.Width())
				}
				fill(r, tb, n)
				rows = append(rows, r)
				if seen[tb] == nil {
					seen[tb], layouts[tb] = map[*Row]bool{}, map[*Layout]bool{}
				}
				seen[tb][r] = true
				layouts[tb][r.Layout()] = true
			}
			for _, r := range rows {
				if r.Len() != n || r.Get(tb+"_c0") != int64(0) || r.Get(fmt.Sprintf("%s_c%d", tb, n-1)) != int64(n-1) {
					t.Fatalf("round %d %s: row %v", round, tb, r)
				}
			}
			if b.Len() != 50 {
				t.Fatalf("Len %d", b.Len())
			}
			b.Recycle()
		}
	}
	reused, made := p.Stats()
	// the first batch of each width makes its rows; the wide table's
	// rows never serve the narrow one (four times its room at most)
	if made != 100 || reused != 500 {
		t.Fatalf("made %d, reused %d; want 100 and 500", made, reused)
	}
	for tb, rows := range seen {
		if len(rows) != 50 {
			t.Errorf("%s used %d distinct rows, want its own 50 again and again", tb, len(rows))
		}
		// a recycled row keeps its own layout: Get refills it
		if len(layouts[tb]) != 50 {
			t.Errorf("%s used %d distinct layouts, want its rows' own 50", tb, len(layouts[tb]))
		}
	}
}

func TestRowPoolClassFit(t *testing.T) {
	var p RowPool
	b := p.Rows()
	r := b.Get(9)
	fill(r, "t", 9)
	b.Recycle()
	// a row that held 9 values is not handed out for 12 (it might grow)
	b = p.Rows()
	r12 := b.Get(12)
	if r12 == r {
		t.Fatal("a 9-value row served a 12-value row")
	}
	// but serves 9 and fewer of its class, and rows of half its size
	if r3 := b.Get(5); r3 != r {
		t.Fatal("a 9-value row did not serve a 5-value row")
	}
	b.Recycle()
	// nor does a 40-value row serve 9: more than the next class up
	b = p.Rows()
	fill(b.Get(40), "w", 40)
	b.Recycle()
	b = p.Rows()
	if r4 := b.Get(5); r4 != r {
		t.Fatal("the 9-value row did not serve a 5-value row")
	}
	if r5 := b.Get(9); r5 != r12 || r5.Width() != 0 {
		t.Fatalf("Get(9) = %p of width %d, want the 12-value row %p, empty", r5, r5.Width(), r12)
	}
	if r6 := b.Get(9); r6.Width() != 0 {
		t.Fatalf("new row of width %d", r6.Width())
	}
	if reused, made := p.Stats(); reused != 3 || made != 4 {
		t.Fatalf("reused %d, made %d; want 3 and 4 (the 40-value row kept)", reused, made)
	}
	b.Recycle()
}

func TestRowPoolRecycleOnce(t *testing.T) {
	var p RowPool
	b := p.Rows()
	r := b.Get(4)
	fill(r, "t", 4)
	b.Recycle()
	b.Recycle() // a no-op: the rows went back once
	if reusedRows(&p) != 1 {
		t.Fatalf("%d rows pooled, want 1", reusedRows(&p))
	}
	// a recycled BatchRows makes plain rows nothing recycles
	if m := b.Get(4); m == nil || m.Len() != 0 {
		t.Fatalf("Get after Recycle: %v", m)
	}
	b.Recycle()
	if reusedRows(&p) != 1 {
		t.Fatalf("%d rows pooled after a Get on a recycled BatchRows, want 1", reusedRows(&p))
	}
	// the next batch takes the one row; the pool is empty then
	b2 := p.Rows()
	if got := b2.Get(4); got != r || got.Len() != 0 || got.Width() != 0 {
		t.Fatalf("reused row %p (%v), want %p empty", got, got, r)
	}
	if reusedRows(&p) != 0 {
		t.Fatal("a row handed out stayed in the pool")
	}
	if got := b2.Get(4); got == r {
		t.Fatal("one row handed out twice")
	}
}

func reusedRows(p *RowPool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rows
}

func TestRowPoolBounds(t *testing.T) {
	p := RowPool{MaxRows: 10, MaxEntries: 60, MaxRow: 16}
	b := p.Rows()
	for range 20 {
		fill(b.Get(4), "t", 4)
	}
	big := b.Get(4)
	fill(big, "t", 17) // grew past MaxRow
	b.Recycle()
	for _, f := range p.free {
		for _, e := range f {
			if e.row == big {
				t.Error("the row grown past MaxRow was kept")
			}
		}
	}
	p.mu.Lock()
	rows, entries := p.rows, p.entries
	for _, f := range p.free {
		for _, e := range f {
			if e.size > 16 {
				t.Errorf("a row of size %d was kept", e.size)
			}
		}
	}
	p.mu.Unlock()
	if rows != 10 || entries != 40 {
		t.Fatalf("pool holds %d rows of %d values; want 10 and 40 (MaxRows)", rows, entries)
	}
	p2 := RowPool{MaxEntries: 30}
	b = p2.Rows()
	for range 10 {
		fill(b.Get(8), "t", 8)
	}
	b.Recycle()
	if p2.rows != 3 || p2.entries != 24 {
		t.Fatalf("pool holds %d rows of %d values; want 3 and 24 (MaxEntries)", p2.rows, p2.entries)
	}
}

func TestRowPoolNil(t *testing.T) {
	var b *BatchRows
	r := b.Get(3)
	r.Set("a", 1)
	if c := b.Clone(r); c.Len() != 1 || c.Get("a") != 1 {
		t.Fatalf("Clone: %v", c)
	}
	if b.Clone(nil) != nil {
		t.Fatal("Clone(nil) != nil")
	}
	b.Recycle()
	if b.Len() != 0 {
		t.Fatal("Len of nil")
	}
	var p RowPool
	pb := p.Rows()
	src := RowOf("x", int64(1), "y", "z")
	c := pb.Clone(src)
	c.Set("x", int64(2))
	if src.Get("x") != int64(1) || c.Len() != 2 || c.Get("y") != "z" {
		t.Fatalf("Clone shares or loses entries: %v %v", src, c)
	}
	if pb.Clone(nil) != nil {
		t.Fatal("Clone(nil) != nil")
	}
}

// TestRowPoolConcurrent has batches made on one goroutine and recycled on
// another, as a source and the pipeline's acker do (run with -race).
func TestRowPoolConcurrent(t *testing.T) {
	var p RowPool
	acked := make(chan *BatchRows, 4)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range acked {
			b.Recycle()
		}
	}()
	for i := range 200 {
		b := p.Rows()
		n := 3 + i%20
		for range 30 {
			r := b.Get(n)
			if r.Len() != 0 {
				t.Errorf("batch %d: Get returned %v", i, r)
			}
			fill(r, "t", n)
		}
		acked <- b
	}
	close(acked)
	wg.Wait()
	if reused, _ := p.Stats(); reused == 0 {
		t.Fatal("nothing reused")
	}
}

func TestCloneEvents(t *testing.T) {
	shared := RowOf("id", int64(1))
	evs := []Event{{Op: Update, Before: shared, After: shared}, {Op: Insert, After: RowOf("id", int64(2))}}
	c := CloneEvents(evs)
	shared.Reset()
	evs[1].After.Reset()
	if c[0].Before.Get("id") != int64(1) || c[0].After.Get("id") != int64(1) || c[1].After.Get("id") != int64(2) || c[1].Before != nil {
		t.Fatalf("clone follows the originals: %+v", c)
	}
}

// TestRowPoolOf: rows of a shared layout come back from the pool empty,
// every column absent, and a recycled one serves Get with a layout of its
// own, never writing to the shared one.
func TestRowPoolOf(t *testing.T) {
	l, err := NewLayout([]string{"id", "a", "b", "c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	var p RowPool
	b := p.Rows()
	r := b.Of(l)
	if r.Layout() != l || r.Width() != 5 || r.Len() != 0 {
		t.Fatalf("Of: layout %p width %d len %d, want %p, 5, 0", r.Layout(), r.Width(), r.Len(), l)
	}
	for i := range r.Width() {
		r.SetAt(i, int64(i))
	}
	r.SetAt(2, nil)
	if r.Len() != 5 || !r.Equal(RowOf("id", int64(0), "a", int64(1), "b", nil, "c", int64(3), "d", int64(4))) {
		t.Fatalf("filled row %v", r)
	}
	b.Recycle()

	b = p.Rows()
	r2 := b.Of(l)
	if r2 != r {
		t.Fatal("the recycled row did not serve Of")
	}
	if r2.Layout() != l || r2.Width() != 5 || r2.Len() != 0 {
		t.Fatalf("reused: layout %p width %d len %d, want %p, 5, 0", r2.Layout(), r2.Width(), r2.Len(), l)
	}
	for i := range r2.Width() {
		if name, v, ok := r2.At(i); ok || v != nil || name != l.Names()[i] {
			t.Errorf("At(%d) = %s, %v, %v; want %s absent", i, name, v, ok, l.Names()[i])
		}
		if r2.Has(l.Names()[i]) {
			t.Errorf("reused row carries %s", l.Names()[i])
		}
	}
	// a narrower layout gets a row of its width from the same pool
	r2.SetAt(0, int64(7))
	b.Recycle()
	b = p.Rows()
	l3, _ := NewLayout([]string{"x", "y", "z"})
	if r3 := b.Of(l3); r3 != r || r3.Width() != 3 || r3.Len() != 0 || r3.Has("id") {
		t.Fatalf("Of(l3) = %p width %d %v", r3, r3.Width(), r3)
	}
	b.Recycle()

	// the row that had a shared layout serves Get with one of its own
	b = p.Rows()
	r4 := b.Get(3)
	if r4 != r || r4.Layout() == l || r4.Layout() == l3 || r4.Width() != 0 {
		t.Fatalf("Get after Of: row %p layout %p width %d", r4, r4.Layout(), r4.Width())
	}
	r4.Set("q", int64(1))
	r4.Set("x", int64(2))
	if !slices.Equal(l.Names(), []string{"id", "a", "b", "c", "d"}) || !slices.Equal(l3.Names(), []string{"x", "y", "z"}) {
		t.Fatalf("shared layouts written to: %v %v", l.Names(), l3.Names())
	}
	if !slices.Equal(r4.Names(), []string{"q", "x"}) {
		t.Fatalf("Get row %v", r4)
	}
	b.Recycle()
}

// TestRowPoolOwnLayout: a row of Get goes back with its own layout, which
// the next Get empties and refills: no name of the last batch's columns,
// nor of a wide layout's index, survives.
func TestRowPoolOwnLayout(t *testing.T) {
	var p RowPool
	b := p.Rows()
	r := b.Get(20)
	fill(r, "t", 20) // wide: the layout has an index
	l := r.Layout()
	b.Recycle()
	for _, n := range []int{20, 12} { // 12: scanned, no index
		b = p.Rows()
		r2 := b.Get(n)
		if r2 != r || r2.Layout() != l {
			t.Fatalf("Get(%d): row %p layout %p, want the recycled %p with its layout %p", n, r2, r2.Layout(), r, l)
		}
		if r2.Width() != 0 || r2.Len() != 0 || l.Len() != 0 {
			t.Fatalf("Get(%d): width %d len %d, layout of %d names", n, r2.Width(), r2.Len(), l.Len())
		}
		fill(r2, "u", n)
		for i := range 20 {
			if r2.Has(fmt.Sprintf("t_c%d", i)) {
				t.Fatalf("Get(%d): row carries t_c%d of the last batch: %v", n, i, r2)
			}
		}
		for i := range n {
			if v, ok := r2.Lookup(fmt.Sprintf("u_c%d", i)); !ok || v != int64(i) {
				t.Fatalf("Get(%d): u_c%d = %v, %v", n, i, v, ok)
			}
		}
		if r2.Len() != n || r2.Width() != n {
			t.Fatalf("Get(%d): len %d width %d", n, r2.Len(), r2.Width())
		}
		b.Recycle()
	}
}

// TestRowPoolClone: a pooled clone holds the source's columns and shares
// nothing writable with it, whatever the source's and the recycled row's
// layouts.
func TestRowPoolClone(t *testing.T) {
	shared, _ := NewLayout([]string{"id", "v"})
	var p RowPool
	for round := range 3 {
		b := p.Rows()
		own := RowOf("id", int64(1), "name", "ann")
		c := b.Clone(own)
		if !c.Equal(own) || c.Layout() == own.Layout() {
			t.Fatalf("round %d: clone %v (layout %p) of %v (%p)", round, c, c.Layout(), own, own.Layout())
		}
		c.Set("name", "bob")
		c.Set("extra", true)
		c.Delete("id")
		if !own.Equal(RowOf("id", int64(1), "name", "ann")) || !slices.Equal(own.Layout().Names(), []string{"id", "name"}) {
			t.Fatalf("round %d: clone writes reach the source: %v", round, own)
		}
		src := NewRow(shared)
		src.SetAt(0, int64(2))
		c2 := b.Clone(src)
		if !c2.Equal(src) || c2.Layout() != shared {
			t.Fatalf("round %d: clone %v (layout %p) of %v (%p)", round, c2, c2.Layout(), src, shared)
		}
		c2.SetAt(1, "x")
		c2.Set("w", int64(3))
		if src.Has("v") || src.Width() != 2 || !slices.Equal(shared.Names(), []string{"id", "v"}) {
			t.Fatalf("round %d: clone writes reach the source: %v, layout %v", round, src, shared.Names())
		}
		b.Recycle()
	}
	if reused, _ := p.Stats(); reused == 0 {
		t.Fatal("Clone reused no row")
	}
}
