package binlog

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/sourcetest"
)

// goMySQLRows makes replay decode every row image with go-mysql's decoder
// and the old conversion (no RowsEventDecodeFunc). Tests that set it do
// not run in parallel.
var goMySQLRows bool

// replayOld is replay with go-mysql decoding the rows.
func replayOld(t *testing.T, name string, tables map[string]*cdc.TableDef, cfg Config) replayed {
	t.Helper()
	goMySQLRows = true
	defer func() { goMySQLRows = false }()
	return replay(t, name, tables, cfg, "")
}

// sameReplay fails unless both decoders gave the same events, rejects,
// transaction ends and error.
func sameReplay(t *testing.T, own, old replayed) {
	t.Helper()
	if len(own.events) != len(old.events) {
		t.Fatalf("own decoder: %d events, go-mysql's: %d", len(own.events), len(old.events))
	}
	for i := range own.events {
		if !sourcetest.SameEvent(own.events[i], old.events[i]) {
			t.Errorf("event %d:\n own    %+v\n gomysql %+v", i, own.events[i], old.events[i])
		}
	}
	if len(own.rejects) != len(old.rejects) {
		t.Errorf("own decoder: %d rejects, go-mysql's: %d", len(own.rejects), len(old.rejects))
	}
	for i := range min(len(own.rejects), len(old.rejects)) {
		a, b := own.rejects[i], old.rejects[i]
		if a.Pos != b.Pos || string(a.Raw) != string(b.Raw) || a.Reason.Error() != b.Reason.Error() {
			t.Errorf("reject %d: own %v %q, go-mysql's %v %q", i, a.Reason, a.Raw, b.Reason, b.Raw)
		}
	}
	if !reflect.DeepEqual(own.ends, old.ends) || own.last != old.last {
		t.Errorf("ends %v last %s, go-mysql's %v %s", own.ends, own.last, old.ends, old.last)
	}
	if fmt.Sprint(own.err) != fmt.Sprint(old.err) {
		t.Errorf("err %v, go-mysql's %v", own.err, old.err)
	}
}

// Every recorded file gives the same with the own decoder as with
// go-mysql's, with the tables known and dropped; the files without JSON
// columns take the own decoder.
func TestRecordedOwnDecoderSame(t *testing.T) {
	files := []struct {
		name string
		own  bool // some rows event is decoded by the own decoder
	}{
		{"binlog-invisible-columns.000001", true}, {"binlog_transaction_with_GTID_TAG.000001", true},
		{"json-opaque.binlog", false}, {"json.binlog.000001", false}, {"minimal_row_metadata.000001", true},
		{"mysql-enum-string-set.000001", true}, {"mysql_type_bit.000001", true}, {"time_issue.000001", true},
		{"transaction_compression.000001", true}, {"vector.binlog", true},
	}
	known := map[string]*cdc.TableDef{
		"noria.t":  table(nil, "t time"),
		"noria.t1": table([]string{"id"}, "id int", "t text", "c char(1)", "n int", "u int unsigned"),
	}
	for _, f := range files {
		for _, cfg := range []Config{{}, {Refetched: func(string, string) bool { return true }}} {
			for _, tables := range []map[string]*cdc.TableDef{nil, known} {
				t.Run(f.name, func(t *testing.T) {
					ownEvents = 0
					own := replay(t, f.name, tables, cfg, "")
					if (ownEvents > 0) != f.own {
						t.Errorf("%d rows events decoded by the own decoder", ownEvents)
					}
					sameReplay(t, own, replayOld(t, f.name, tables, cfg))
				})
			}
		}
	}
}

// ownEvents counts the rows events decodeRowsHeader left raw in replay.
var ownEvents int

func countingDecode(e *replication.RowsEvent, data []byte) error {
	err := decodeRowsHeader(e, data)
	if rawOf(e) != nil {
		ownEvents++
	}
	return err
}

// ownDDL has a column of every type the own decoder takes, with the
// widths that change the binary form: DECIMAL of every packing, every
// fractional precision, 1- and 2-byte ENUMs, SETs of 1..8 bytes, string
// length prefixes of 1 and 2 bytes, every BLOB prefix size.
const ownDDL = "CREATE TABLE own (" +
	"id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, " +
	"mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED, " +
	"f FLOAT, d DOUBLE, f4 FLOAT(7,3), " +
	"d1 DECIMAL(1,0), d2 DECIMAL(4,2), d3 DECIMAL(9,0), d4 DECIMAL(10,5), d5 DECIMAL(18,9), d6 DECIMAL(19,0), " +
	"d7 DECIMAL(27,13), d8 DECIMAL(65,30), d9 DECIMAL(65,0), d10 DECIMAL(30,30), d11 DECIMAL(12,2) UNSIGNED, " +
	"da DATE, dt0 DATETIME, dt1 DATETIME(1), dt2 DATETIME(2), dt3 DATETIME(3), dt4 DATETIME(4), dt5 DATETIME(5), dt6 DATETIME(6), " +
	"ts0 TIMESTAMP NULL DEFAULT NULL, ts1 TIMESTAMP(1) NULL DEFAULT NULL, ts3 TIMESTAMP(3) NULL DEFAULT NULL, " +
	"ts6 TIMESTAMP(6) NULL DEFAULT NULL, " +
	"tm0 TIME, tm1 TIME(1), tm2 TIME(2), tm3 TIME(3), tm4 TIME(4), tm5 TIME(5), tm6 TIME(6), y YEAR, " +
	"b1 BIT(1), b3 BIT(3), b8 BIT(8), b17 BIT(17), b64 BIT(64), " +
	"e ENUM('small','medium','large'), e2 ENUM(%s), st SET('a','b','c','d'), st64 SET(%s), " +
	"c CHAR(4), cl CHAR(10) CHARACTER SET latin1, cb CHAR(255), vs VARCHAR(64), vl VARCHAR(300), " +
	"va VARCHAR(20) CHARACTER SET ascii, bin BINARY(4), vb VARBINARY(16), " +
	"tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB, tt TINYTEXT, tx TEXT, mt MEDIUMTEXT CHARACTER SET latin1, lt LONGTEXT, " +
	"g GEOMETRY, pt POINT" +
	") CHARACTER SET utf8mb4"

func labels(n int) string {
	l := make([]string, n)
	for i := range l {
		l[i] = fmt.Sprintf("'l%d'", i)
	}
	return strings.Join(l, ",")
}

// ownRowsSQL writes rows of extreme, zero, NULL and ordinary values into
// own, updates and deletes some, in FULL, MINIMAL and NOBLOB row images.
var ownRowsSQL = []string{
	`SET SESSION sql_mode = ''`,
	`INSERT INTO own VALUES (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
		-9223372036854775808, 18446744073709551615, -3.4e38, -1.7976931348623157e308, 1234.567,
		-9, -99.99, 999999999, -12345.67891, 123456789.123456789, -9999999999999999999,
		12345678901234.1234567890123, -99999999999999999999999999999999999.999999999999999999999999999999,
		99999999999999999999999999999999999999999999999999999999999999999, -0.123456789012345678901234567890, 9999999999.99,
		'9999-12-31', '9999-12-31 23:59:59', '2024-02-29 12:00:00.1', '2024-02-29 12:00:00.12', '2024-02-29 12:00:00.123',
		'2024-02-29 12:00:00.1234', '2024-02-29 12:00:00.12345', '2024-02-29 12:00:00.123456',
		'2038-01-19 03:14:07', '1970-01-01 00:00:01.1', '2024-06-01 12:00:00.654', '2024-06-01 12:00:00.654321',
		'-838:59:59', '-00:00:00.1', '-00:00:01.01', '-12:34:56.789', '838:59:58.9999', '-00:00:00.00001', '-838:59:58.999999', 2155,
		b'1', b'101', b'10100101', b'10000000000000001', b'1111111111111111111111111111111111111111111111111111111111111111',
		'large', 'l299', 'a,b,c,d', 'l0,l31,l63',
		'ab', 'çé', REPEAT('x', 255), 'héllo 世界 🎉', REPEAT('ü', 300), 'ascii',
		X'00FF', X'00FF00', X'00', REPEAT(X'AB', 70000), X'', REPEAT('z', 20000000 DIV 1000), 'tiny ✓', 'emoji 😀 text', 'latin ÿ', '',
		ST_GeomFromText('LINESTRING(0 0, 1 1, 2 2)'), ST_GeomFromText('POINT(1.5 -2.25)'))`,
	`INSERT INTO own (id) VALUES (2)`,
	`INSERT INTO own (id, ti, tu, bu, f, d, d1, d2, d5, d8, d10, d11, da, dt0, dt1, dt3, dt6, ts0, ts3, ts6, tm0, tm3, tm6, y,
		b1, b64, e, e2, st, st64, c, vs, bin, bl, tx) VALUES
		(3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00.0', '2024-00-00 10:00:00.5',
		'0000-00-00 00:00:00.000000', '0000-00-00 00:00:00', '0000-00-00 00:00:00.000', '0000-00-00 00:00:00',
		'00:00:00', '00:00:00.000', '00:00:00', 0, b'0', 0, '', '', '', '', '', '', X'', X'', ''),
		(4, 127, 1, 9223372036854775808, 1.5, 2.5, 9, 99.99, -0.000000001, 0.000000000000000000000000000001,
		0.000000000000000000000000000001, 0.01, '1000-01-01', '1000-01-01 00:00:00', '1969-12-31 23:59:59.9',
		'1900-02-28 01:02:03.004', '1970-01-01 00:00:00.000001', '1970-01-01 00:00:01', '2000-01-01 00:00:00.001',
		'2024-01-01 00:00:00.000001', '838:59:59', '00:00:00.001', '-00:00:00.000001', 1901, b'1', 1, 'small', 'l0', 'd', 'l63',
		'a', 'b', X'01', X'02', 'c'),
		(5, -1, 128, 9223372036854775807, -0.0, 1e-300, -1, -0.01, 1.000000001, -1.5, -0.5, 0.5, '2024-02-29', '2024-02-29 00:00:00',
		'2024-02-29 00:00:00.9', '2024-02-29 00:00:00.999', '2024-02-29 23:59:59.999999', '2024-02-29 00:00:00', '2024-02-29 00:00:00.5',
		'2024-02-29 00:00:00.5', '-00:00:01', '-00:00:00.5', '-00:00:00.5', 2000, b'0', 9223372036854775808, 'medium', 'l255', 'a,d', 'l8,l9',
		'abcd', REPEAT('v', 64), X'FFFFFFFF', REPEAT(X'00', 300), REPEAT('t', 256))`,
	`UPDATE own SET vs = 'ünïcödé ✓ 🚀', d4 = d4 + 0.5, bu = 18446744073709551614 WHERE id = 1`,
	`UPDATE own SET ti = NULL, vs = 'x' WHERE id IN (2, 3, 4)`,
	`DELETE FROM own WHERE id = 2`,
	`SET SESSION binlog_row_image = 'MINIMAL'`,
	`UPDATE own SET vs = 'minimal', dt6 = '2001-02-03 04:05:06.7' WHERE id IN (3, 4)`,
	`INSERT INTO own (id, bi) VALUES (6, 42)`,
	`DELETE FROM own WHERE id = 6`,
	`SET SESSION binlog_row_image = 'NOBLOB'`,
	`UPDATE own SET si = 7 WHERE id = 5`,
	`DELETE FROM own WHERE id = 5`,
	`SET SESSION binlog_row_image = 'FULL'`,
	`INSERT INTO done VALUES (1)`,
}

// TestOwnDecoderSame writes every type the own decoder takes to the
// MariaDB, reads the binlog once, and replays it through both decoders:
// the events must be identical, with refetch on and off (MINIMAL images
// lack columns). A few values are checked against the server's too.
func TestOwnDecoderSame(t *testing.T) {
	db, schema := testDB(t)
	mustExec(t, db, fmt.Sprintf(ownDDL, labels(300), labels(64)))
	mustExec(t, db, "CREATE TABLE done (id INT PRIMARY KEY)")
	live := newSource(t, schema, nil, nil)
	var file string
	var pos uint32
	if err := db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, new(string), new(string)); err != nil {
		t.Fatal(err)
	}
	for _, q := range ownRowsSQL {
		mustExec(t, db, q)
	}
	raws := rawEvents(t, schema, file, pos)
	rawsPlain, filePlain := raws, file

	run := func(own bool, cfg Config) replayed {
		cfg.Include = live.cfg.Include
		cfg = cfg.withDefaults()
		s := &Source{cfg: cfg, log: testLogger(t), filter: live.filter, flavor: mysql.MariaDBFlavor,
			tables: map[string]*cdc.TableDef{}, plans: map[string]*plan{}, file: file, load: live.load}
		p := replication.NewBinlogParser()
		p.SetFlavor(mysql.MariaDBFlavor)
		p.SetParseTime(true)
		p.SetTimestampStringLocation(time.UTC)
		p.SetRenderJSONAsMySQLText(true)
		if own {
			ownEvents = 0
			p.SetRowsEventDecodeFunc(countingDecode)
		}
		var out replayed
		for _, raw := range raws {
			ev, err := p.Parse(raw)
			if err == nil {
				err = s.handle(context.Background(), ev)
			}
			if err != nil {
				out.err = err
				break
			}
		}
		out.events, out.rejects = s.cur, s.curRejects
		out.last = s.resumePos().String()
		return out
	}
	refetch := Config{Refetched: func(string, string) bool { return true }}
	plain := run(true, refetch)

	// MariaDB's compressed rows events (log_bin_compress, a global switch
	// not flipped on the shared server): the same events with their row
	// images zlib-compressed as MariaDB writes them decode to the same rows
	compressed := make([][]byte, len(raws))
	for i := range raws {
		compressed[i] = compressRows(t, raws[:i+1])
	}
	raws, file = compressed, file+"-compressed"
	ownC, oldC := run(true, refetch), run(false, refetch)
	if ownEvents < 12 {
		t.Errorf("compressed: %d rows events decoded by the own decoder", ownEvents)
	}
	sameReplay(t, ownC, oldC)
	if len(ownC.events) != len(plain.events) {
		t.Fatalf("compressed: %d events, uncompressed %d", len(ownC.events), len(plain.events))
	}
	for i, e := range ownC.events {
		if !e.Before.Equal(plain.events[i].Before) || !e.After.Equal(plain.events[i].After) {
			t.Errorf("compressed event %d differs:\n %+v\n %+v", i, e, plain.events[i])
		}
	}
	raws, file = rawsPlain, filePlain

	for _, cfg := range []Config{refetch, {}} {
		own := run(true, cfg)
		if ownEvents < 7 { // all 12, or the 7 up to the MINIMAL image that stops the stream
			t.Errorf("only %d rows events decoded by the own decoder", ownEvents)
		}
		old := run(false, cfg)
		sameReplay(t, own, old)
		if cfg.Refetched == nil {
			if own.err == nil || !strings.Contains(own.err.Error(), "lacks the value of") {
				t.Errorf("MINIMAL image without refetch: err %v", own.err)
			}
			continue
		}
		if own.err != nil {
			t.Fatal(own.err)
		}
		if len(own.events) != 17 {
			t.Fatalf("%d events", len(own.events))
		}
		first := own.events[0].After
		// the rows of one table map share its plan's layout, whatever
		// columns their image carries
		for i, e := range own.events {
			if e.Table == own.events[0].Table && e.Image().Layout() != first.Layout() {
				t.Errorf("event %d: a row layout of its own, not the plan's", i)
			}
		}
		checks := map[string]cdc.Value{
			"bu": uint64(math.MaxUint64), "bi": int64(math.MinInt64), "mi": int64(-8388608), "iu": int64(math.MaxUint32),
			"d2": cdc.Decimal("-99.99"), "d8": cdc.Decimal("-99999999999999999999999999999999999.999999999999999999999999999999"),
			"d10": cdc.Decimal("-0.123456789012345678901234567890"), "da": time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
			"dt4": time.Date(2024, 2, 29, 12, 0, 0, 123400000, time.UTC), "ts0": time.Date(2038, 1, 19, 3, 14, 7, 0, time.UTC),
			"tm0": -(838*time.Hour + 59*time.Minute + 59*time.Second), "tm1": -100 * time.Millisecond,
			"tm2": -(time.Second + 10*time.Millisecond), "y": int64(2155), "b17": int64(0x10001), "b64": uint64(math.MaxUint64),
			"e2": "l299", "st64": cdc.Set{"l0", "l31", "l63"},
			// latin1 text is turned into UTF-8 (charset.go)
			"cl": "çé", "mt": "latin ÿ", "bin": []byte{0, 0xff, 0, 0}, "tt": "tiny ✓", "lt": "",
		}
		for k, want := range checks {
			if got := first.Get(k); !reflect.DeepEqual(got, want) {
				t.Errorf("%s = %#v (%T), want %#v", k, got, got, want)
			}
		}
		zero := own.events[2].After
		for k, want := range map[string]cdc.Value{"da": "0000-00-00", "dt0": "0000-00-00 00:00:00", "dt1": "0000-00-00 00:00:00.0",
			"dt3": "2024-00-00 10:00:00.500", "ts0": "0000-00-00 00:00:00", "ts3": "0000-00-00 00:00:00.000", "y": int64(0),
			"tm3": time.Duration(0), "e": "", "st": cdc.Set{}, "d10": cdc.Decimal("0.000000000000000000000000000000")} {
			if got := zero.Get(k); !reflect.DeepEqual(got, want) {
				t.Errorf("zero row: %s = %#v (%T), want %#v", k, got, got, want)
			}
		}
	}
}

// rawEvents reads the binlog from file:pos until schema's done table gets
// its row, and returns every event's bytes (the format description first).
func rawEvents(t *testing.T, schema, file string, pos uint32) [][]byte {
	t.Helper()
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{ServerID: 1<<29 + 9, Flavor: "mariadb",
		Host: "127.0.0.1", Port: 3307, User: "root", ParseTime: true, Logger: testLogger(t)})
	defer syncer.Close()
	st, err := syncer.StartSync(mysql.Position{Name: file, Pos: pos})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var raws [][]byte
	for {
		ev, err := st.GetEvent(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Header.EventType == replication.ROTATE_EVENT && ev.Header.LogPos == 0 {
			continue // the stream's own, no position of ours
		}
		raws = append(raws, ev.RawData)
		if re, ok := ev.Event.(*replication.RowsEvent); ok && string(re.Table.Schema) == schema && string(re.Table.Table) == "done" {
			return raws
		}
	}
}

// Hostile and truncated row data: the own decoder never panics, and gives
// what go-mysql's path gives (an error, a reject, or the same rows). The
// row images of each recorded rows event are cut short at every length and
// have bytes flipped. The header and column bitmaps stay intact: go-mysql
// decodes those the same way on both paths, and with an empty column
// bitmap its image loop never ends (the own decoder stops: see ownRows).
func TestOwnDecoderHostile(t *testing.T) {
	for _, name := range []string{"mysql-enum-string-set.000001", "mysql_type_bit.000001", "binlog-invisible-columns.000001",
		"time_issue.000001", "vector.binlog", "minimal_row_metadata.000001"} {
		evs := recordedEvents(t, name)
		for i, raw := range evs {
			start := imagesAt(t, evs[:i+1])
			if start < 0 {
				continue
			}
			for cut := len(raw) - 1; cut >= start; cut-- {
				sameMutated(t, name, slicesWith(evs, i, fixSize(raw[:cut])))
			}
			for at := start; at < len(raw)-4; at++ {
				for _, x := range []byte{0xff, 0x80, 0x01} {
					b := append([]byte(nil), raw...)
					b[at] ^= x
					sameMutated(t, name, slicesWith(evs, i, b))
				}
			}
		}
	}
}

// imagesAt returns where the row images of the last of evs start in its
// bytes, -1 when it is no rows event the own decoder takes.
func imagesAt(t *testing.T, evs [][]byte) int {
	p := replication.NewBinlogParser()
	p.SetFlavor(mysql.MySQLFlavor)
	p.SetRowsEventDecodeFunc(decodeRowsHeader)
	var ev *replication.BinlogEvent
	for _, raw := range evs {
		var err error
		if ev, err = p.Parse(raw); err != nil {
			t.Fatal(err)
		}
	}
	if re, ok := ev.Event.(*replication.RowsEvent); ok {
		if r := rawOf(re); r != nil {
			return replication.EventHeaderSize + r.pos
		}
	}
	return -1
}

// fixSize sets the event size in the header to the bytes' length.
func fixSize(b []byte) []byte {
	b = append([]byte(nil), b...)
	n := uint32(len(b))
	b[9], b[10], b[11], b[12] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	return b
}

func slicesWith(evs [][]byte, i int, b []byte) [][]byte {
	out := append([][]byte(nil), evs...)
	out[i] = b
	return out
}

// recordedEvents splits a recorded file into its events' bytes.
func recordedEvents(t *testing.T, name string) [][]byte {
	t.Helper()
	var out [][]byte
	p := replication.NewBinlogParser()
	p.SetRawMode(true)
	err := p.ParseFile(filepath.Join("testdata", "mysql8", name), 4, func(ev *replication.BinlogEvent) error {
		out = append(out, append([]byte(nil), ev.RawData...))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameMutated replays evs (checksums off: the mutations break them)
// through both decoders and compares.
func sameMutated(t *testing.T, name string, evs [][]byte) {
	t.Helper()
	run := func(own bool) (out replayed) {
		defer func() {
			if x := recover(); x != nil {
				t.Fatalf("%s own=%v: panic %v\n%s", name, own, x, debug.Stack())
			}
		}()
		s := &Source{cfg: Config{Include: []string{`.*\..*`}, Refetched: func(string, string) bool { return true }}.withDefaults(),
			log: testLogger(t), flavor: mysql.MySQLFlavor, tables: map[string]*cdc.TableDef{}, plans: map[string]*plan{}, file: name}
		s.filter, _ = newTableFilter(s.cfg.Include, nil)
		s.load = func(context.Context, string, string) (*cdc.TableDef, error) { return dropped(), nil }
		p := replication.NewBinlogParser()
		p.SetFlavor(mysql.MySQLFlavor)
		p.SetParseTime(true)
		p.SetTimestampStringLocation(time.UTC)
		p.SetRenderJSONAsMySQLText(true)
		p.SetVerifyChecksum(false)
		if own {
			p.SetRowsEventDecodeFunc(decodeRowsHeader)
		}
		for _, raw := range evs {
			ev, err := parseNoPanic(p, raw)
			if err == nil {
				err = s.handle(context.Background(), ev)
			}
			if err != nil {
				out.err = err
				break
			}
		}
		out.events, out.rejects = s.cur, s.curRejects
		return out
	}
	own, old := run(true), run(false)
	if (own.err == nil) != (old.err == nil) || len(own.events) != len(old.events) || len(own.rejects) != len(old.rejects) {
		t.Fatalf("%s: own %d events %d rejects err %v; go-mysql's %d %d %v", name, len(own.events), len(own.rejects), own.err,
			len(old.events), len(old.rejects), old.err)
	}
	for i := range own.events {
		if !sourcetest.SameEvent(own.events[i], old.events[i]) {
			t.Fatalf("%s event %d:\n own    %+v\n gomysql %+v", name, i, own.events[i], old.events[i])
		}
	}
}

// parseNoPanic is Parse with go-mysql's own panics (its header decoding
// does not check lengths, without RowsEventDecodeFunc) as errors: the old
// path's problem, not the comparison's.
func parseNoPanic(p *replication.BinlogParser, raw []byte) (ev *replication.BinlogEvent, err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("panic %v", x)
		}
	}()
	return p.Parse(raw)
}

// fuzzPlan is a plan over one column of every type the own decoder takes,
// built from a table map alone (a dropped table).
func fuzzPlan(t testing.TB) *plan {
	types := []byte{mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG,
		mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE,
		mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_BIT, mysql.MYSQL_TYPE_TIMESTAMP2,
		mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIME2, mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_YEAR,
		mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_VARCHAR,
		mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_GEOMETRY}
	metas := []uint16{0, 0, 0, 0, 0, 0, 4, 8, 10<<8 | 2, 65<<8 | 30, 2<<8 | 1, 3, 6, 2, 0, 0,
		uint16(mysql.MYSQL_TYPE_ENUM)<<8 | 2, uint16(mysql.MYSQL_TYPE_SET)<<8 | 8, uint16(mysql.MYSQL_TYPE_STRING)<<8 | 160, 300, 20, 2, 4, 4}
	tm := &replication.TableMapEvent{Schema: []byte("f"), Table: []byte("t"), ColumnCount: uint64(len(types)),
		ColumnType: types, ColumnMeta: metas, SignednessBitmap: []byte{0xa8}}
	if !ownTypes(tm) {
		t.Fatal("fuzz table not all own types")
	}
	return buildPlan(tm, dropped(), 0, testLogger(t))
}

// FuzzDecodeImage: any bytes decode to a row or an error, never a panic,
// and never past the data.
//
//	go test -run '^$' -fuzz FuzzDecodeImage -fuzztime 60s ./source/binlog/
func FuzzDecodeImage(f *testing.F) {
	p := fuzzPlan(f)
	f.Add([]byte{}, []byte{0xff, 0xff, 0xff})
	f.Add(make([]byte, 400), []byte{0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 1, 2, 0, 3, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0}, []byte{0x3f, 0, 0})
	f.Fuzz(func(t *testing.T, data, bitmap []byte) {
		if len(bitmap) < 3 {
			return
		}
		_, _, n, err := p.decodeImage(nil, data, bitmap, nil)
		if err == nil && n > len(data) {
			t.Fatalf("image of %d bytes read %d", len(data), n)
		}
	})
}

// compressRows returns the last of evs as MariaDB writes it with
// log_bin_compress: a v1 rows event becomes its *_COMPRESSED_EVENT_V1 with
// the row images zlib-compressed behind a header of their length. Other
// events come back as they are.
func compressRows(t *testing.T, evs [][]byte) []byte {
	t.Helper()
	raw := evs[len(evs)-1]
	var typ replication.EventType
	switch replication.EventType(raw[4]) {
	case replication.WRITE_ROWS_EVENTv1:
		typ = replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1
	case replication.UPDATE_ROWS_EVENTv1:
		typ = replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1
	case replication.DELETE_ROWS_EVENTv1:
		typ = replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1
	default:
		return raw
	}
	p := replication.NewBinlogParser()
	p.SetFlavor(mysql.MariaDBFlavor)
	p.SetRowsEventDecodeFunc(decodeRowsHeader)
	var ev *replication.BinlogEvent
	for _, r := range evs {
		var err error
		if ev, err = p.Parse(r); err != nil {
			t.Fatal(err)
		}
	}
	img := rawOf(ev.Event.(*replication.RowsEvent))
	if img == nil {
		t.Fatal("rows event not left raw")
	}
	start := replication.EventHeaderSize + img.pos
	images := raw[start : len(raw)-4] // the checksum after
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(images)
	zw.Close()
	out := append([]byte(nil), raw[:start]...)
	out = append(out, 0x84, byte(len(images)>>24), byte(len(images)>>16), byte(len(images)>>8), byte(len(images)))
	out = append(out, z.Bytes()...)
	out = append(out, 0, 0, 0, 0) // checksum, not verified
	out[4] = byte(typ)
	return fixSize(out)
}
