package binlog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/checkpoint"
)

const typesDDL = "CREATE TABLE t (" +
	"id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT UNSIGNED, " +
	"i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED, f FLOAT, d DOUBLE, dm DECIMAL(12,2), " +
	"s VARCHAR(64), c CHAR(4), tx TEXT, bin BINARY(4), vb VARBINARY(16), bl BLOB, " +
	"dt DATETIME(3), dt0 DATETIME, da DATE, ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(2), y YEAR, " +
	"j JSON, e ENUM('small','medium','large'), st SET('a','b','c','d'), b8 BIT(8), b64 BIT(64)" +
	") CHARACTER SET utf8mb4"

// TestTypes runs with the JSON column (go-mysql decodes the row images)
// and without (the source's own decoder, decode.go).
func TestTypes(t *testing.T) {
	t.Run("json", func(t *testing.T) { testTypes(t, true) })
	t.Run("own", func(t *testing.T) { testTypes(t, false) })
}

func testTypes(t *testing.T, withJSON bool) {
	db, schema := testDB(t)
	ddl, jsonValue := typesDDL, `'{"a": [1, 2, {"b": "ü"}]}', `
	if !withJSON {
		ddl, jsonValue = strings.Replace(ddl, "j JSON, ", "", 1), ""
	}
	mustExec(t, db, "SET SESSION sql_mode = ''") // zero dates allowed
	mustExec(t, db, ddl)
	s := newSource(t, schema, nil, nil)
	mustExec(t, db, `INSERT INTO t VALUES (1, -128, 255, -32768, 16777215, -2147483648, 4294967295,
		-9223372036854775808, 18446744073709551615, 0.1, 3.141592653589793, -1234567890.05,
		'héllo 世界 🎉', 'ab', 'emoji 😀 text', X'00FF', X'00FF00', X'00FF7F80',
		'2024-02-29 23:59:58.123', '2024-01-02 03:04:05', '1999-12-31', '2024-06-01 12:00:00.654321',
		'-123:45:06.78', 2024, `+jsonValue+`'medium', 'c,a', b'10100101',
		b'1111111111111111111111111111111111111111111111111111111111111111')`)
	mustExec(t, db, `INSERT INTO t (id) VALUES (2)`)
	mustExec(t, db, `INSERT INTO t (id, dm, dt0, da, e, st, tu, b8) VALUES (3, 7, '0000-00-00 00:00:00', '0000-00-00', '', '', 0, 0)`)
	mustExec(t, db, `UPDATE t SET s = 'ünïcödé ✓ 🚀', dm = dm + 0.5 WHERE id = 1`)
	mustExec(t, db, `DELETE FROM t WHERE id = 2`)

	ev := collect(t, s, 5)
	full := cdc.RowOf("id", int64(1), "ti", int64(-128), "tu", int64(255), "si", int64(-32768), "mi", int64(16777215), "i", int64(math.MinInt32), "iu", int64(math.MaxUint32), "bi", int64(math.MinInt64), "bu", uint64(math.MaxUint64), "f", float64(float32(0.1)), "d", 3.141592653589793, "dm", cdc.Decimal("-1234567890.05"), "s", "héllo 世界 🎉", "c", "ab", "tx", "emoji 😀 text", "bin", []byte{0x00, 0xff, 0x00, 0x00}, "vb", []byte{0x00, 0xff, 0x00}, "bl", []byte{0x00, 0xff, 0x7f, 0x80}, "dt", time.Date(2024, 2, 29, 23, 59, 58, 123e6, time.UTC), "dt0", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "da", time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), "ts", time.Date(2024, 6, 1, 12, 0, 0, 654321e3, time.UTC), "tm", -(123*time.Hour + 45*time.Minute + 6*time.Second + 780*time.Millisecond), "y", int64(2024), "j", cdc.JSON(`{"a": [1, 2, {"b": "ü"}]}`), "e", "medium", "st", cdc.Set{"a", "c"}, "b8", int64(0xa5), "b64", uint64(math.MaxUint64))
	if !withJSON {
		full.Delete("j")
	}
	nulls := cdc.RowOf("id", int64(2))
	zero := cdc.RowOf("id", int64(3), "dm", cdc.Decimal("7.00"), "dt0", "0000-00-00 00:00:00", "da", "0000-00-00", "e", "", "st", cdc.Set{}, "tu", int64(0), "b8", int64(0))
	for name := range full.All() {
		if _, ok := nulls.Lookup(name); !ok {
			nulls.Set(name, nil)
		}
		if _, ok := zero.Lookup(name); !ok {
			zero.Set(name, nil)
		}
	}
	updated := cdc.RowOf()
	for k, v := range full.All() {
		updated.Set(k, v)
	}
	updated.Set("s", "ünïcödé ✓ 🚀")
	updated.Set("dm", cdc.Decimal("-1234567889.55"))

	want := []struct {
		op            cdc.Op
		before, after *cdc.Row
	}{
		{cdc.Insert, nil, full},
		{cdc.Insert, nil, nulls},
		{cdc.Insert, nil, zero},
		{cdc.Update, full, updated},
		{cdc.Delete, nulls, nil},
	}
	for i, w := range want {
		t.Run(fmt.Sprintf("%d_%s", i, w.op), func(t *testing.T) {
			e := ev[i]
			if e.DB != schema || e.Table != "t" || e.Op != w.op {
				t.Fatalf("got %s.%s %s, want %s.t %s", e.DB, e.Table, e.Op, schema, w.op)
			}
			if !reflect.DeepEqual(e.PK, []string{"id"}) {
				t.Errorf("pk %v", e.PK)
			}
			diffRow(t, "before", e.Before, w.before)
			diffRow(t, "after", e.After, w.after)
			if e.Commit.IsZero() || time.Since(e.Commit) > time.Hour || e.Commit.Location() != time.UTC {
				t.Errorf("commit time %v", e.Commit)
			}
			file, off, ok := strings.Cut(e.Pos.Text, ":")
			if !ok || !strings.HasPrefix(file, "mysql-bin.") || off == "" {
				t.Errorf("pos text %q", e.Pos.Text)
			}
			if e.Pos.Version == 0 || i > 0 && e.Pos.Version <= ev[i-1].Pos.Version {
				t.Errorf("pos version %d not increasing (prev %d)", e.Pos.Version, ev[max(i-1, 0)].Pos.Version)
			}
		})
	}
	cols := map[string]cdc.Column{}
	for _, c := range ev[0].Columns {
		cols[c.Name] = c
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"dm", cols["dm"].Kind == cdc.KindDecimal && cols["dm"].Precision == 2},
		{"dt", cols["dt"].Kind == cdc.KindDateTime && cols["dt"].Precision == 3},
		{"bu", cols["bu"].Kind == cdc.KindInt && cols["bu"].Unsigned && cols["bu"].IntBytes == 8},
		{"e", cols["e"].Kind == cdc.KindEnum && reflect.DeepEqual(cols["e"].Elems, []string{"small", "medium", "large"})},
		{"j", !withJSON || cols["j"].Kind == cdc.KindJSON},
		{"bl", cols["bl"].Kind == cdc.KindBytes},
		{"ts", cols["ts"].Kind == cdc.KindTimestamp && cols["ts"].Precision == 6},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("column %s: %+v", c.name, cols[c.name])
		}
	}
	if len(ev[0].Columns) != full.Len() {
		t.Errorf("%d columns, want %d", len(ev[0].Columns), full.Len())
	}
}

func diffRow(t *testing.T, what string, got, want *cdc.Row) {
	t.Helper()
	if (got == nil) != (want == nil) {
		t.Errorf("%s: got %v, want %v", what, got, want)
		return
	}
	for k, w := range want.All() {
		g, ok := got.Lookup(k)
		if !ok {
			t.Errorf("%s.%s missing", what, k)
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s.%s = %#v (%T), want %#v (%T)", what, k, g, g, w, w)
		}
	}
	for k := range got.All() {
		if _, ok := want.Lookup(k); !ok {
			t.Errorf("%s.%s unexpected = %#v", what, k, got.Get(k))
		}
	}
}

func TestKeysAndMultiRow(t *testing.T) {
	db, schema := testDB(t)
	mustExec(t, db, "CREATE TABLE ck (tenant VARCHAR(8), id BIGINT, v INT, PRIMARY KEY (id, tenant))")
	mustExec(t, db, "CREATE TABLE nopk (a INT, b VARCHAR(8))")
	mustExec(t, db, "CREATE TABLE skipped (a INT PRIMARY KEY)")
	s := newSource(t, schema, nil, func(c *Config) { c.Exclude = []string{`.*\.skipped`} })
	mustExec(t, db, "INSERT INTO ck VALUES ('a', 1, 10), ('b', 1, 20), ('a', 2, 30)")
	mustExec(t, db, "INSERT INTO skipped VALUES (1)")
	mustExec(t, db, "UPDATE ck SET v = v + 1 WHERE id = 1")
	mustExec(t, db, "INSERT INTO nopk VALUES (1, 'x'), (1, 'x')")
	ev := collect(t, s, 7)
	wantOps := []cdc.Op{cdc.Insert, cdc.Insert, cdc.Insert, cdc.Update, cdc.Update, cdc.Insert, cdc.Insert}
	for i, e := range ev {
		if e.Op != wantOps[i] {
			t.Errorf("event %d: op %s, want %s", i, e.Op, wantOps[i])
		}
		if e.Table == "skipped" {
			t.Errorf("excluded table emitted")
		}
	}
	for _, e := range ev[:5] {
		if !reflect.DeepEqual(e.PK, []string{"id", "tenant"}) {
			t.Errorf("composite pk %v, want [id tenant]", e.PK)
		}
	}
	if ev[1].After.Get("tenant") != "b" || ev[1].After.Get("v") != int64(20) {
		t.Errorf("multi-row insert row 2: %v", ev[1].After)
	}
	if ev[4].Before.Get("v") != int64(20) || ev[4].After.Get("v") != int64(21) {
		t.Errorf("multi-row update: %v -> %v", ev[4].Before, ev[4].After)
	}
	for _, e := range ev[5:] {
		if e.Table != "nopk" || len(e.PK) != 0 {
			t.Errorf("no-pk table: %s pk %v", e.Table, e.PK)
		}
	}
}

// TestCheckpointAtTxEnd reads a 5,000-row transaction in small batches: no
// batch inside it may move the checkpoint; the batch holding its end must
// move it past the XID.
func TestCheckpointAtTxEnd(t *testing.T) {
	db, schema := testDB(t)
	mustExec(t, db, "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(32))")
	store, err := checkpoint.NewFile(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := newSource(t, schema, store, func(c *Config) { c.BatchSize = 700 })
	start := s.Checkpoint()
	const n = 5000
	var q strings.Builder
	q.WriteString("BEGIN;")
	for i := 0; i < n; i += 500 {
		q.WriteString("INSERT INTO big VALUES ")
		for j := i; j < i+500; j++ {
			if j > i {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "(%d, 'row %d')", j, j)
		}
		q.WriteByte(';')
	}
	q.WriteString("COMMIT;")
	mustExec(t, db, q.String())
	mustExec(t, db, "INSERT INTO big VALUES (-1, 'after')")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The binlog server is shared with other tests: transactions of other
	// schemas may end between start and the big one, and the checkpoint may
	// rightly move to their ends. What must never happen is a checkpoint
	// inside the big transaction, i.e. at or past its first row event.
	got := 0
	var firstRow uint64
	for got < n+1 {
		b, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Events) > 700 {
			t.Fatalf("batch of %d events exceeds batch_size 700", len(b.Events))
		}
		if firstRow == 0 && len(b.Events) > 0 {
			if firstRow = b.Events[0].Pos.Version; firstRow == 0 {
				t.Fatalf("first event of the tx has no binlog version: %+v", b.Events[0].Pos)
			}
		}
		got += len(b.Events)
		if err := b.Ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
		// acks save in the background; Flush waits for the store
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		saved, ok, err := store.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case got < n:
			if ok && saved != start && cdc.BinlogPosVersion(saved.File, saved.Offset) >= firstRow {
				t.Fatalf("after %d of %d rows of one tx the checkpoint moved into it, to %v", got, n, saved)
			}
		case got >= n:
			if !ok || saved == start {
				t.Fatalf("after the whole tx (%d events) the checkpoint did not move", got)
			}
		}
	}
	if got != n+1 {
		t.Fatalf("got %d events, want %d", got, n+1)
	}
	// A nacked batch saves nothing, nor does a later batch acked after it
	// (the checkpoint would pass the unapplied one), and Next fails: a
	// restart reads the nacked batch again (cdc.Batch's nack contract).
	before, _, _ := store.Load(ctx)
	mustExec(t, db, "INSERT INTO big VALUES (-2, 'nack')")
	nacked, err := s.Next(ctx)
	if err != nil || len(nacked.Events) != 1 {
		t.Fatalf("next: %d events, %v", len(nacked.Events), err)
	}
	mustExec(t, db, "INSERT INTO big VALUES (-3, 'later')")
	later, err := s.Next(ctx)
	if err != nil || len(later.Events) != 1 {
		t.Fatalf("next: %d events, %v", len(later.Events), err)
	}
	if err := nacked.Ack(ctx, errors.New("sink down")); err != nil {
		t.Fatal(err)
	}
	if err := later.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if after, _, _ := store.Load(ctx); after != before {
		t.Fatalf("nack moved the checkpoint %v -> %v", before, after)
	}
	if _, err := s.Next(ctx); err == nil || !strings.Contains(err.Error(), "sink down") {
		t.Fatalf("next after a nack: %v, want the nack's error", err)
	}
}

// TestRestartFromCheckpoint stops a source mid-stream and starts another on
// the same store: it resumes after the last acked transaction, losing
// nothing, even for changes written while no source ran.
func TestRestartFromCheckpoint(t *testing.T) {
	db, schema := testDB(t)
	mustExec(t, db, "CREATE TABLE r (id INT PRIMARY KEY)")
	store, err := checkpoint.NewFile(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	s1 := newSource(t, schema, store, nil)
	for i := 1; i <= 3; i++ {
		mustExec(t, db, "INSERT INTO r VALUES (?)", i)
	}
	ev := collect(t, s1, 3)
	if err := s1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cp, ok, err := store.Load(context.Background())
	if err != nil || !ok {
		t.Fatalf("no checkpoint after acks: %v", err)
	}
	if v := cdc.BinlogPosVersion(cp.File, cp.Offset); v <= ev[2].Pos.Version {
		t.Fatalf("checkpoint %v not after the last event %s", cp, ev[2].Pos)
	}
	if cp.GTID == "" {
		t.Errorf("checkpoint %v has no GTID set", cp)
	}
	for i := 4; i <= 6; i++ {
		mustExec(t, db, "INSERT INTO r VALUES (?)", i)
	}
	// start: current would skip 4..6; the checkpoint must win
	s2 := newSource(t, schema, store, nil)
	ev = collect(t, s2, 3)
	for i, e := range ev {
		if e.After.Get("id") != int64(i+4) {
			t.Fatalf("after restart event %d: %v, want id %d", i, e.After, i+4)
		}
	}
}

func TestRotation(t *testing.T) {
	db, schema := testDB(t)
	mustExec(t, db, "CREATE TABLE rot (id INT PRIMARY KEY)")
	store, err := checkpoint.NewFile(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := newSource(t, schema, store, nil)
	mustExec(t, db, "INSERT INTO rot VALUES (1)")
	first := collect(t, s, 1)
	mustExec(t, db, "FLUSH BINARY LOGS")
	mustExec(t, db, "INSERT INTO rot VALUES (2)")
	second := collect(t, s, 1)
	f1, _, _ := strings.Cut(first[0].Pos.Text, ":")
	f2, _, _ := strings.Cut(second[0].Pos.Text, ":")
	if f1 == f2 {
		t.Fatalf("both events in %s after FLUSH BINARY LOGS", f1)
	}
	if second[0].Pos.Version <= first[0].Pos.Version {
		t.Fatalf("version did not grow across rotation: %d then %d", first[0].Pos.Version, second[0].Pos.Version)
	}
	if err := s.Flush(context.Background()); err != nil { // acks save in the background
		t.Fatal(err)
	}
	cp, _, _ := store.Load(context.Background())
	if cp.File != f2 {
		t.Fatalf("checkpoint %v not in the new file %s", cp, f2)
	}
	// restart on the rotated checkpoint works
	s.Close(context.Background())
	mustExec(t, db, "INSERT INTO rot VALUES (3)")
	s2 := newSource(t, schema, store, nil)
	if ev := collect(t, s2, 1); ev[0].After.Get("id") != int64(3) {
		t.Fatalf("after restart: %v", ev[0].After)
	}
}

func TestPurgedPosition(t *testing.T) {
	_, schema := testDB(t)
	store, err := checkpoint.NewFile(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	// a file older than any the server keeps: what a purge leaves behind
	gone := checkpoint.Position{File: "mysql-bin.000000", Offset: 4}
	if err := store.Save(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), Config{Addr: testAddr, Include: []string{schema + `\..*`}}, store, testLogger(t))
	if !errors.Is(err, ErrPositionGone) || !strings.Contains(err.Error(), "mysql-bin.000000") {
		t.Fatalf("got %v, want ErrPositionGone naming mysql-bin.000000", err)
	}
	// an offset beyond the end of an existing file is gone too
	_, err = New(context.Background(), Config{Addr: testAddr, Start: currentFile(t) + ":4000000000"}, nil, testLogger(t))
	if !errors.Is(err, ErrPositionGone) {
		t.Fatalf("offset beyond file end: got %v", err)
	}
}

func currentFile(t *testing.T) string {
	t.Helper()
	file, _ := masterStatus(t)
	return file
}

// TestReconnect kills the replication connection (what a server restart
// does to it) mid-stream: the source reconnects from the last transaction
// end and loses nothing.
func TestReconnect(t *testing.T) {
	db, schema := testDB(t)
	mustExec(t, db, "CREATE TABLE rc (id INT PRIMARY KEY)")
	s := newSource(t, schema, nil, nil)
	mustExec(t, db, "INSERT INTO rc VALUES (1)")
	collect(t, s, 1)
	s.mu.Lock()
	connID := s.syncer.LastConnectionID()
	s.mu.Unlock()
	mustExec(t, db, fmt.Sprintf("KILL %d", connID))
	mustExec(t, db, "INSERT INTO rc VALUES (2), (3)")
	mustExec(t, db, "INSERT INTO rc VALUES (4)")
	ev := collect(t, s, 3)
	for i, e := range ev {
		if e.After.Get("id") != int64(i+2) {
			t.Fatalf("event %d after reconnect: %v", i, e.After)
		}
	}
}

func TestLag(t *testing.T) {
	db, schema := testDB(t)
	mustExec(t, db, "CREATE TABLE lag (id INT PRIMARY KEY)")
	s := newSource(t, schema, nil, nil)
	mustExec(t, db, "INSERT INTO lag VALUES (1)")
	collect(t, s, 1)
	// caught up: a short Next times out with nothing, Lag reads 0
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for s.Lag() != 0 {
		short, c2 := context.WithTimeout(ctx, 200*time.Millisecond)
		b, err := s.Next(short)
		c2()
		if err == nil {
			b.Ack(ctx, nil)
		}
		if ctx.Err() != nil {
			t.Fatalf("lag never 0: %v", s.Lag())
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"zero", Config{}, nil},
		{"file pos", Config{Start: "mysql-bin.000003:4"}, nil},
		{"mariadb gtid", Config{Start: "0-1-42,1-2-7"}, nil},
		{"mysql gtid", Config{Start: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77", Flavor: "mysql"}, nil},
		{"mysql tagged gtid", Config{Start: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77:nightly:1-5", Flavor: "mysql"}, nil},
		{"mysql tagged gtid, flavor detected later", Config{Start: "3e11fa47-71ca-11e1-9e33-c80aa9429562:etl:3"}, nil},
		{"tls cert without key", Config{TLS: TLSConfig{Enabled: true, CertFile: "c.pem"}}, []string{"tls.cert_file: "}},
		{"tls unreadable ca", Config{TLS: TLSConfig{Enabled: true, CAFile: "/nonexistent/ca.pem"}}, []string{"tls.ca_file: "}},
		{"tls off ignores files", Config{TLS: TLSConfig{CAFile: "/nonexistent/ca.pem"}}, nil},
		{"all bad", Config{Flavor: "oracle", Addr: "nohost", Include: []string{"("}, Exclude: []string{"[", "ok"},
			Start: "yesterday", BatchSize: -1, MaxWait: -time.Second, Heartbeat: time.Minute},
			[]string{`flavor: unknown "oracle"`, "addr: ", "include[0]: ", "exclude[0]: ", "start: ",
				"batch_size: ", "max_wait: ", "read_timeout: "}},
		{"pos too small", Config{Start: "mysql-bin.000001:1"}, []string{"start: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "exclude[1]") {
				t.Errorf("valid exclude[1] reported: %v", err)
			}
		})
	}
}

// TLS verifies the server by default, against the host of addr.
func TestTLSClient(t *testing.T) {
	c := Config{Addr: "db.example:3306", TLS: TLSConfig{Enabled: true}}
	tc, err := c.TLSClient()
	if err != nil {
		t.Fatal(err)
	}
	if tc.ServerName != "db.example" || tc.InsecureSkipVerify {
		t.Fatalf("server name %q, insecure %v", tc.ServerName, tc.InsecureSkipVerify)
	}
	c.TLS.ServerName, c.TLS.InsecureSkipVerify = "other", true
	if tc, _ = c.TLSClient(); tc.ServerName != "other" || !tc.InsecureSkipVerify {
		t.Fatalf("server name %q, insecure %v", tc.ServerName, tc.InsecureSkipVerify)
	}
	if tc, err := (&Config{}).TLSClient(); tc != nil || err != nil {
		t.Fatalf("tls off: %v %v", tc, err)
	}
}
