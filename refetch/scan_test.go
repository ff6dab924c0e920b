package refetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rowsync/rowsync/cdc"
)

// scanAll reads a whole table and returns its rows and the chunk sizes.
func scanAll(t *testing.T, r *Refetcher, db, table string, chunk int) ([]*cdc.Row, []int, *Cursor) {
	t.Helper()
	c, err := r.Scan(ctxT(t), db, table, chunk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var rows []*cdc.Row
	var sizes []int
	for {
		got, bad, err := c.Next(ctxT(t))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bad) > 0 {
			t.Fatalf("bad rows: %+v", bad)
		}
		if len(got) > chunk {
			t.Fatalf("chunk of %d rows, limit %d", len(got), chunk)
		}
		rows = append(rows, got...)
		sizes = append(sizes, len(got))
	}
	if _, _, err := c.Next(ctxT(t)); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after the end = %v, want io.EOF", err)
	}
	return rows, sizes, c
}

// TestScanAllTypesEqualsRefetch: a scanned row is the refetched row, typed
// as the binlog path types it, read in primary-key order.
func TestScanAllTypesEqualsRefetch(t *testing.T) {
	s, _ := schema(t, "scan_alltypes", allTypesDDL, allTypesRows)
	r := newRefetcher(t, Config{})
	rows, sizes, c := scanAll(t, r, s, "all_types", 2)
	if !slices.Equal(c.PK(), []string{"id", "code"}) {
		t.Fatalf("pk = %v", c.PK())
	}
	if !slices.Equal(sizes, []int{2, 1}) {
		t.Fatalf("chunk sizes = %v, want [2 1]", sizes)
	}
	want := []*cdc.Row{rowA, rowB1, rowB2} // (1,a) < (1,b) < (2,b)
	if !rowsEqual(rows, want) {
		for i := range want {
			for col, v := range want[i].All() {
				if i < len(rows) && !reflect.DeepEqual(rows[i].Get(col), v) {
					t.Errorf("row %d column %s: got %#v (%T), want %#v (%T)", i, col, rows[i].Get(col), rows[i].Get(col), v, v)
				}
			}
		}
		t.Fatalf("rows differ: got %d rows", len(rows))
	}
	// rows carry the table's columns in ordinal order, all of one layout
	var names []string
	for _, col := range c.Columns() {
		names = append(names, col.Name)
	}
	for i, row := range rows {
		if !slices.Equal(row.Names(), names) || row.Layout() != rows[0].Layout() {
			t.Errorf("row %d: columns %v (layout %p), want %v (layout %p)", i, row.Names(), row.Layout(), names, rows[0].Layout())
		}
	}
	var evs []cdc.Event
	for _, row := range rows {
		evs = append(evs, cdc.Event{DB: s, Table: "all_types", Op: cdc.Insert, PK: c.PK(), After: cdc.RowOf("id", row.Get("id"), "code", row.Get("code"))})
	}
	out, err := r.Refetch(ctxT(t), evs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if !out[i].After.Equal(rows[i]) {
			t.Errorf("row %d: scan %v, refetch %v", i, rows[i], out[i].After)
		}
		if !reflect.DeepEqual(out[i].Columns, c.Columns()) {
			t.Errorf("row %d: scan columns differ from refetch columns", i)
		}
	}
}

// TestScanPaginationBoundaries reads tables whose size is below, at and
// above multiples of the chunk, with single and composite keys, and
// counts the queries: a short chunk ends the scan without another query.
func TestScanPaginationBoundaries(t *testing.T) {
	stmts := []string{}
	sizes := []int{0, 1, 2, 3, 4, 6, 7}
	for _, n := range sizes {
		stmts = append(stmts,
			fmt.Sprintf("CREATE TABLE $S.single_%d (id INT PRIMARY KEY, v VARCHAR(10))", n),
			fmt.Sprintf("CREATE TABLE $S.multi_%d (a INT, b VARCHAR(5), c INT, v INT, PRIMARY KEY (a, b, c))", n))
		for i := 0; i < n; i++ {
			// ids out of insertion order; composite keys share prefixes
			stmts = append(stmts,
				fmt.Sprintf("INSERT INTO $S.single_%d VALUES (%d, 'v%d')", n, (i*5)%11+100*i, i),
				fmt.Sprintf("INSERT INTO $S.multi_%d VALUES (%d, '%s', %d, %d)", n, i%2, []string{"x", "y"}[i/2%2], 10-i, i))
		}
	}
	s, db := schema(t, "scan_pages", stmts...)
	r := newRefetcher(t, Config{})
	for _, n := range sizes {
		for _, tc := range []struct{ table, order string }{
			{fmt.Sprintf("single_%d", n), "id"},
			{fmt.Sprintf("multi_%d", n), "a, b, c"},
		} {
			t.Run(tc.table, func(t *testing.T) {
				before := r.queries.Load()
				rows, chunks, _ := scanAll(t, r, s, tc.table, 3)
				queries := r.queries.Load() - before
				wantQueries := int64(n/3 + 1) // an exact multiple needs one empty read
				if queries != wantQueries {
					t.Errorf("%d rows in chunks %v took %d queries, want %d", len(rows), chunks, queries, wantQueries)
				}
				// the server's own order
				res, err := db.QueryContext(ctxT(t), "SELECT CONCAT_WS('|', "+tc.order+") FROM "+s+"."+tc.table+" ORDER BY "+tc.order)
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for res.Next() {
					var k string
					res.Scan(&k)
					want = append(want, k)
				}
				res.Close()
				var got []string
				for _, row := range rows {
					var parts []string
					for _, c := range strings.Split(tc.order, ", ") {
						parts = append(parts, fmt.Sprint(row.Get(c)))
					}
					got = append(got, strings.Join(parts, "|"))
				}
				if !slices.Equal(got, want) {
					t.Fatalf("keys %v, want %v", got, want)
				}
			})
		}
	}
}

// TestScanKeyOrders pages (one row per chunk) through key types whose
// comparison is easy to get wrong: ENUM sorts by index, a case-insensitive
// collation, bytes, FLOAT, DECIMAL, DATETIME, negative numbers.
func TestScanKeyOrders(t *testing.T) {
	s, db := schema(t, "scan_keyorders",
		"CREATE TABLE $S.kenum (k ENUM('zeta','alpha','mid') PRIMARY KEY, v INT)",
		"INSERT INTO $S.kenum VALUES ('alpha',1),('zeta',2),('mid',3)",
		"CREATE TABLE $S.kci (k VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT)",
		"INSERT INTO $S.kci VALUES ('b',1),('A',2),('C',3),('é',4),('D ',5)",
		"CREATE TABLE $S.kbin (k VARBINARY(4) PRIMARY KEY, v INT)",
		"INSERT INTO $S.kbin VALUES (x'00',1),(x'ff',2),(x'7f00',3),('',4),(x'0000',5)",
		"CREATE TABLE $S.kfloat (k FLOAT PRIMARY KEY, v INT)",
		"INSERT INTO $S.kfloat VALUES (0.1,1),(123456.789,2),(-1.5,3),(1e30,4),(0.10000001,5)",
		"CREATE TABLE $S.kdec (k DECIMAL(8,3), j DATETIME(3), v INT, PRIMARY KEY (k, j))",
		"INSERT INTO $S.kdec VALUES (-1.5,'2024-01-01 00:00:00.001',1),(-1.5,'2024-01-01 00:00:00',2),(2,'1999-12-31 23:59:59.999',3),(-10,'2030-01-01',4)",
		"CREATE TABLE $S.kneg (k BIGINT PRIMARY KEY, v INT)",
		"INSERT INTO $S.kneg VALUES (-9223372036854775808,1),(-1,2),(0,3),(9223372036854775807,4)",
	)
	r := newRefetcher(t, Config{})
	for _, table := range []string{"kenum", "kci", "kbin", "kfloat", "kdec", "kneg"} {
		t.Run(table, func(t *testing.T) {
			rows, _, c := scanAll(t, r, s, table, 1)
			res, err := db.QueryContext(ctxT(t), "SELECT v FROM "+s+"."+table+" ORDER BY "+strings.Join(c.PK(), ","))
			if err != nil {
				t.Fatal(err)
			}
			var want []int64
			for res.Next() {
				var v int64
				res.Scan(&v)
				want = append(want, v)
			}
			res.Close()
			var got []int64
			for _, row := range rows {
				got = append(got, row.Get("v").(int64))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("rows by v: %v, want the server's order %v", got, want)
			}
		})
	}
}

// TestScanKeylessTable reads a table without a primary key in one
// streaming scan, chunk by chunk.
func TestScanKeylessTable(t *testing.T) {
	s, _ := schema(t, "scan_keyless",
		"CREATE TABLE $S.log (at DATETIME, msg VARCHAR(20))",
		"INSERT INTO $S.log VALUES ('2024-01-01 00:00:00','a'),('2024-01-01 00:00:00','a'),(NULL,'b'),('2024-01-02 00:00:00',NULL),"+
			"('2024-01-03 00:00:00','c'),('2024-01-04 00:00:00','d'),('2024-01-05 00:00:00','e')")
	r := newRefetcher(t, Config{})
	rows, sizes, c := scanAll(t, r, s, "log", 3)
	if c.PK() != nil {
		t.Fatalf("pk = %v, want none", c.PK())
	}
	if !slices.Equal(sizes, []int{3, 3, 1}) {
		t.Fatalf("chunk sizes = %v", sizes)
	}
	var got []string
	for _, row := range rows {
		got = append(got, fmt.Sprint(row.Get("at"), "/", row.Get("msg")))
	}
	slices.Sort(got)
	want := []string{"2024-01-01 00:00:00 +0000 UTC/a", "2024-01-01 00:00:00 +0000 UTC/a", "2024-01-02 00:00:00 +0000 UTC/<nil>",
		"2024-01-03 00:00:00 +0000 UTC/c", "2024-01-04 00:00:00 +0000 UTC/d", "2024-01-05 00:00:00 +0000 UTC/e", "<nil>/b"}
	if !slices.Equal(got, want) {
		t.Fatalf("rows %v\nwant %v", got, want)
	}

	// Closing mid-scan releases the open query.
	c2, err := r.Scan(ctxT(t), s, "log", 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := c2.Next(ctxT(t)); err != nil || len(got) != 2 {
		t.Fatalf("first chunk: %d rows, %v", len(got), err)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c2.Next(ctxT(t)); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after Close = %v", err)
	}
	// the pool still works
	if err := r.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestScanMissingTableAndCancel(t *testing.T) {
	s, _ := schema(t, "scan_missing", "CREATE TABLE $S.t (id INT PRIMARY KEY)", "INSERT INTO $S.t VALUES (1),(2)")
	r := newRefetcher(t, Config{})
	if _, err := r.Scan(ctxT(t), s, "nope", 3); err == nil || !errors.Is(err, ErrNoTable) {
		t.Fatalf("scan of a missing table = %v", err)
	}
	c, err := r.Scan(ctxT(t), s, "t", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := c.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next on a cancelled context = %v", err)
	}
	// a keyed cursor resumes after an error
	rows, _, err := c.Next(ctxT(t))
	if err != nil || len(rows) != 1 || rows[0].Get("id") != int64(1) {
		t.Fatalf("after the error: %v %v", rows, err)
	}
}

func TestListTables(t *testing.T) {
	s, _ := schema(t, "scan_list", "CREATE TABLE $S.b (id INT)", "CREATE TABLE $S.a (id INT)", "CREATE VIEW $S.v AS SELECT * FROM $S.a")
	r := newRefetcher(t, Config{})
	got, err := r.ListTables(ctxT(t), func(db, _ string) bool { return db == s || db == "mysql" })
	if err != nil {
		t.Fatal(err)
	}
	if want := [][2]string{{s, "a"}, {s, "b"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("tables %v, want %v", got, want)
	}
}
