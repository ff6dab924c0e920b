package backfill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/refetch"
	"github.com/rowsync/rowsync/source/binlog"
)

// Servers: the project MariaDB with a binlog, and the plain one.
const (
	binlogAddr = "127.0.0.1:3307"
	plainAddr  = "127.0.0.1:3306"
)

var nonWord = regexp.MustCompile(`[^a-z0-9_]+`)

// testSchema creates rs_backfill_<test> on addr with stmts run in it
// ($S is the schema), dropped at the end.
func testSchema(t *testing.T, addr string, stmts ...string) (*sql.DB, string) {
	t.Helper()
	s := "rs_backfill_" + nonWord.ReplaceAllString(strings.ToLower(t.Name()), "_")
	s = s[:min(len(s), 64)]
	db, err := sql.Open("mysql", "root@tcp("+addr+")/?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(strings.ReplaceAll(q, "$S", s)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("DROP DATABASE IF EXISTS $S")
	exec("CREATE DATABASE $S")
	t.Cleanup(func() {
		db.Exec("DROP DATABASE IF EXISTS " + s)
		db.Close()
	})
	for _, q := range stmts {
		exec(q)
	}
	return db, s
}

func newRefetcher(t *testing.T, addr string) *refetch.Refetcher {
	t.Helper()
	rf, err := refetch.New(refetch.Config{DSN: "root@tcp(" + addr + ")/", Timeout: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rf.Close() })
	return rf
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// gate passes a real stream's batches on, but hides their Through until
// open is set by the test: it holds back the chunk at will.
type gate struct {
	cdc.Source
	mu   sync.Mutex
	open func(b cdc.Batch) bool
}

func (g *gate) Next(ctx context.Context) (cdc.Batch, error) {
	b, err := g.Source.Next(ctx)
	if err != nil {
		return b, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open != nil && !g.open(b) {
		b.Through = 0
	}
	return b, nil
}

// TestRaceOnMariaDB forces the DBLog race with the real reader on the
// binlog server, for both watermark methods: row 5 is read by a chunk,
// then updated (logged after the chunk's low watermark); the stream is
// held so that the update is delivered before the chunk. The chunk must
// drop row 5 and the sink keep the log's value.
func TestRaceOnMariaDB(t *testing.T) {
	for _, method := range []Method{MethodSnapshot, MethodLockingRead} {
		t.Run(string(method), func(t *testing.T) {
			db, s := testSchema(t, binlogAddr,
				"CREATE TABLE $S.t (id INT PRIMARY KEY, v VARCHAR(20))",
				"CREATE TABLE $S.other (id INT PRIMARY KEY)",
				"INSERT INTO $S.t VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e'),(6,'f')")
			ctx := ctxT(t)
			src, err := binlog.New(ctx, binlog.Config{Addr: binlogAddr, Include: []string{regexp.QuoteMeta(s) + `\..*`},
				MaxWait: 20 * time.Millisecond, IdleAck: 20 * time.Millisecond}, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			g := &gate{Source: src}
			w := NewSource(g, true)
			defer w.Close(context.Background())
			rf := newRefetcher(t, binlogAddr)
			r, err := NewReader(ctx, rf, State{DB: s, Table: "t"}, 100, method)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()

			// a transaction before the read, not yet delivered: the chunk's
			// low watermark is past what the stream has handed out
			if _, err := db.Exec("INSERT INTO " + s + ".other VALUES (1)"); err != nil {
				t.Fatal(err)
			}
			var sawUpdate bool
			g.mu.Lock()
			g.open = func(b cdc.Batch) bool {
				for _, ev := range b.Events {
					if ev.Table == "t" && ev.After.Get("id") == int64(5) {
						sawUpdate = true
					}
				}
				return sawUpdate
			}
			g.mu.Unlock()
			w.Record(s, "t", r.KeyOf)
			c, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Rows) != 6 || c.Low.Version() == 0 || c.High.Version() < c.Low.Version() {
				t.Fatalf("chunk: %d rows, %s..%s", len(c.Rows), c.Low, c.High)
			}
			if _, err := db.Exec("UPDATE " + s + ".t SET v = 'log' WHERE id = 5"); err != nil {
				t.Fatal(err)
			}
			res := make(chan emitResult, 1)
			go func() {
				d, err := w.Emit(ctx, Emit{DB: s, Table: "t", PK: r.PK(), Columns: r.Columns(), Chunk: c, Text: "chunk"})
				res <- emitResult{d, err}
			}()
			k := newSink()
			for {
				b, err := w.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var evs []cdc.Event
				for _, ev := range b.Events {
					if ev.Table == "t" {
						evs = append(evs, ev)
					}
				}
				k.apply(evs)
				read := len(evs) > 0 && evs[0].Read
				if err := b.Ack(ctx, nil); err != nil {
					t.Fatal(err)
				}
				if read {
					break
				}
			}
			if r := <-res; r.err != nil || r.dropped != 1 {
				t.Fatalf("emit: %d dropped, %v; want row 5 dropped", r.dropped, r.err)
			}
			if got := k.rows["5"].Get("v"); got != "log" {
				t.Fatalf("row 5 = %v, want the log's value", got)
			}
			if len(k.rows) != 6 || k.rows["1"].Get("v") != "a" {
				t.Fatalf("sink: %v", k.rows)
			}
			if _, err := r.Next(ctx); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last chunk: %v", err)
			}
		})
	}
}

// pipe stands in for the pipeline: it takes the wrapper's batches,
// applies the backfill's rows to a sink and acks, until stopped.
func pipe(t *testing.T, w *Source) (*sink, func()) {
	k := newSink()
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			b, err := w.Next(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			k.apply(b.Events)
			mu.Unlock()
			b.Ack(ctx, nil)
		}
	}()
	return k, func() {
		cancel()
		<-done
		ctx, c := context.WithTimeout(context.Background(), time.Minute)
		defer c()
		w.Close(ctx)
	}
}

// engineFor builds an engine over a quiet queue-like stream (no Through)
// on the plain server.
func engineFor(t *testing.T, store Store, chunk int) (*Engine, *sink, func()) {
	w := NewSource(newScript(), false)
	k, stop := pipe(t, w)
	return &Engine{Store: store, Source: w, MySQL: newRefetcher(t, plainAddr), Owner: "test",
		Config: Config{Chunk: chunk, Poll: 20 * time.Millisecond}}, k, stop
}

// waitState polls the store until the table's state has status.
func waitState(t *testing.T, store Store, name string, status Status) State {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		states, _ := store.List(context.Background())
		for _, st := range states {
			if st.Name() == name && st.Status == status {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never %s: %+v", name, status, states)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEngine: a whole table, a resumed one (cursor saved by a dead owner),
// a key list with a deleted key, a keyless table and a missing one.
func TestEngine(t *testing.T) {
	_, s := testSchema(t, plainAddr,
		"CREATE TABLE $S.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO $S.t VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e')",
		"CREATE TABLE $S.nokey (v INT)")
	store := NewMemory()
	e, k, stop := engineFor(t, store, 2)
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- e.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	now := time.Now()

	store.Request(ctx, State{DB: s, Table: "t", ID: "1", Status: Requested, Requested: now})
	st := waitState(t, store, s+".t", Done)
	if st.Rows != 5 || st.Chunks != 3 || !slicesEqual(st.Cursor, []string{"5"}) || st.Owner != "test" || st.Finished.IsZero() {
		t.Fatalf("done state %+v", st)
	}
	if len(k.rows) != 5 {
		t.Fatalf("sink %v", k.rows)
	}

	// a Running state left by a dead owner resumes after its cursor
	clear(k.rows)
	store.Request(ctx, State{DB: s, Table: "t", ID: "2", Status: Running, Cursor: []string{"3"}, Rows: 3, Owner: "dead", Requested: now})
	st = waitState(t, store, s+".t", Done)
	if st.Rows != 5 || len(k.rows) != 2 || k.rows["4"] == nil || k.rows["5"] == nil {
		t.Fatalf("resumed: state %+v, sink %v", st, k.rows)
	}

	// a key list: key 9 has no row and becomes a Delete
	k.rows["9"] = cdc.RowOf("id", int64(9))
	store.Request(ctx, State{DB: s, Table: "t", ID: "3", Status: Requested, Keys: [][]string{{"2"}, {"9"}}, Requested: now})
	st = waitState(t, store, s+".t", Done)
	if st.Rows != 2 || st.Estimate != 2 || k.rows["9"] != nil || k.rows["2"].Get("v") != "b" {
		t.Fatalf("keys: state %+v, sink %v", st, k.rows)
	}

	for _, table := range []string{"nokey", "gone"} {
		store.Request(ctx, State{DB: s, Table: table, ID: "4", Status: Requested, Requested: now})
		st = waitState(t, store, s+"."+table, Failed)
		if st.Error == "" {
			t.Fatalf("%s failed without an error: %+v", table, st)
		}
		t.Logf("%s: %s", table, st.Error)
	}
}

// TestEngineOtherServer: rows read from another server than the stream's
// cannot be ordered by its binlog positions: the backfill fails.
func TestEngineOtherServer(t *testing.T) {
	_, s := testSchema(t, plainAddr, "CREATE TABLE $S.t (id INT PRIMARY KEY)")
	store := NewMemory()
	e, _, stop := engineFor(t, store, 2)
	defer stop()
	e.StreamServer = func(context.Context) (uint64, error) { return 4242424, nil }
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- e.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	store.Request(ctx, State{DB: s, Table: "t", ID: "1", Status: Requested, Requested: time.Now()})
	st := waitState(t, store, s+".t", Failed)
	if !strings.Contains(st.Error, "server_id 4242424") {
		t.Fatalf("error %q", st.Error)
	}
}

// TestEngineCancel: a cancelled backfill stops between chunks.
func TestEngineCancel(t *testing.T) {
	var rows []string
	for i := 1; i <= 50; i++ {
		rows = append(rows, fmt.Sprintf("(%d,'x')", i))
	}
	_, s := testSchema(t, plainAddr, "CREATE TABLE $S.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO $S.t VALUES "+strings.Join(rows, ","))
	store := NewMemory()
	// cancelled before the owner picks it up: it stops before the first chunk
	store.Request(context.Background(), State{DB: s, Table: "t", ID: "1", Status: Requested, Requested: time.Now()})
	store.Cancel(context.Background(), s, "t")
	e, k, stop := engineFor(t, store, 1)
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- e.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	st := waitState(t, store, s+".t", Cancelled)
	if st.Chunks != 0 || len(k.rows) != 0 || st.Finished.IsZero() {
		t.Fatalf("cancelled: %+v, sink %d rows", st, len(k.rows))
	}
}

func slicesEqual(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}
