package backfill

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/checkpoint"
	"github.com/rowsync/rowsync/deadletter"
	"github.com/rowsync/rowsync/pipeline"
)

// recordSink keeps every event the pipeline applies.
type recordSink struct {
	mu     sync.Mutex
	events []cdc.Event
}

func (s *recordSink) Apply(_ context.Context, evs []cdc.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, cdc.CloneEvents(evs)...) // kept past Apply (cdc.Sink)
	return nil
}

func (s *recordSink) Close(context.Context) error { return nil }

func (s *recordSink) take() []cdc.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := s.events
	s.events = nil
	return evs
}

// snapshotJob copies the tables of schema s (on the server with a binlog)
// into rec through a real pipeline, states in store.
func snapshotJob(t *testing.T, store Store, s string, rec *recordSink, dl *deadletter.Memory) Snapshot {
	return Snapshot{MySQL: newRefetcher(t, binlogAddr), Store: store, Tables: func(db, _ string) bool { return db == s },
		Routes: []pipeline.Route{{Name: "rec", Sink: rec}}, Pipeline: pipeline.Options{DeadLetter: dl, Workers: 3, MaxInFlight: 2},
		Chunk: 3, Owner: "snapshot test", Poll: 20 * time.Millisecond}
}

func byName(states []State) map[string]State {
	m := map[string]State{}
	for _, st := range states {
		m[st.Table] = st
	}
	return m
}

// TestSnapshot runs `rowsync snapshot`'s code path (the engine over a
// Source with no stream, a real pipeline) over a composite-key table, a
// keyless table (one full scan) and an empty one: every row arrives once
// as a read Insert without a version, the states end Done in the store, and the beat is
// cleared. Then: a beating owner makes it refuse, and a table left
// Running by an interrupted snapshot resumes from its cursor (the keyless
// one is read again from its first row).
func TestSnapshot(t *testing.T) {
	stmts := []string{
		"CREATE TABLE $S.orders (user_id BIGINT, order_no INT, amount DECIMAL(10,3), PRIMARY KEY (user_id, order_no))",
		"CREATE TABLE $S.log (msg VARCHAR(10))",
		"CREATE TABLE $S.empty (id INT PRIMARY KEY)",
		"INSERT INTO $S.log VALUES ('a'),('b'),('a'),(NULL)",
	}
	for u := 0; u < 4; u++ {
		for o := 0; o < 5; o++ {
			stmts = append(stmts, fmt.Sprintf("INSERT INTO $S.orders VALUES (%d, %d, %d.125)", u, 4-o, u*10+o))
		}
	}
	_, s := testSchema(t, binlogAddr, stmts...)
	ctx := ctxT(t)
	store := NewMemory()
	rec := &recordSink{}
	dl := &deadletter.Memory{}
	job := snapshotJob(t, store, s, rec, dl)
	var progressed int
	job.Progress = func([]State, error) { progressed++ }
	pinned := false
	job.Pin = func(context.Context) error { pinned = true; return nil }
	states, err := job.Run(ctx)
	if err != nil {
		t.Fatalf("snapshot: %v\n%+v", err, states)
	}
	if !pinned || progressed == 0 {
		t.Fatalf("pinned %v, progress calls %d", pinned, progressed)
	}
	got := byName(states)
	for table, rows := range map[string]int64{"orders": 20, "log": 4, "empty": 0} {
		if st := got[table]; st.Status != Done || st.Rows != rows || st.Owner != "snapshot test" {
			t.Errorf("%s: %+v, want done with %d rows", table, st, rows)
		}
	}
	if stored, _ := store.List(ctx); len(stored) != 3 {
		t.Fatalf("store holds %+v", stored)
	}
	if owner, _, _ := store.Owner(ctx); owner != "" {
		t.Fatalf("beat not cleared: %q", owner)
	}
	var keys, msgs []string
	for _, ev := range rec.take() {
		// version 0 (no stream to order against), though the server has a binlog
		if ev.Op != cdc.Insert || !ev.Read || ev.Before != nil || ev.Pos.Version != 0 || len(ev.Columns) == 0 || !strings.HasPrefix(ev.Pos.Text, "backfill "+s+"."+ev.Table) {
			t.Fatalf("event %+v", ev)
		}
		switch ev.Table {
		case "orders":
			if !slices.Equal(ev.PK, []string{"user_id", "order_no"}) {
				t.Fatalf("orders pk %v", ev.PK)
			}
			keys = append(keys, fmt.Sprintf("%d/%d=%s", ev.After.Get("user_id"), ev.After.Get("order_no"), ev.After.Get("amount")))
		case "log":
			if ev.PK != nil {
				t.Fatalf("keyless table has pk %v", ev.PK)
			}
			msgs = append(msgs, fmt.Sprint(ev.After.Get("msg")))
		default:
			t.Fatalf("event of %s", ev.Table)
		}
	}
	slices.Sort(keys)
	slices.Sort(msgs)
	if len(keys) != 20 || len(slices.Compact(slices.Clone(keys))) != 20 || keys[0] != "0/0=4.125" || keys[19] != "3/4=30.125" {
		t.Fatalf("orders rows %v", keys)
	}
	if !slices.Equal(msgs, []string{"<nil>", "a", "a", "b"}) {
		t.Fatalf("log rows %v", msgs)
	}
	if len(dl.Records()) != 0 {
		t.Fatalf("dead letters: %v", dl.Records())
	}

	// An owner beats: refused before anything is requested.
	store.Beat(ctx, "app-1/42")
	job.Pin = func(context.Context) error { t.Fatal("pinned beside a running owner"); return nil }
	if _, err := job.Run(ctx); !errors.Is(err, ErrOwnerRunning) || !strings.Contains(err.Error(), "rowsync backfill") {
		t.Fatalf("beside a running owner: %v", err)
	}
	store.Beat(ctx, "")
	job.Pin = nil

	// Interrupted: orders left Running after user 2's orders, log after
	// two rows of its scan. They resume; empty gets a new request.
	for _, st := range states {
		switch st.Table {
		case "orders":
			st.Status, st.Rows, st.Chunks, st.Cursor, st.Finished = Running, 10, 4, []string{"1", "4"}, time.Time{}
		case "log":
			st.Status, st.Rows, st.Chunks, st.Finished = Running, 2, 1, time.Time{}
		default:
			continue
		}
		if err := store.Update(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	states, err = job.Run(ctx)
	if err != nil {
		t.Fatalf("resumed snapshot: %v", err)
	}
	got = byName(states)
	if o, l := got["orders"], got["log"]; o.Status != Done || o.Rows != 20 || l.Status != Done || l.Rows != 4 {
		t.Fatalf("resumed: orders %+v, log %+v", o, l)
	}
	n := map[string]int{}
	for _, ev := range rec.take() {
		n[ev.Table]++
	}
	if n["orders"] != 10 || n["log"] != 4 {
		t.Fatalf("resumed snapshot applied %v, want the 10 orders after the cursor and the 4 log rows", n)
	}
}

// startSource stands for a log source that saves its start position when
// it is built, as the binlog source does.
type startSource struct{}

func (startSource) Next(ctx context.Context) (cdc.Batch, error) {
	return cdc.Batch{}, errors.New("not streamed")
}
func (startSource) Close(context.Context) error { return nil }

func TestPinStart(t *testing.T) {
	ctx := context.Background()
	store, err := checkpoint.NewFile(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	started := 0
	start := func(ctx context.Context) (cdc.Source, error) {
		started++
		return startSource{}, store.Save(ctx, checkpoint.Position{File: "mysql-bin.000007", Offset: 4})
	}
	// No checkpoint: the source's start is resolved and saved.
	if err := PinStart(ctx, store, "p", false, start, nil); err != nil || started != 1 {
		t.Fatalf("first pin: %v (started %d)", err, started)
	}
	if pos, ok, _ := store.Load(ctx); !ok || pos.File != "mysql-bin.000007" {
		t.Fatalf("saved %v %v", pos, ok)
	}
	// A checkpoint exists: refused without force, kept with it.
	err = PinStart(ctx, store, "p", false, start, nil)
	if err == nil || !strings.Contains(err.Error(), "already has a binlog checkpoint") || !strings.Contains(err.Error(), "--force") ||
		!strings.Contains(err.Error(), "rowsync backfill") {
		t.Fatalf("second pin without force: %v", err)
	}
	if err := PinStart(ctx, store, "p", true, start, nil); err != nil || started != 1 {
		t.Fatalf("forced pin: %v (started %d)", err, started)
	}
	// A source that saves nothing is an error, not a silent start.
	empty, _ := checkpoint.NewFile(filepath.Join(t.TempDir(), "none.json"))
	defer empty.Close()
	err = PinStart(ctx, empty, "p", false, func(context.Context) (cdc.Source, error) { return startSource{}, nil }, nil)
	if err == nil || !strings.Contains(err.Error(), "not saved") {
		t.Fatalf("pin with nothing saved: %v", err)
	}
}

// cancelSink applies events and cancels the snapshot's context at its
// first batch, like a Ctrl-C in the middle of the copy.
type cancelSink struct {
	recordSink
	cancel context.CancelFunc
}

func (s *cancelSink) Apply(ctx context.Context, evs []cdc.Event) error {
	s.cancel()
	return s.recordSink.Apply(ctx, evs)
}

// TestSnapshotInterruptedAndRefused: a snapshot stopped in the middle
// fails saying so and leaves its table active in the store; the next one
// resumes it to Done. A table with an active key-list backfill (verify
// --repair) is refused before anything is requested.
func TestSnapshotInterruptedAndRefused(t *testing.T) {
	_, s := testSchema(t, binlogAddr, "CREATE TABLE $S.t (id INT PRIMARY KEY)",
		"INSERT INTO $S.t SELECT seq FROM mysql.seq_1_to_60")
	store := NewMemory()
	ctx, cancel := context.WithCancel(ctxT(t))
	sink := &cancelSink{cancel: cancel}
	job := snapshotJob(t, store, s, &sink.recordSink, &deadletter.Memory{})
	job.Routes = []pipeline.Route{{Name: "cancel", Sink: sink}}
	states, err := job.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("interrupted snapshot: %v %+v", err, states)
	}
	stored, _ := store.List(ctxT(t))
	if len(stored) != 1 || !stored[0].Status.Active() {
		t.Fatalf("after the interruption the store holds %+v", stored)
	}
	job.Routes = []pipeline.Route{{Name: "rec", Sink: &sink.recordSink}}
	states, err = job.Run(ctxT(t))
	if err != nil || len(states) != 1 || states[0].Status != Done || states[0].ID != stored[0].ID {
		t.Fatalf("resumed: %v %+v (first request %s)", err, states, stored[0].ID)
	}
	ids := map[any]bool{}
	for _, ev := range sink.take() {
		ids[ev.After.Get("id")] = true
	}
	if len(ids) != 60 {
		t.Fatalf("%d distinct rows applied, want 60", len(ids))
	}

	// a key-list backfill of the table is active: refused, nothing requested
	keys := NewMemory()
	if err := keys.Request(ctxT(t), State{DB: s, Table: "t", ID: "k1", Status: Requested, Keys: [][]string{{"7"}}}); err != nil {
		t.Fatal(err)
	}
	job.Store = keys
	if _, err := job.Run(ctxT(t)); err == nil || !strings.Contains(err.Error(), "1 listed keys") {
		t.Fatalf("beside a key-list backfill: %v", err)
	}
	if l, _ := keys.List(ctxT(t)); len(l) != 1 || l[0].ID != "k1" {
		t.Fatalf("store after the refusal: %+v", l)
	}
}
