package backfill

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/mysqlmeta"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// statusStates has one backfill of every kind --status prints.
func statusStates() []State {
	return []State{
		{DB: "shop", Table: "users", ID: "a1", Status: Done, Rows: 100000, Chunks: 100, Estimate: 98000,
			Cursor: []string{"100000"}, Requested: t0, Started: t0.Add(2 * time.Second), Updated: t0.Add(42 * time.Second),
			Finished: t0.Add(42 * time.Second)},
		{DB: "shop", Table: "orders", ID: "b2", Status: Running, Rows: 1500, Chunks: 3, Estimate: 6000,
			Cursor: []string{"17", "a long order number that goes on and on"}, Requested: t0.Add(time.Minute),
			Started: t0.Add(61 * time.Second), Updated: t0.Add(64 * time.Second)},
		{DB: "shop", Table: "carts", ID: "c3", Status: Requested, Requested: t0.Add(2 * time.Minute)},
		{DB: "billing", Table: "invoices", ID: "d4", Status: Failed, Rows: 10, Chunks: 1, Cursor: []string{"10"},
			Requested: t0.Add(3 * time.Minute), Started: t0.Add(3 * time.Minute), Updated: t0.Add(3*time.Minute + time.Second),
			Finished: t0.Add(3*time.Minute + 2*time.Second), Error: "scan billing.invoices: table dropped\nduring the backfill"},
		{DB: "shop", Table: "items", ID: "e5", Status: Cancelled, Rows: 0, Keys: [][]string{{"1"}, {"2"}}, Estimate: 2,
			Requested: t0.Add(4 * time.Minute), Started: t0.Add(4 * time.Minute), Finished: t0.Add(4 * time.Minute)},
	}
}

func TestWriteStatusGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteStatus(&b, statusStates()); err != nil {
		t.Fatal(err)
	}
	golden(t, "status.golden", b.String())
}

func TestProgressAndOwnerLines(t *testing.T) {
	var b strings.Builder
	for _, st := range statusStates() {
		fmt.Fprintln(&b, ProgressLine(st))
	}
	now := t0.Add(time.Hour)
	fmt.Fprintln(&b, OwnerLine("shop-sync", "host-a/4711", now.Add(-3*time.Second), now, "x"))
	fmt.Fprintln(&b, OwnerLine("shop-sync", "host-a/4711", now.Add(-OwnerTimeout), now, "the request waits for it"))
	fmt.Fprintln(&b, OwnerLine("shop-sync", "", time.Time{}, now, "requests wait for it"))
	golden(t, "progress.golden", b.String())
}

// mariaDB returns a connection to the MariaDB on 3306 and a schema of
// this test's own, dropped at the end.
func mariaDB(t *testing.T) (*sql.DB, string) {
	t.Helper()
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("mariadb on 127.0.0.1:3306: %v", err)
	}
	schema := fmt.Sprintf("rs_bf_%s_%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_")), os.Getpid())
	t.Cleanup(func() {
		db.Exec("DROP DATABASE IF EXISTS " + schema)
		db.Close()
	})
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+schema+"; CREATE DATABASE "+schema); err != nil {
		t.Fatal(err)
	}
	return db, schema
}

func TestResolve(t *testing.T) {
	db, s := mariaDB(t)
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE %s.users (id INT PRIMARY KEY)",
		"CREATE TABLE %s.orders (user_id INT, n INT, PRIMARY KEY (user_id, n))",
		"CREATE TABLE %s.log (line TEXT)",            // no primary key
		"CREATE TABLE %s.other (id INT PRIMARY KEY)", // not routed
		"CREATE TABLE %s.`a+b` (id INT PRIMARY KEY)", // a name that is also a regex
		"CREATE TABLE %s.aab (id INT PRIMARY KEY)",
		"CREATE VIEW %s.v AS SELECT id FROM %s.users",
	} {
		if _, err := db.Exec(strings.ReplaceAll(q, "%s", s)); err != nil {
			t.Fatal(err)
		}
	}
	routed := func(d, tb string) bool { return d == s && tb != "other" }
	cat := mysqlmeta.NewCatalog(db)
	for _, c := range []struct {
		name     string
		names    []string
		want     []string
		problems []string
	}{
		{"exact", []string{s + ".users"}, []string{"users"}, nil},
		{"regex and exact overlap", []string{s + `\.(users|orders)`, s + ".users"}, []string{"orders", "users"}, nil},
		{"regex skips unrouted", []string{s + `\.(users|other)`}, []string{"users"}, nil},
		{"an exact name is not a regex", []string{s + ".a+b"}, []string{"a+b"}, nil},
		{"a regex", []string{s + `\.a+b`}, []string{"aab"}, nil},
		{"every problem named", []string{s + ".missing", s + ".other", s + ".log", s + `\.zz.*`, s + `\.oth.*`, s + ".v"}, nil, []string{
			s + ".missing: no such table in MySQL",
			s + ".other: the pipeline streams it into no sink",
			s + `\.zz.*: no such table in MySQL`,
			s + `\.oth.*: matches 1 table(s), none that the pipeline streams into a sink`,
			s + ".v: no such table in MySQL",
			s + ".log: no primary key",
		}},
		{"none", nil, nil, []string{"no table named"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Resolve(ctx, cat, c.names, routed)
			var sel *SelectionError
			if c.problems != nil {
				if !errors.As(err, &sel) || len(sel.Problems) != len(c.problems) {
					t.Fatalf("Resolve = %v, %v; want problems %q", got, err, c.problems)
				}
				for i, p := range c.problems {
					if !strings.HasPrefix(sel.Problems[i], p) {
						t.Errorf("problem %d = %q; want it to start with %q", i, sel.Problems[i], p)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tb := range got {
				if tb[0] != s {
					t.Fatalf("table of another schema: %v", tb)
				}
				names = append(names, tb[1])
			}
			if !reflect.DeepEqual(names, c.want) {
				t.Fatalf("Resolve = %v; want %v", names, c.want)
			}
		})
	}
}

func TestRequestTablesAndCancel(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	subs, err := RequestTables(ctx, s, [][2]string{{"shop", "users"}, {"shop", "orders"}}, 250, t0)
	if err != nil || len(subs) != 2 || subs[0].Already || subs[0].State.Chunk != 250 || subs[0].State.ID == subs[1].State.ID {
		t.Fatalf("RequestTables = %+v, %v", subs, err)
	}
	again, err := RequestTables(ctx, s, [][2]string{{"shop", "users"}}, 0, t0.Add(time.Second))
	if err != nil || len(again) != 1 || !again[0].Already || again[0].State.ID != subs[0].State.ID {
		t.Fatalf("second request of an active table = %+v, %v; want the active one kept", again, err)
	}
	st, ok, err := CancelTable(ctx, s, "shop.users")
	if err != nil || !ok || st.ID != subs[0].State.ID {
		t.Fatalf("CancelTable = %+v %v %v", st, ok, err)
	}
	if c, _ := s.Cancelled(ctx, "shop", "users", st.ID); !c {
		t.Fatal("not flagged")
	}
	if _, ok, err := CancelTable(ctx, s, "shop.nothing"); ok || err != nil {
		t.Fatalf("CancelTable of no backfill = %v, %v", ok, err)
	}
	done := subs[1].State
	done.Status = Done
	if err := s.Update(ctx, done); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := CancelTable(ctx, s, "shop.orders"); ok || err != nil {
		t.Fatalf("CancelTable of a finished backfill = %v, %v", ok, err)
	}
}

// TestWait follows two backfills that an owner, running beside it, takes
// through progress to their ends, one replaced by a newer request.
func TestWait(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	subs, err := RequestTables(ctx, s, [][2]string{{"shop", "users"}, {"shop", "orders"}}, 0, t0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []int64
	var wg sync.WaitGroup
	wg.Go(func() { // the owner
		u := subs[0].State
		u.Status = Running
		for r := int64(1); r <= 5; r++ {
			u.Rows = r * 100
			if err := s.Update(ctx, u); err != nil {
				t.Error(err)
				return
			}
			for { // let the waiter see this step
				mu.Lock()
				n := len(seen)
				last := int64(-1)
				if n > 0 {
					last = seen[n-1]
				}
				mu.Unlock()
				if last == u.Rows {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		u.Status = Done
		if err := s.Update(ctx, u); err != nil {
			t.Error(err)
		}
		o := subs[1].State
		o.Status = Failed
		if err := s.Update(ctx, o); err != nil {
			t.Error(err)
		}
		if err := s.Request(ctx, State{DB: "shop", Table: "orders", ID: "newer", Status: Requested}); err != nil {
			t.Error(err)
		}
	})
	want := []State{subs[0].State, subs[1].State}
	got, err := Wait(ctx, s, want, time.Millisecond, func(cur []State, err error) {
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		seen = append(seen, cur[0].Rows)
		mu.Unlock()
	})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Status != Done || got[0].Rows != 500 {
		t.Fatalf("users ended %+v", got[0])
	}
	// The failure may be seen, or only its replacement.
	if got[1].Status != Failed || got[1].ID != subs[1].State.ID {
		t.Fatalf("orders ended %+v", got[1])
	}

	// A cancelled context stops the waiting, not the backfill.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Wait(cctx, s, []State{{DB: "shop", Table: "orders", ID: "newer", Status: Requested}}, time.Millisecond, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context = %v", err)
	}
}
