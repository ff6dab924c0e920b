package refetch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

const allTypesDDL = "CREATE TABLE $S.all_types (" +
	"id INT NOT NULL, code VARCHAR(20) NOT NULL," +
	"amount DECIMAL(12,2), whole DECIMAL(5,0), created DATETIME(3), day DATE," +
	"ts TIMESTAMP(6) NULL DEFAULT NULL, dur TIME(2), data BLOB, bin BINARY(4), doc JSON," +
	"state ENUM('new','paid','shipped'), tags SET('a','b','c'), flags BIT(10), yr YEAR," +
	"big BIGINT UNSIGNED, neg BIGINT, tiny TINYINT UNSIGNED, f FLOAT, d DOUBLE," +
	"name VARCHAR(50), note TEXT, PRIMARY KEY (id, code))"

// The session time zone of the insert is +05:00: TIMESTAMP values must
// come back as the UTC instant whatever zone wrote them.
const allTypesRows = "SET time_zone = '+05:00'; INSERT INTO $S.all_types VALUES " +
	"(1,'a', 1234.5, -42, '2024-01-02 03:04:05.678', '2024-02-29', '2024-03-04 10:00:00.123456', '-12:34:56.78'," +
	" x'000102ff', 'ab', '{\"k\": [1, 2]}', 'paid', 'c,a', b'1010101010', 2024, 18446744073709551615," +
	" -9223372036854775808, 255, 123456.789, 0.1e0+0.2e0, 'héllo ✓', 'long text')," +
	"(2,'b', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)," +
	"(1,'b', 0, 0, '1000-01-01 00:00:00', '1000-01-01', '1970-01-01 05:00:01', '838:59:59', '', ''," +
	" '[]', 'new', '', 0, 1901, 0, 0, 0, -1.5, 1e300, '', '')"

var allTypesCols = []string{"id", "code", "amount", "whole", "created", "day", "ts", "dur", "data", "bin",
	"doc", "state", "tags", "flags", "yr", "big", "neg", "tiny", "f", "d", "name", "note"}

func utc(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
	return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
}

var (
	rowA  = cdc.RowOf("id", int64(1), "code", "a", "amount", cdc.Decimal("1234.50"), "whole", cdc.Decimal("-42"), "created", utc(2024, 1, 2, 3, 4, 5, 678e6), "day", utc(2024, 2, 29, 0, 0, 0, 0), "ts", utc(2024, 3, 4, 5, 0, 0, 123456000), "dur", -(12*time.Hour + 34*time.Minute + 56*time.Second + 780*time.Millisecond), "data", []byte{0, 1, 2, 0xff}, "bin", []byte("ab\x00\x00"), "doc", cdc.JSON(`{"k": [1, 2]}`), "state", "paid", "tags", cdc.Set{"a", "c"}, "flags", int64(682), "yr", int64(2024), "big", uint64(math.MaxUint64), "neg", int64(math.MinInt64), "tiny", int64(255), "f", float64(float32(123456.789)), "d", sum(0.1, 0.2), "name", "héllo ✓", "note", "long text")
	rowB2 = func() *cdc.Row {
		r := cdc.RowOf("id", int64(2), "code", "b")
		for _, c := range allTypesCols[2:] {
			r.Set(c, nil)
		}
		return r
	}()
	rowB1 = cdc.RowOf("id", int64(1), "code", "b", "amount", cdc.Decimal("0.00"), "whole", cdc.Decimal("0"), "created", utc(1000, 1, 1, 0, 0, 0, 0), "day", utc(1000, 1, 1, 0, 0, 0, 0), "ts", utc(1970, 1, 1, 0, 0, 1, 0), "dur", 838*time.Hour+59*time.Minute+59*time.Second, "data", []byte{}, "bin", []byte{0, 0, 0, 0}, "doc", cdc.JSON("[]"), "state", "new", "tags", cdc.Set{}, "flags", int64(0), "yr", int64(1901), "big", int64(0), "neg", int64(0), "tiny", int64(0), "f", -1.5, "d", 1e300, "name", "", "note", "")
)

// sum adds at run time (a constant 0.1 + 0.2 is exactly 0.3).
func sum(a, b float64) float64 { return a + b }

func pos(v uint64) cdc.Position {
	return cdc.Position{Version: v, Text: fmt.Sprintf("bin.000001:%d", v)}
}

func at(sec int) time.Time { return time.Unix(int64(1700000000+sec), 0).UTC() }

// TestRefetchAllTypes feeds out-of-order, duplicated and partial events and
// expects exactly the current rows, typed as the binlog path types them.
func TestRefetchAllTypes(t *testing.T) {
	s, _ := schema(t, "alltypes", allTypesDDL, allTypesRows)
	r := newRefetcher(t, Config{})
	pk := []string{"id", "code"}
	ev := func(op cdc.Op, before, after *cdc.Row, v uint64) cdc.Event {
		return cdc.Event{DB: s, Table: "all_types", Op: op, PK: pk, Before: before, After: after, Commit: at(int(v)), Pos: pos(v)}
	}
	in := []cdc.Event{
		0: ev(cdc.Update, cdc.RowOf("id", int64(2), "code", "b", "name", "old"), cdc.RowOf("id", int64(2), "code", "b"), 10),
		1: ev(cdc.Insert, nil, cdc.RowOf("id", int64(1), "code", "a"), 5),
		2: ev(cdc.Update, cdc.RowOf("id", int64(1), "code", "a", "name", "x"), cdc.RowOf("id", int64(1), "code", "a", "name", "y"), 4),
		3: ev(cdc.Delete, cdc.RowOf("id", int64(9), "code", "z", "name", "gone"), nil, 12),
		4: ev(cdc.Update, cdc.RowOf("id", int64(2), "code", "b", "name", "old2"), cdc.RowOf("id", int64(2), "code", "b"), 10),
		5: ev(cdc.Insert, nil, cdc.RowOf("id", "1", "code", "b"), 7), // text source: "1" names the int key 1
		6: ev(cdc.Update, cdc.RowOf("id", int64(9), "code", "z"), cdc.RowOf("id", int64(9), "code", "z", "name", "zz"), 11),
	}
	out, err := r.Refetch(ctxT(t), in)
	if err != nil {
		t.Fatal(err)
	}
	strip := func(e cdc.Event) cdc.Event { e.Columns = nil; return e }
	want := []cdc.Event{
		{DB: s, Table: "all_types", Op: cdc.Update, PK: pk, Before: in[2].Before, After: rowA, Commit: at(4), Pos: cdc.Position{Text: pos(4).Text}},
		{DB: s, Table: "all_types", Op: cdc.Update, PK: pk, Before: in[0].Before, After: rowB2, Commit: at(10), Pos: cdc.Position{Text: pos(10).Text}},
		{DB: s, Table: "all_types", Op: cdc.Insert, PK: pk, After: rowB1, Commit: at(7), Pos: cdc.Position{Text: pos(7).Text}},
		{DB: s, Table: "all_types", Op: cdc.Delete, PK: pk, Before: in[6].After, Commit: at(11), Pos: cdc.Position{Text: pos(11).Text}},
	}
	if len(out) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(out), len(want), out)
	}
	for i := range want {
		if got := strip(out[i]); !eventEqual(got, want[i]) {
			t.Errorf("event %d:\n got %s\nwant %s", i, describe(got), describe(want[i]))
			for c, v := range want[i].After.All() {
				if !reflect.DeepEqual(got.After.Get(c), v) {
					t.Errorf("  column %s: got %#v (%T), want %#v (%T)", c, got.After.Get(c), got.After.Get(c), v, v)
				}
			}
		}
	}
	// Columns come from information_schema, in ordinal order; MariaDB JSON
	// (LONGTEXT + json_valid check) is typed JSON.
	for i := 0; i < 3; i++ {
		cols := out[i].Columns
		if len(cols) != len(allTypesCols) {
			t.Fatalf("event %d: %d columns, want %d", i, len(cols), len(allTypesCols))
		}
		for j, c := range cols {
			if c.Name != allTypesCols[j] {
				t.Errorf("column %d: %s, want %s", j, c.Name, allTypesCols[j])
			}
		}
		if cols[10].Kind != cdc.KindJSON || cols[13].Kind != cdc.KindBit || cols[6].Kind != cdc.KindTimestamp {
			t.Errorf("kinds: doc %s, flags %s, ts %s", cols[10].Kind, cols[13].Kind, cols[6].Kind)
		}
	}
	// The text forms sinks write agree with MySQL's own.
	col := out[0].Columns[4]
	if s, _ := cdc.FormatText(&col, out[0].After.Get("created")); s != "2024-01-02 03:04:05.678" {
		t.Errorf("created renders %q", s)
	}
}

func describe(e cdc.Event) string {
	return fmt.Sprintf("{%s %s.%s pk=%v pos=%+v commit=%s before=%v after=%v}", e.Op, e.DB, e.Table, e.PK, e.Pos,
		e.Commit.Format(time.RFC3339), e.Before, e.After)
}

// TestRefetchKeyForms: the same key spelled by different sources (binlog
// types, text, bytes) finds its row; identifiers are quoted safely.
func TestRefetchKeyForms(t *testing.T) {
	s, _ := schema(t, "keyforms",
		"CREATE TABLE $S.kdec (k DECIMAL(6,2) PRIMARY KEY, v INT)",
		"INSERT INTO $S.kdec VALUES (1.5, 1), (-2, 2)",
		"CREATE TABLE $S.kdt (k DATETIME(3) PRIMARY KEY, v INT)",
		"INSERT INTO $S.kdt VALUES ('2024-01-02 03:04:05.600', 1)",
		"CREATE TABLE $S.kbin (k VARBINARY(8) PRIMARY KEY, v INT)",
		"INSERT INTO $S.kbin VALUES (x'00ff27', 1)",
		"CREATE TABLE $S.ku64 (k BIGINT UNSIGNED PRIMARY KEY, v INT)",
		"INSERT INTO $S.ku64 VALUES (18446744073709551615, 1)",
		"CREATE TABLE $S.ktime (k TIME PRIMARY KEY, v INT)",
		"INSERT INTO $S.ktime VALUES ('-01:02:03', 1)",
		"CREATE TABLE $S.`we``ird` (`i``d` VARCHAR(10) PRIMARY KEY, `select` INT)",
		"INSERT INTO $S.`we``ird` VALUES ('it''s', 7)",
	)
	r := newRefetcher(t, Config{})
	dt := utc(2024, 1, 2, 3, 4, 5, 600e6)
	tests := []struct {
		name, table, pk string
		key             cdc.Value
		want            *cdc.Row
	}{
		{"decimal typed", "kdec", "k", cdc.Decimal("1.50"), cdc.RowOf("k", cdc.Decimal("1.50"), "v", int64(1))},
		{"decimal short text", "kdec", "k", "1.5", cdc.RowOf("k", cdc.Decimal("1.50"), "v", int64(1))},
		{"decimal integer", "kdec", "k", int64(-2), cdc.RowOf("k", cdc.Decimal("-2.00"), "v", int64(2))},
		{"datetime typed", "kdt", "k", dt, cdc.RowOf("k", dt, "v", int64(1))},
		{"datetime text", "kdt", "k", "2024-01-02 03:04:05.6", cdc.RowOf("k", dt, "v", int64(1))},
		{"varbinary bytes", "kbin", "k", []byte{0, 0xff, '\''}, cdc.RowOf("k", []byte{0, 0xff, '\''}, "v", int64(1))},
		{"varbinary string", "kbin", "k", "\x00\xff'", cdc.RowOf("k", []byte{0, 0xff, '\''}, "v", int64(1))},
		{"uint64 max typed", "ku64", "k", uint64(math.MaxUint64), cdc.RowOf("k", uint64(math.MaxUint64), "v", int64(1))},
		{"uint64 max text", "ku64", "k", "18446744073709551615", cdc.RowOf("k", uint64(math.MaxUint64), "v", int64(1))},
		{"time typed", "ktime", "k", -(time.Hour + 2*time.Minute + 3*time.Second), cdc.RowOf("k", -(time.Hour + 2*time.Minute + 3*time.Second), "v", int64(1))},
		{"quoted identifiers", "we`ird", "i`d", "it's", cdc.RowOf("i`d", "it's", "select", int64(7))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []cdc.Event{{DB: s, Table: tc.table, Op: cdc.Update, PK: []string{tc.pk}, After: cdc.RowOf(tc.pk, tc.key)}}
			out, err := r.Refetch(ctxT(t), in)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 || out[0].Op != cdc.Update || !out[0].After.Equal(tc.want) {
				t.Fatalf("got %+v, want one update with %v", out, tc.want)
			}
		})
	}
}

// TestRefetchChunking reads 12 keys with chunk_size 3 in 4 queries.
func TestRefetchChunking(t *testing.T) {
	s, _ := schema(t, "chunking",
		"CREATE TABLE $S.kv (id BIGINT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO $S.kv VALUES (1,'v1'),(2,'v2'),(3,'v3'),(4,'v4'),(5,'v5'),(6,'v6'),(7,'v7'),(8,'v8'),(9,'v9'),(10,'v10')",
	)
	r := newRefetcher(t, Config{ChunkSize: 3})
	var in []cdc.Event
	for _, id := range []int64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 11, 12, 1} {
		in = append(in, cdc.Event{DB: s, Table: "kv", Op: cdc.Update, PK: []string{"id"},
			After: cdc.RowOf("id", id, "v", "stale"), Pos: pos(uint64(len(in) + 1))})
	}
	before := r.queries.Load()
	out, err := r.Refetch(ctxT(t), in)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.queries.Load() - before; n != 4 {
		t.Errorf("%d queries, want 4 (12 distinct keys, chunks of 3)", n)
	}
	var got []string
	for _, e := range out {
		if e.Op == cdc.Delete {
			got = append(got, fmt.Sprintf("delete %v", e.Before.Get("id")))
			continue
		}
		got = append(got, fmt.Sprintf("%v=%v", e.After.Get("id"), e.After.Get("v")))
	}
	want := "10=v10 9=v9 8=v8 7=v7 6=v6 5=v5 4=v4 3=v3 2=v2 delete 11 delete 12 1=v1"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
}

// TestRefetchHotKeys: a batch of many changes of few rows (2,000 changes
// of 5 rows, keys spelled as int64 and as text the way different sources
// do) reads each row once, in one query, and returns one event per row.
func TestRefetchHotKeys(t *testing.T) {
	s, _ := schema(t, "hotkeys",
		"CREATE TABLE $S.kv (id BIGINT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO $S.kv VALUES (1,'v1'),(2,'v2'),(3,'v3'),(4,'v4'),(5,'v5')",
	)
	r := newRefetcher(t, Config{})
	var in []cdc.Event
	for i := range 2000 {
		var id cdc.Value = int64(i%5 + 1)
		if i%2 == 1 {
			id = strconv.Itoa(i%5 + 1)
		}
		in = append(in, cdc.Event{DB: s, Table: "kv", Op: cdc.Update, PK: []string{"id"},
			After: cdc.RowOf("id", id, "v", "stale"), Pos: pos(uint64(i + 1))})
	}
	before := r.queries.Load()
	out, err := r.Refetch(ctxT(t), in)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.queries.Load() - before; n != 1 {
		t.Errorf("%d queries, want 1 (5 distinct keys)", n)
	}
	var got []string
	for _, e := range out {
		got = append(got, fmt.Sprintf("%v=%v", e.After.Get("id"), e.After.Get("v")))
	}
	// ordered by each key's last change: ids 1..5 last change at 1996..2000
	if want := "1=v1 2=v2 3=v3 4=v4 5=v5"; strings.Join(got, " ") != want {
		t.Errorf("got %s, want %s", strings.Join(got, " "), want)
	}
}

// TestRefetchUnsignedKeysUseTheIndex: BIGINT UNSIGNED keys above 2^63-1
// mixed with small ones in one batch are all read, and the query goes
// through the primary key (a bare literal above 2^63-1 is a DECIMAL to
// MySQL, and an IN list mixing it with integers was a full scan).
func TestRefetchUnsignedKeysUseTheIndex(t *testing.T) {
	s, _ := schema(t, "unsigned",
		"CREATE TABLE $S.u (id BIGINT UNSIGNED PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO $S.u SELECT seq, 'small' FROM $S.seq_1_to_3000",
		"INSERT INTO $S.u SELECT 18446744073709551615 - seq, 'big' FROM $S.seq_0_to_399",
		"ANALYZE TABLE $S.u",
	)
	r := newRefetcher(t, Config{})
	var in []cdc.Event
	add := func(id cdc.Value) {
		in = append(in, cdc.Event{DB: s, Table: "u", Op: cdc.Update, PK: []string{"id"},
			After: cdc.RowOf("id", id, "v", "stale"), Pos: pos(uint64(len(in) + 1))})
	}
	for i := range 200 {
		add(int64(i*7 + 1))
		if i%20 == 0 {
			add(uint64(math.MaxUint64) - uint64(i))
		}
	}
	add(uint64(math.MaxUint64) - 1000) // no such row
	out, err := r.Refetch(ctxT(t), in)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, e := range out {
		if e.Op == cdc.Delete {
			found["deleted"]++
			continue
		}
		found[e.After.Get("v").(string)]++
	}
	if found["small"] != 200 || found["big"] != 10 || found["deleted"] != 1 {
		t.Fatalf("read %v, want 200 small, 10 big, 1 deleted", found)
	}

	var be cdc.BatchError
	groups, order := r.groupEvents(in, &be)
	g := groups[order[0]]
	if err := r.prepare(ctxT(t), g, in, &be); err != nil {
		t.Fatal(err)
	}
	ci, _ := g.ti.Index("id")
	q, args := (&chunk{g: g, keys: g.list}).sql(g.ti, []*cdc.Column{&g.ti.cols[ci]})
	row := make([]sql.NullString, 10)
	dest := make([]any, len(row))
	for i := range row {
		dest[i] = &row[i]
	}
	if err := r.db.QueryRowContext(ctxT(t), "EXPLAIN "+q, args...).Scan(dest...); err != nil {
		t.Fatal(err)
	}
	if typ := row[3].String; typ != "range" {
		t.Errorf("EXPLAIN type %q (key %q), want range: the keys do not go through the primary key", typ, row[5].String)
	}
}

// TestRefetchPermanentFailures: events that can never be re-read come back
// in a BatchError by index, while the others are still refetched.
func TestRefetchPermanentFailures(t *testing.T) {
	s, _ := schema(t, "permanent",
		"CREATE TABLE $S.ok (id INT PRIMARY KEY, v INT)",
		"INSERT INTO $S.ok VALUES (1, 10), (2, 20)",
	)
	r := newRefetcher(t, Config{})
	ok := func(id int64) cdc.Event {
		return cdc.Event{DB: s, Table: "ok", Op: cdc.Update, PK: []string{"id"}, After: cdc.RowOf("id", id)}
	}
	missing := func(db, table string) cdc.Event {
		return cdc.Event{DB: db, Table: table, Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))}
	}
	in := []cdc.Event{
		0: ok(1),
		1: missing(s, "nope"),
		2: {DB: s, Table: "ok", Op: cdc.Update, After: cdc.RowOf("id", int64(2))}, // no PK
		3: missing(s, "nope"),
		4: missing("rs_refetch_no_such_db", "t"),
		5: {DB: s, Table: "ok", Op: cdc.Update, PK: []string{"id"}, After: cdc.RowOf("id", nil)}, // NULL key
		6: ok(2),
		7: {DB: s, Table: "ok", Op: cdc.Update, PK: []string{"nope"}, After: cdc.RowOf("nope", int64(1))}, // key not in table
		8: {DB: s, Table: "ok", Op: cdc.Update, PK: []string{"id"}, After: cdc.RowOf("id", "x")},          // not an int
	}
	out, err := r.Refetch(ctxT(t), in)
	var be *cdc.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *cdc.BatchError", err)
	}
	var failed []int
	for i := range be.Failed {
		failed = append(failed, i)
	}
	sort.Ints(failed)
	if !reflect.DeepEqual(failed, []int{1, 2, 3, 4, 5, 7, 8}) {
		t.Errorf("failed %v, want [1 2 3 4 5 7 8]: %v", failed, be.Failed)
	}
	if e := be.Failed[2]; e == nil || e.Error() != "no primary key" {
		t.Errorf("failed[2] = %v", e)
	}
	if len(out) != 2 || out[0].After.Get("v") != int64(10) || out[1].After.Get("v") != int64(20) {
		t.Errorf("out = %+v", out)
	}
}

// TestRefetchUnreachable: MySQL down is a plain (transient) error.
func TestRefetchUnreachable(t *testing.T) {
	r := newRefetcher(t, Config{DSN: "root@tcp(127.0.0.1:1)/", Timeout: 3 * time.Second})
	in := []cdc.Event{{DB: "d", Table: "t", Op: cdc.Update, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))}}
	out, err := r.Refetch(ctxT(t), in)
	var be *cdc.BatchError
	if err == nil || errors.As(err, &be) || out != nil {
		t.Fatalf("got %v, %v; want a plain error", out, err)
	}
	if err := r.Ping(ctxT(t)); err == nil {
		t.Fatal("ping succeeded")
	}
}

// TestRefetchCancelled: a cancelled context is a plain error too.
func TestRefetchCancelled(t *testing.T) {
	s, _ := schema(t, "cancelled", "CREATE TABLE $S.t (id INT PRIMARY KEY)")
	r := newRefetcher(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Refetch(ctx, []cdc.Event{{DB: s, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))}})
	var be *cdc.BatchError
	if err == nil || errors.As(err, &be) {
		t.Fatalf("err = %v, want a plain error", err)
	}
}

// TestRefetchSchemaChange: a dropped column (1054) and an added column
// (named by an event) both refresh the cached definition.
func TestRefetchSchemaChange(t *testing.T) {
	s, db := schema(t, "schemachange",
		"CREATE TABLE $S.t (id INT PRIMARY KEY, a INT, b INT)",
		"INSERT INTO $S.t VALUES (1, 2, 3)",
	)
	r := newRefetcher(t, Config{})
	r.minReload = 0
	get := func(ev cdc.Event) *cdc.Row {
		t.Helper()
		out, err := r.Refetch(ctxT(t), []cdc.Event{ev})
		if err != nil || len(out) != 1 {
			t.Fatalf("refetch: %v, %v", out, err)
		}
		return out[0].After
	}
	ev := cdc.Event{DB: s, Table: "t", Op: cdc.Update, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))}
	if got := get(ev); !got.Equal(cdc.RowOf("id", int64(1), "a", int64(2), "b", int64(3))) {
		t.Fatalf("first read %v", got)
	}
	mustExec(t, db, "ALTER TABLE "+s+".t DROP COLUMN a")
	if got := get(ev); !got.Equal(cdc.RowOf("id", int64(1), "b", int64(3))) {
		t.Fatalf("after drop %v", got)
	}
	mustExec(t, db, "ALTER TABLE "+s+".t ADD COLUMN c VARCHAR(5) DEFAULT 'new'")
	ev.After = cdc.RowOf("id", int64(1), "c", "x")
	if got := get(ev); !got.Equal(cdc.RowOf("id", int64(1), "b", int64(3), "c", "new")) {
		t.Fatalf("after add %v", got)
	}
	mustExec(t, db, "ALTER TABLE "+s+".t ADD COLUMN d INT DEFAULT 4")
	r.Forget(s, "t")
	ev.After = cdc.RowOf("id", int64(1))
	if got := get(ev); got.Get("d") != int64(4) {
		t.Fatalf("after Forget %v", got)
	}
}

// TestRefetchConcurrent: shards call Refetch at once (run with -race).
func TestRefetchConcurrent(t *testing.T) {
	s, _ := schema(t, "concurrent",
		"CREATE TABLE $S.t (id INT PRIMARY KEY, v INT)",
		"INSERT INTO $S.t SELECT seq, seq*10 FROM $S.seq_1_to_200",
	)
	r := newRefetcher(t, Config{ChunkSize: 7, MaxOpenConns: 3})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var in []cdc.Event
			for id := int64(w + 1); id <= 200; id += 8 {
				in = append(in, cdc.Event{DB: s, Table: "t", Op: cdc.Update, PK: []string{"id"}, After: cdc.RowOf("id", id)})
			}
			out, err := r.Refetch(ctxT(t), in)
			if err != nil {
				errs <- err
				return
			}
			for i, e := range out {
				if e.After.Get("v") != in[i].After.Get("id").(int64)*10 {
					errs <- fmt.Errorf("worker %d: %v", w, e.After)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestRefetchTableDropped: a table dropped after its definition was cached
// fails its events permanently (1146), then stays failed via the reload.
func TestRefetchTableDropped(t *testing.T) {
	s, db := schema(t, "dropped",
		"CREATE TABLE $S.t (id INT PRIMARY KEY)", "INSERT INTO $S.t VALUES (1)",
		"CREATE TABLE $S.u (id INT PRIMARY KEY)", "INSERT INTO $S.u VALUES (1)")
	r := newRefetcher(t, Config{})
	in := []cdc.Event{
		{DB: s, Table: "t", Op: cdc.Update, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))},
		{DB: s, Table: "u", Op: cdc.Update, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))},
	}
	if _, err := r.Refetch(ctxT(t), in); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "DROP TABLE "+s+".t")
	for round := 0; round < 2; round++ {
		out, err := r.Refetch(ctxT(t), in)
		var be *cdc.BatchError
		if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0] == nil {
			t.Fatalf("round %d: err = %v, want BatchError for event 0", round, err)
		}
		if len(out) != 1 || out[0].Table != "u" {
			t.Fatalf("round %d: out = %+v", round, out)
		}
	}
}

// TestRefetchAccessDenied: a table the user may not read fails its events
// permanently; readable tables still come back.
func TestRefetchAccessDenied(t *testing.T) {
	s, db := schema(t, "denied",
		"CREATE TABLE $S.open (id INT PRIMARY KEY)", "INSERT INTO $S.open VALUES (1)",
		"CREATE TABLE $S.secret (id INT PRIMARY KEY)", "INSERT INTO $S.secret VALUES (1)")
	const user = "rs_refetch_ro"
	mustExec(t, db, "DROP USER IF EXISTS "+user+"@'%'")
	mustExec(t, db, "CREATE USER "+user+"@'%' IDENTIFIED BY 'pw'")
	t.Cleanup(func() { db.Exec("DROP USER IF EXISTS " + user + "@'%'") })
	mustExec(t, db, "GRANT SELECT ON "+s+".open TO "+user+"@'%'")
	r := newRefetcher(t, Config{DSN: user + ":pw@tcp(127.0.0.1:3306)/"})
	in := []cdc.Event{
		{DB: s, Table: "secret", Op: cdc.Update, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))},
		{DB: s, Table: "open", Op: cdc.Update, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))},
	}
	out, err := r.Refetch(ctxT(t), in)
	var be *cdc.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0] == nil {
		t.Fatalf("err = %v, want BatchError for event 0", err)
	}
	if len(out) != 1 || out[0].Table != "open" || out[0].Op != cdc.Update {
		t.Fatalf("out = %+v", out)
	}
	// the 1142 path: a cached definition, then the grant goes away
	mustExec(t, db, "REVOKE SELECT ON "+s+".open FROM "+user+"@'%'")
	_, err = r.Refetch(ctxT(t), in[1:])
	if !errors.As(err, &be) || len(be.Failed) != 1 || !strings.Contains(be.Failed[0].Error(), "1142") {
		t.Fatalf("after revoke: err = %v, want BatchError with 1142", err)
	}
}

// rowsEqual reports whether got and want hold equal rows (cdc.Row.Equal),
// one for one.
func rowsEqual(got, want []*cdc.Row) bool {
	return slices.EqualFunc(got, want, (*cdc.Row).Equal)
}

// eventEqual reports whether a and b are the same event: rows compared
// with cdc.Row.Equal, every other field as reflect.DeepEqual does.
func eventEqual(a, b cdc.Event) bool {
	if !a.Before.Equal(b.Before) || !a.After.Equal(b.After) {
		return false
	}
	a.Before, a.After, b.Before, b.After = nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}
