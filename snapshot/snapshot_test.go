package snapshot

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"go.uber.org/goleak"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/deadletter"
	"github.com/rowsync/rowsync/pipeline"
	"github.com/rowsync/rowsync/refetch"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

const rootDSN = "root@tcp(127.0.0.1:3306)/"

// recordSink keeps every event it is given.
type recordSink struct {
	mu     sync.Mutex
	events []cdc.Event
}

func (s *recordSink) Apply(_ context.Context, evs []cdc.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, evs...)
	return nil
}

func (s *recordSink) Close(context.Context) error { return nil }

func setup(t *testing.T, name string, stmts ...string) (string, *sql.DB) {
	t.Helper()
	db, err := sql.Open("mysql", rootDSN+"?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	s := "rs_snapshot_" + name
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%.200s: %v", q, err)
		}
	}
	exec("DROP DATABASE IF EXISTS " + s)
	exec("CREATE DATABASE " + s)
	t.Cleanup(func() {
		db.Exec("DROP DATABASE IF EXISTS " + s)
		db.Close()
	})
	for _, q := range stmts {
		exec(fmt.Sprintf(q, s))
	}
	return s, db
}

func newRefetcher(t *testing.T) *refetch.Refetcher {
	t.Helper()
	r, err := refetch.New(refetch.Config{DSN: rootDSN, Timeout: 30 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestSnapshotThroughPipeline runs a snapshot of a composite-key table, a
// keyless table, an empty table and a table dropped after listing through
// a real pipeline: Run returns nil at the end, every row arrives once as
// an Insert, and the stats add up.
func TestSnapshotThroughPipeline(t *testing.T) {
	stmts := []string{
		"CREATE TABLE %s.orders (user_id BIGINT, order_no INT, amount DECIMAL(10,3), PRIMARY KEY (user_id, order_no))",
		"CREATE TABLE %s.log (msg VARCHAR(10))",
		"CREATE TABLE %s.empty (id INT PRIMARY KEY)",
		"CREATE TABLE %s.dropped (id INT PRIMARY KEY)",
	}
	for u := 0; u < 4; u++ {
		for o := 0; o < 5; o++ {
			stmts = append(stmts, fmt.Sprintf("INSERT INTO %%s.orders VALUES (%d, %d, %d.125)", u, 4-o, u*10+o))
		}
	}
	stmts = append(stmts, "INSERT INTO %s.log VALUES ('a'),('b'),('a'),(NULL)")
	s, db := setup(t, "pipeline", stmts...)
	r := newRefetcher(t)
	tables, err := r.ListTables(context.Background(), func(d, _ string) bool { return d == s })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DROP TABLE " + s + ".dropped"); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	src := New(r, tables, Options{Chunk: 3, Logger: logger})
	sink := &recordSink{}
	dl := &deadletter.Memory{}
	p, err := pipeline.New(src, []pipeline.Route{{Name: "rec", Sink: sink}}, pipeline.Options{
		DeadLetter: dl, Workers: 3, MaxInFlight: 2, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("run ended only by the test timeout")
	}
	src.Close(ctx)
	if !src.Done() {
		t.Fatalf("not done: %+v", src.Stats())
	}

	byTable := map[string][]cdc.Event{}
	for _, ev := range sink.events {
		if ev.Op != cdc.Insert || ev.Before != nil || ev.Pos.Version != 0 || ev.Pos.Text != "snapshot "+s+"."+ev.Table || len(ev.Columns) == 0 {
			t.Fatalf("event %+v", ev)
		}
		byTable[ev.Table] = append(byTable[ev.Table], ev)
	}
	var keys []string
	for _, ev := range byTable["orders"] {
		if !slices.Equal(ev.PK, []string{"user_id", "order_no"}) {
			t.Fatalf("orders pk %v", ev.PK)
		}
		keys = append(keys, fmt.Sprintf("%d/%d=%s", ev.After["user_id"], ev.After["order_no"], ev.After["amount"]))
	}
	slices.Sort(keys)
	if len(keys) != 20 || len(slices.Compact(slices.Clone(keys))) != 20 ||
		keys[0] != "0/0=4.125" || keys[19] != "3/4=30.125" {
		t.Fatalf("orders rows %v", keys)
	}
	var msgs []string
	for _, ev := range byTable["log"] {
		if ev.PK != nil {
			t.Fatalf("keyless table has pk %v", ev.PK)
		}
		msgs = append(msgs, fmt.Sprint(ev.After["msg"]))
	}
	slices.Sort(msgs)
	if !slices.Equal(msgs, []string{"<nil>", "a", "a", "b"}) {
		t.Fatalf("log rows %v", msgs)
	}
	if len(byTable["empty"]) != 0 || len(byTable["dropped"]) != 0 || len(dl.Records()) != 0 {
		t.Fatalf("unexpected events or dead letters: %v %v", byTable, dl.Records())
	}

	want := map[string]struct {
		rows          int64
		keyless, gone bool
	}{"orders": {20, false, false}, "log": {4, true, false}, "empty": {0, false, false}, "dropped": {0, false, true}}
	for _, st := range src.Stats() {
		w := want[st.Table]
		if st.Read != w.rows || st.Applied != w.rows || st.Keyless != w.keyless || st.Gone != w.gone || !st.Done() {
			t.Errorf("stats of %s: %+v, want %+v", st.Table, st, w)
		}
		if !st.Gone && (st.Start.IsZero() || st.End.Before(st.Start)) {
			t.Errorf("stats of %s: start %v end %v", st.Table, st.Start, st.End)
		}
	}
}

// TestSnapshotStopsOnCancel: a cancelled run leaves the snapshot not done.
func TestSnapshotStopsOnCancel(t *testing.T) {
	s, _ := setup(t, "cancel", "CREATE TABLE %s.t (id INT PRIMARY KEY)", "INSERT INTO %s.t SELECT seq FROM mysql.seq_1_to_100")
	r := newRefetcher(t)
	src := New(r, [][2]string{{s, "t"}}, Options{Chunk: 10})
	defer src.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := src.Next(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := src.Next(ctx); err == nil {
		t.Fatal("Next after cancel succeeded")
	}
	if src.Done() {
		t.Fatal("done although 90 rows were never read")
	}
}
