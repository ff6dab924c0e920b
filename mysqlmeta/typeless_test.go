package mysqlmeta_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/mysqlmeta"
	"github.com/rowsync/rowsync/source/binlog"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/debezium"
	"github.com/rowsync/rowsync/source/decode/jsonl"
	"github.com/rowsync/rowsync/source/decode/maxwell"
)

// The typeless formats, typed by a schema source, must give the values the
// binlog source reads for the same change. The test makes the change on the
// binlog server, reads it back through the binlog source, and decodes the
// messages each producer writes for it (built by hand from the producers'
// documented encodings, not from the binlog values).

const typesDDL = "CREATE TABLE $S.all_types (" +
	"id INT NOT NULL PRIMARY KEY, amount DECIMAL(12,2), whole DECIMAL(5,0), big BIGINT UNSIGNED, neg BIGINT," +
	"tiny TINYINT UNSIGNED, f FLOAT, d DOUBLE, day DATE, created DATETIME(3), created0 DATETIME, created6 DATETIME(6)," +
	"ts TIMESTAMP(6) NULL DEFAULT NULL, dur TIME, dur3 TIME(3), dur6 TIME(6), data BLOB, bin BINARY(4), vb VARBINARY(8)," +
	"doc JSON, state ENUM('new','paid','shipped'), tags SET('a','b','c'), flags BIT(10), flag BIT(1), yr YEAR," +
	"name VARCHAR(50), note TEXT)"

// The session writes in +05:00: TIMESTAMP is the UTC instant whatever zone wrote it.
const typesRows = "SET time_zone = '+05:00'; INSERT INTO $S.all_types VALUES " +
	"(1, 1234.50, -42, 18446744073709551615, -9223372036854775808, 255, 123456.79, 0.1e0+0.2e0, '2024-02-29'," +
	" '2024-01-02 03:04:05.678', '2024-01-02 03:04:05', '2024-01-02 03:04:05.123456', '2024-03-04 10:00:00.123456'," +
	" '-12:34:56', '12:34:56.780', '100:00:00.000001', x'000102ff', 'ab', x'00', '{\"k\": [1, 2]}', 'paid', 'c,a'," +
	" b'1010101010', b'1', 2024, 'héllo ✓', 'long text')," +
	"(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL," +
	" NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL); DELETE FROM $S.all_types WHERE id = 2"

var typesCols = strings.Fields("id amount whole big neg tiny f d day created created0 created6 ts dur dur3 dur6 " +
	"data bin vb doc state tags flags flag yr name note")

// debeziumRow1 is row 1 as Debezium's JsonConverter writes it without
// schemas, for the connector modes given; the modes only change the
// columns they govern.
func debeziumRow1(decimalMode, timeMode, binaryMode string) map[string]any {
	r := map[string]any{
		"id": 1, "big": -1, "neg": json.Number("-9223372036854775808"), "tiny": 255,
		"f": json.Number("123456.79"), "d": json.Number("0.30000000000000004"), "day": 19782,
		"created": int64(1704164645678), "created0": int64(1704164645000), "created6": int64(1704164645123456),
		"ts": "2024-03-04T05:00:00.123456Z", "dur": int64(-45296000000), "dur3": int64(45296780000),
		"dur6": int64(360000000001), "data": "AAEC/w==", "bin": "YWI=", "vb": "AA==", "doc": `{"k":[1,2]}`,
		"state": "paid", "tags": "a,c", "flags": "qgI=", "flag": true, "yr": 2024, "name": "héllo ✓", "note": "long text",
	}
	switch decimalMode {
	case "precise":
		r["amount"], r["whole"] = "AeI6", "1g=="
	case "string":
		r["amount"], r["whole"] = "1234.50", "-42"
	case "double":
		r["amount"], r["whole"] = json.Number("1234.5"), json.Number("-42.0")
	}
	switch timeMode {
	case "adaptive": // TIME(0..3) in ms
		r["dur"], r["dur3"] = int64(-45296000), int64(45296780)
	case "connect": // everything in ms: DATETIME(6) and TIME(6) lose their µs
		r["created6"], r["dur"], r["dur3"], r["dur6"] = int64(1704164645123), int64(-45296000), int64(45296780), int64(360000000)
	}
	switch binaryMode {
	case "hex":
		r["data"], r["bin"], r["vb"] = "000102ff", "6162", "00"
	case "base64-url-safe":
		r["data"] = "AAEC_w=="
	}
	return r
}

func debeziumNulls(id int) map[string]any {
	r := map[string]any{}
	for _, c := range typesCols {
		r[c] = nil
	}
	r["id"] = id
	return r
}

func debeziumMessage(t *testing.T, db, op string, before, after map[string]any) decode.Message {
	t.Helper()
	v, err := json.Marshal(map[string]any{"before": before, "after": after, "op": op, "ts_ms": 1709528400000,
		"source": map[string]any{"db": db, "table": "all_types", "file": "mysql-bin.000003", "pos": 4, "ts_ms": 1709528400000}})
	if err != nil {
		t.Fatal(err)
	}
	img := after
	if img == nil {
		img = before
	}
	return decode.Message{Key: fmt.Appendf(nil, `{"id":%v}`, img["id"]), Value: v, Topic: "t"}
}

const maxwellRow1 = `{"id":1,"amount":1234.50,"whole":-42,"big":18446744073709551615,"neg":-9223372036854775808,` +
	`"tiny":255,"f":123456.79,"d":0.30000000000000004,"day":"2024-02-29","created":"2024-01-02 03:04:05.678",` +
	`"created0":"2024-01-02 03:04:05","created6":"2024-01-02 03:04:05.123456","ts":"2024-03-04 05:00:00.123456",` +
	`"dur":"-12:34:56","dur3":"12:34:56.780","dur6":"100:00:00.000001","data":"AAEC/w==","bin":"YWI=","vb":"AA==",` +
	`"doc":{"k":[1,2]},"state":"paid","tags":["a","c"],"flags":682,"flag":true,"yr":2024,"name":"héllo ✓","note":"long text"}`

// jsonlRow1 is row 1 as canal prints it (liukelin's client), TIMESTAMP in
// the canal JVM's zone (+05:00 here), BLOBs as ISO-8859-1 text.
const jsonlRow1 = `{"id":"1","amount":"1234.50","whole":"-42","big":"18446744073709551615","neg":"-9223372036854775808",` +
	`"tiny":"255","f":"123456.79","d":"0.30000000000000004","day":"2024-02-29","created":"2024-01-02 03:04:05.678",` +
	`"created0":"2024-01-02 03:04:05","created6":"2024-01-02 03:04:05.123456","ts":"2024-03-04 10:00:00.123456",` +
	`"dur":"-12:34:56","dur3":"12:34:56.780","dur6":"100:00:00.000001","data":"\u0000\u0001\u0002ÿ","bin":"ab","vb":"\u0000",` +
	`"doc":"{\"k\": [1, 2]}","state":"paid","tags":"a,c","flags":"682","flag":"1","yr":"2024","name":"héllo ✓","note":"long text"}`

func TestTypelessFormatsMatchBinlog(t *testing.T) {
	db, s := ownSchema(t, "127.0.0.1:3307", "typeless", typesDDL)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src, err := binlog.New(ctx, binlog.Config{Addr: "127.0.0.1:3307", Include: []string{regexp.QuoteMeta(s) + `\..*`},
		MaxWait: 50 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	if _, err := db.Exec(strings.ReplaceAll(typesRows, "$S", s)); err != nil {
		t.Fatal(err)
	}
	var want []cdc.Event // insert 1, insert 2, delete 2
	for len(want) < 3 {
		b, err := src.Next(ctx)
		if err != nil {
			t.Fatalf("binlog after %d events: %v", len(want), err)
		}
		// The source reuses the rows once the batch is acked: keep copies.
		want = append(want, cdc.CloneEvents(b.Events)...)
		if err := b.Ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(want) != 3 || want[0].Op != cdc.Insert || want[2].Op != cdc.Delete {
		t.Fatalf("binlog events: %v", want)
	}
	schemas := mysqlmeta.NewSchemas(db)

	check := func(t *testing.T, dec decode.Decoder, msg decode.Message, want cdc.Event, skip ...string) {
		t.Helper()
		evs, err := dec.Decode(msg)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if len(evs) != 1 {
			t.Fatalf("%d events", len(evs))
		}
		got := evs[0]
		if got.Op != want.Op || got.DB != want.DB || got.Table != want.Table || !reflect.DeepEqual(got.PK, want.PK) {
			t.Errorf("event %v %s.%s pk %v, want %v %s.%s pk %v", got.Op, got.DB, got.Table, got.PK, want.Op, want.DB, want.Table, want.PK)
		}
		gi, wi := got.Image(), want.Image()
		for _, c := range typesCols {
			if contains(skip, c) {
				continue
			}
			if !reflect.DeepEqual(gi.Get(c), wi.Get(c)) {
				t.Errorf("%s = %#v (%T), binlog %#v (%T)", c, gi.Get(c), gi.Get(c), wi.Get(c), wi.Get(c))
			}
		}
		if len(got.Columns) != len(typesCols) {
			t.Errorf("%d columns, want %d", len(got.Columns), len(typesCols))
		}
	}

	t.Run("debezium", func(t *testing.T) {
		for _, m := range []decode.DebeziumModes{
			{},
			{Decimal: "string", Time: "adaptive", Binary: "hex"},
			{Decimal: "double", Time: "connect", Binary: "base64-url-safe"},
		} {
			t.Run(fmt.Sprintf("%s/%s/%s", m.Decimal, m.Time, m.Binary), func(t *testing.T) {
				dec, err := debezium.New(decode.Options{Schemas: schemas, Debezium: m})
				if err != nil {
					t.Fatal(err)
				}
				var skip []string
				if m.Time == "connect" {
					skip = []string{"created6", "dur6"} // connect mode keeps ms only
				}
				row := debeziumRow1(cmpOr(m.Decimal, "precise"), cmpOr(m.Time, "adaptive_time_microseconds"), cmpOr(m.Binary, "bytes"))
				check(t, dec, debeziumMessage(t, s, "c", nil, row), want[0], skip...)
				check(t, dec, debeziumMessage(t, s, "c", nil, debeziumNulls(2)), want[1])
				check(t, dec, debeziumMessage(t, s, "d", debeziumNulls(2), nil), want[2])
			})
		}
	})
	t.Run("maxwell", func(t *testing.T) {
		dec, err := maxwell.New(decode.Options{Schemas: schemas})
		if err != nil {
			t.Fatal(err)
		}
		msg := func(typ, data string) decode.Message {
			return decode.Message{Value: []byte(`{"database":"` + s + `","table":"all_types","type":"` + typ +
				`","ts":1709528400,"xid":1,"position":"mysql-bin.000003:4","primary_key_columns":["id"],"data":` + data + `}`)}
		}
		nulls := `{"id":2` + strings.Repeat(",", 0)
		for _, c := range typesCols[1:] {
			nulls += `,"` + c + `":null`
		}
		nulls += "}"
		check(t, dec, msg("insert", maxwellRow1), want[0])
		check(t, dec, msg("insert", nulls), want[1])
		check(t, dec, msg("delete", nulls), want[2])
	})
	t.Run("jsonl", func(t *testing.T) {
		dec, err := jsonl.New(decode.Options{Schemas: schemas, TimeZone: time.FixedZone("+05:00", 5*3600)})
		if err != nil {
			t.Fatal(err)
		}
		line := func(typ, after string) decode.Message {
			return decode.Message{Value: []byte(`{"binlog":"mysql-bin.000003:4","db":"` + s + `","table":"all_types","eventType":"` +
				typ + `","before":"","after":` + after + `,"time":"2024-03-04 10:00:00"}`)}
		}
		empty := `{"id":"2"`
		for _, c := range typesCols[1:] {
			empty += `,"` + c + `":""`
		}
		empty += "}"
		// NULL prints as "": a text column reads it as "", every other as NULL
		text := []string{"data", "bin", "vb", "state", "tags", "name", "note"}
		check(t, dec, line("INSERT", jsonlRow1), want[0])
		check(t, dec, line("INSERT", empty), want[1], text...)
		check(t, dec, line("DELETE", empty), want[2], text...)
	})
	t.Run("contradictions", func(t *testing.T) {
		dm, _ := debezium.New(decode.Options{Schemas: schemas})
		mw, _ := maxwell.New(decode.Options{Schemas: schemas})
		jl, _ := jsonl.New(decode.Options{Schemas: schemas})
		for _, tc := range []struct {
			name string
			dec  decode.Decoder
			msg  decode.Message
			want string
		}{
			{"debezium decimal not base64", dm, debeziumMessage(t, s, "c", nil, map[string]any{"id": 3, "amount": "12.5!"}), "column amount (decimal(12,2)): decimal \"12.5!\" is not base64"},
			{"debezium date as text", dm, debeziumMessage(t, s, "c", nil, map[string]any{"id": 3, "day": "2024-02-29"}), "column day (date)"},
			{"debezium unknown column", dm, debeziumMessage(t, s, "c", nil, map[string]any{"id": 3, "nope": 1}), "column nope: not in the table's definition"},
			{"maxwell bad date", mw, decode.Message{Value: []byte(`{"database":"` + s + `","table":"all_types","type":"insert","ts":1,"primary_key_columns":["id"],"data":{"id":3,"day":"yesterday"}}`)}, "column day"},
			{"jsonl bad integer", jl, decode.Message{Value: []byte(`{"db":"` + s + `","table":"all_types","eventType":"INSERT","before":"","after":{"id":"3","tiny":"abc"}}`)}, "column tiny (tinyint(3) unsigned)"},
			{"no such table", dm, debeziumMessage(t, s, "c", nil, map[string]any{"id": 3}), ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				msg := tc.msg
				if tc.name == "no such table" {
					msg.Value = []byte(strings.Replace(string(msg.Value), `"table":"all_types"`, `"table":"gone"`, 1))
					tc.want = "the schema source has no such table"
				}
				_, err := tc.dec.Decode(msg)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("err = %v, want it to contain %q", err, tc.want)
				}
			})
		}
	})
	t.Run("new column read on first sight", func(t *testing.T) {
		sc := mysqlmeta.NewSchemas(db)
		sc.MinRefresh = 0
		dec, _ := debezium.New(decode.Options{Schemas: sc})
		check(t, dec, debeziumMessage(t, s, "c", nil, debeziumNulls(2)), want[1]) // caches the definition
		if _, err := db.Exec("ALTER TABLE " + s + ".all_types ADD COLUMN extra DATE"); err != nil {
			t.Fatal(err)
		}
		defer db.Exec("ALTER TABLE " + s + ".all_types DROP COLUMN extra")
		evs, err := dec.Decode(debeziumMessage(t, s, "c", nil, map[string]any{"id": 4, "extra": 19782}))
		if err != nil {
			t.Fatal(err)
		}
		if got := evs[0].After.Get("extra"); got != time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC) {
			t.Errorf("extra = %#v, want 2024-02-29", got)
		}
	})
	t.Run("without a schema source", func(t *testing.T) {
		dec, _ := debezium.New(decode.Options{})
		evs, err := dec.Decode(debeziumMessage(t, s, "c", nil, debeziumRow1("precise", "", "")))
		if err != nil {
			t.Fatal(err)
		}
		if a := evs[0].After; a.Get("amount") != "AeI6" || a.Get("day") != int64(19782) {
			t.Errorf("untyped amount %#v day %#v, want the raw AeI6 and 19782 (README's format table)", a.Get("amount"), a.Get("day"))
		}
	})
}

// ownSchema opens the server at addr and creates a schema for one test,
// dropped at cleanup, running ddl in it ($S names it).
func ownSchema(t *testing.T, addr, name string, ddl ...string) (*sql.DB, string) {
	t.Helper()
	dc := mysqlmeta.DSN(addr, "", "")
	dc.MultiStatements = true
	db, err := sql.Open("mysql", dc.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf("mysqlmeta_%s_%d", name, rand.Uint64()%1e12)
	if _, err := db.Exec("CREATE DATABASE " + s + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + s); err != nil {
			t.Errorf("drop %s: %v", s, err)
		}
		db.Close()
	})
	for _, q := range ddl {
		if _, err := db.Exec(strings.ReplaceAll(q, "$S", s)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return db, s
}

func cmpOr(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
