package cdc

import (
	"fmt"
	"sync"
	"testing"
)

// fill puts n entries into r, named by table t.
func fill(r Row, t string, n int) {
	for i := range n {
		r[fmt.Sprintf("%s_c%d", t, i)] = int64(i)
	}
}

func TestRowPoolReuse(t *testing.T) {
	var p RowPool
	// two tables of different widths, alternating batches
	widths := map[string]int{"narrow": 3, "wide": 40}
	seen := map[string]map[string]bool{} // table -> identity of maps it got
	for round := range 6 {
		for _, tb := range []string{"narrow", "wide"} {
			n := widths[tb]
			b := p.Rows()
			var rows []Row
			for range 50 {
				r := b.Get(n)
				if len(r) != 0 {
					t.Fatalf("round %d %s: Get returned a map holding %v", round, tb, r)
				}
				fill(r, tb, n)
				rows = append(rows, r)
				if seen[tb] == nil {
					seen[tb] = map[string]bool{}
				}
				seen[tb][fmt.Sprintf("%p", r)] = true
			}
			for _, r := range rows {
				if len(r) != n || r[tb+"_c0"] != int64(0) {
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
	// the first batch of each width makes its maps; the wide table's
	// maps never serve the narrow one (four times its room at most)
	if made != 100 || reused != 500 {
		t.Fatalf("made %d, reused %d; want 100 and 500", made, reused)
	}
	for tb, ids := range seen {
		if len(ids) != 50 {
			t.Errorf("%s used %d distinct maps, want its own 50 again and again", tb, len(ids))
		}
	}
}

func TestRowPoolClassFit(t *testing.T) {
	var p RowPool
	b := p.Rows()
	r := b.Get(9)
	fill(r, "t", 9)
	b.Recycle()
	// a map that held 9 entries is not handed out for 12 (it might grow)
	b = p.Rows()
	if r2 := b.Get(12); fmt.Sprintf("%p", r2) == fmt.Sprintf("%p", r) {
		t.Fatal("a 9-entry map served a 12-entry row")
	}
	// but serves 9 and fewer of its class, and rows of half its size
	if r3 := b.Get(5); fmt.Sprintf("%p", r3) != fmt.Sprintf("%p", r) {
		t.Fatal("a 9-entry map did not serve a 5-entry row")
	}
	b.Recycle()
}

func TestRowPoolRecycleOnce(t *testing.T) {
	var p RowPool
	b := p.Rows()
	r := b.Get(4)
	fill(r, "t", 4)
	b.Recycle()
	b.Recycle() // a no-op: the maps went back once
	if reusedRows(&p) != 1 {
		t.Fatalf("%d maps pooled, want 1", reusedRows(&p))
	}
	// a recycled BatchRows makes plain maps nothing recycles
	if m := b.Get(4); m == nil || len(m) != 0 {
		t.Fatalf("Get after Recycle: %v", m)
	}
	b.Recycle()
	if reusedRows(&p) != 1 {
		t.Fatalf("%d maps pooled after a Get on a recycled BatchRows, want 1", reusedRows(&p))
	}
	// the next batch takes the one map; the pool is empty then
	b2 := p.Rows()
	if got := b2.Get(4); fmt.Sprintf("%p", got) != fmt.Sprintf("%p", r) || len(got) != 0 {
		t.Fatalf("reused map %p (%v), want %p empty", got, got, r)
	}
	if reusedRows(&p) != 0 {
		t.Fatal("a map handed out stayed in the pool")
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
	p.mu.Lock()
	rows, entries := p.rows, p.entries
	for _, f := range p.free {
		for _, e := range f {
			if e.size > 16 {
				t.Errorf("a map of size %d was kept", e.size)
			}
		}
	}
	p.mu.Unlock()
	if rows != 10 || entries != 40 {
		t.Fatalf("pool holds %d maps of %d entries; want 10 and 40 (MaxRows)", rows, entries)
	}
	p2 := RowPool{MaxEntries: 30}
	b = p2.Rows()
	for range 10 {
		fill(b.Get(8), "t", 8)
	}
	b.Recycle()
	if p2.rows != 3 || p2.entries != 24 {
		t.Fatalf("pool holds %d maps of %d entries; want 3 and 24 (MaxEntries)", p2.rows, p2.entries)
	}
}

func TestRowPoolNil(t *testing.T) {
	var b *BatchRows
	r := b.Get(3)
	r["a"] = 1
	if c := b.Clone(r); len(c) != 1 || c["a"] != 1 {
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
	src := Row{"x": int64(1), "y": "z"}
	c := pb.Clone(src)
	c["x"] = int64(2)
	if src["x"] != int64(1) || len(c) != 2 || c["y"] != "z" {
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
			if len(r) != 0 {
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
	shared := Row{"id": int64(1)}
	evs := []Event{{Op: Update, Before: shared, After: shared}, {Op: Insert, After: Row{"id": int64(2)}}}
	c := CloneEvents(evs)
	clear(shared)
	clear(evs[1].After)
	if c[0].Before["id"] != int64(1) || c[0].After["id"] != int64(1) || c[1].After["id"] != int64(2) || c[1].Before != nil {
		t.Fatalf("clone follows the originals: %+v", c)
	}
}
