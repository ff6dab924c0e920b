package mongo

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rowsync/rowsync/cdc"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func dec128(t testing.TB, s string) bson.Decimal128 {
	t.Helper()
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func date(y int, m time.Month, d, h, mi, s, ms int) bson.DateTime {
	return bson.NewDateTimeFromTime(time.Date(y, m, d, h, mi, s, ms*1e6, time.UTC))
}

// sameBSON compares the encoding of two values (type and bytes).
func sameBSON(t *testing.T, got, want any) {
	t.Helper()
	g, err1 := bson.Marshal(bson.D{{Key: "v", Value: got}})
	w, err2 := bson.Marshal(bson.D{{Key: "v", Value: want}})
	if err1 != nil || err2 != nil {
		t.Fatalf("marshal: %v / %v", err1, err2)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("got %s (%#v), want %s (%#v)", bson.Raw(g), got, bson.Raw(w), want)
	}
}

func TestConvert(t *testing.T) {
	ts := time.Date(2024, 2, 29, 23, 59, 58, 123_456_000, time.UTC)
	tests := []struct {
		name string
		typ  string // MySQL column type; "" = unknown kind
		in   cdc.Value
		want any
	}{
		{"null", "int(11)", nil, nil},
		{"tinyint", "tinyint(4)", int64(-128), int32(-128)},
		{"tinyint unsigned", "tinyint(3) unsigned", int64(255), int32(255)},
		{"bool", "tinyint(1)", int64(1), int32(1)},
		{"smallint", "smallint(6)", int64(-32768), int32(-32768)},
		{"mediumint unsigned", "mediumint(8) unsigned", int64(16777215), int32(16777215)},
		{"int", "int(11)", int64(math.MinInt32), int32(math.MinInt32)},
		{"int unsigned", "int(10) unsigned", int64(4294967295), int64(4294967295)},
		{"int unsigned small", "int(10) unsigned", int64(7), int64(7)},
		{"bigint", "bigint(20)", int64(math.MaxInt64), int64(math.MaxInt64)},
		{"bigint unsigned fits", "bigint(20) unsigned", int64(42), int64(42)},
		{"bigint unsigned beyond int64", "bigint(20) unsigned", uint64(math.MaxUint64), dec128(t, "18446744073709551615")},
		{"int as text", "int(11)", "-17", int32(-17)},
		{"decimal", "decimal(12,2)", cdc.Decimal("-1234.50"), dec128(t, "-1234.50")},
		{"decimal as text", "decimal(12,2)", "7.5", dec128(t, "7.50")},
		{"decimal beyond 34 digits stays text", "decimal(65,30)", cdc.Decimal("12345678901234567890.123456789012345678901234567890"), "12345678901234567890.123456789012345678901234567890"},
		{"float", "float", float64(float32(1.1)), float64(float32(1.1))},
		{"double", "double", 2.5e-300, 2.5e-300},
		{"datetime", "datetime(3)", ts, date(2024, 2, 29, 23, 59, 58, 123)},
		{"datetime as text", "datetime", "2024-02-29 23:59:58", date(2024, 2, 29, 23, 59, 58, 0)},
		{"zero datetime", "datetime", "0000-00-00 00:00:00", nil},
		{"zero date", "date", "0000-00-00", nil},
		{"partial date", "date", "2024-02-00", nil},
		{"timestamp", "timestamp(6)", ts, date(2024, 2, 29, 23, 59, 58, 123)},
		{"date", "date", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), date(2024, 2, 29, 0, 0, 0, 0)},
		{"time", "time", -(26*time.Hour + 5*time.Minute + 7*time.Second), "-26:05:07"},
		{"time fraction", "time(3)", 5*time.Second + 120*time.Millisecond, "00:00:05.120"},
		{"year", "year(4)", int64(2024), int32(2024)},
		{"json object keeps order", "json", cdc.JSON(`{"b":1,"a":[true,null,"x",1.5,{"z":{}}],"big":9007199254740993}`),
			bson.D{{Key: "b", Value: int32(1)}, {Key: "a", Value: bson.A{true, nil, "x", 1.5, bson.D{{Key: "z", Value: bson.D{}}}}}, {Key: "big", Value: int64(9007199254740993)}}},
		{"json array", "json", cdc.JSON(`[1,"two"]`), bson.A{int32(1), "two"}},
		{"json scalar", "json", cdc.JSON(`"hi"`), "hi"},
		{"json null", "json", cdc.JSON(`null`), nil},
		{"json duplicate key last wins", "json", cdc.JSON(`{"a":1,"a":2}`), bson.D{{Key: "a", Value: int32(2)}}},
		{"json huge int", "json", cdc.JSON(`123456789012345678901234567890`), dec128(t, "123456789012345678901234567890")},
		{"json invalid stays text", "json", cdc.JSON(`{"a":`), `{"a":`},
		{"json trailing data stays text", "json", cdc.JSON(`{} {}`), `{} {}`},
		{"blob", "blob", []byte{0, 0xff, 'a'}, bson.Binary{Data: []byte{0, 0xff, 'a'}}},
		{"binary as text", "binary(2)", "ab", bson.Binary{Data: []byte("ab")}},
		{"bit", "bit(8)", int64(5), int64(5)},
		{"bit 64 high", "bit(64)", uint64(1 << 63), dec128(t, "9223372036854775808")},
		{"enum", "enum('a','b')", "b", "b"},
		{"set", "set('a','b','c')", cdc.Set{"a", "c"}, bson.A{"a", "c"}},
		{"empty set", "set('a','b')", cdc.Set{}, bson.A{}},
		{"set as text", "set('a','b')", "a,b", bson.A{"a", "b"}},
		{"varchar", "varchar(10)", "Zoë 世界", "Zoë 世界"},
		{"varchar bytes", "varchar(10)", []byte("ok"), "ok"},
		{"varchar invalid utf8 bytes", "varchar(10)", []byte{0xff}, bson.Binary{Data: []byte{0xff}}},
		{"unknown int64", "", int64(5), int64(5)},
		{"unknown uint64", "", uint64(math.MaxUint64), dec128(t, "18446744073709551615")},
		{"unknown string", "", "5", "5"},
		{"unknown float", "", 1.25, 1.25},
		{"unknown decimal", "", cdc.Decimal("1.10"), dec128(t, "1.10")},
		{"unknown bytes", "", []byte("x"), bson.Binary{Data: []byte("x")}},
		{"unknown time", "", ts, date(2024, 2, 29, 23, 59, 58, 123)},
		{"unknown duration", "", 90 * time.Minute, "01:30:00"},
		{"unknown json", "", cdc.JSON(`{"k":"v"}`), bson.D{{Key: "k", Value: "v"}}},
		{"unknown set", "", cdc.Set{"x"}, bson.A{"x"}},
		{"unknown bool", "", true, true},
	}
	c := converter{loc: time.UTC, decimal: DecimalDecimal128}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var col *cdc.Column
			if tc.typ != "" {
				cc := cdc.ParseColumnType("c", tc.typ)
				col = &cc
			}
			got, err := c.convert(col, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			sameBSON(t, got, tc.want)
		})
	}
}

func TestConvertModes(t *testing.T) {
	s := converter{loc: time.UTC, decimal: DecimalString}
	col := cdc.ParseColumnType("d", "decimal(10,2)")
	got, _ := s.convert(&col, cdc.Decimal("1.50"))
	sameBSON(t, got, "1.50")
	big := cdc.ParseColumnType("u", "bigint unsigned")
	got, _ = s.convert(&big, uint64(math.MaxUint64))
	sameBSON(t, got, "18446744073709551615")

	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	z := converter{loc: shanghai}
	wall := time.Date(2024, 1, 1, 8, 0, 0, 0, time.UTC) // 08:00 in Shanghai
	dt := cdc.ParseColumnType("dt", "datetime")
	got, _ = z.convert(&dt, wall)
	sameBSON(t, got, date(2024, 1, 1, 0, 0, 0, 0))
	tsCol := cdc.ParseColumnType("ts", "timestamp")
	got, _ = z.convert(&tsCol, wall) // an instant already: unchanged
	sameBSON(t, got, date(2024, 1, 1, 8, 0, 0, 0))
	d := cdc.ParseColumnType("d", "date")
	got, _ = z.convert(&d, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	sameBSON(t, got, date(2024, 1, 1, 0, 0, 0, 0))
}

func TestConvertBadText(t *testing.T) {
	c := converter{loc: time.UTC}
	col := cdc.ParseColumnType("n", "int")
	if _, err := c.convert(&col, "twelve"); err == nil {
		t.Error("convert(int, \"twelve\") = nil error")
	}
}

// wideColumns is a table with one column of every kind.
var wideColumns = []cdc.Column{
	cdc.ParseColumnType("id", "bigint(20)"),
	cdc.ParseColumnType("tiny", "tinyint(4)"),
	cdc.ParseColumnType("n", "int(11)"),
	cdc.ParseColumnType("nu", "int(10) unsigned"),
	cdc.ParseColumnType("big", "bigint(20) unsigned"),
	cdc.ParseColumnType("price", "decimal(12,2)"),
	cdc.ParseColumnType("f", "float"),
	cdc.ParseColumnType("d", "double"),
	cdc.ParseColumnType("created", "datetime(3)"),
	cdc.ParseColumnType("ts", "timestamp"),
	cdc.ParseColumnType("day", "date"),
	cdc.ParseColumnType("zero", "datetime"),
	cdc.ParseColumnType("dur", "time"),
	cdc.ParseColumnType("yr", "year"),
	cdc.ParseColumnType("doc", "json"),
	cdc.ParseColumnType("data", "blob"),
	cdc.ParseColumnType("bits", "bit(8)"),
	cdc.ParseColumnType("color", "enum('red','green')"),
	cdc.ParseColumnType("tags", "set('a','b','c')"),
	cdc.ParseColumnType("name", "varchar(64)"),
	cdc.ParseColumnType("note", "text"),
}

// wideText is a wide row in MySQL text form (as canal-json carries it);
// NULL is nil.
var wideText = map[string]any{
	"id": "7", "tiny": "-3", "n": "123456", "nu": "4000000000", "big": "18446744073709551615",
	"price": "1234.50", "f": "1.5", "d": "-0.25", "created": "2024-02-29 23:59:58.123",
	"ts": "2024-03-01 00:00:01", "day": "2024-02-29", "zero": "0000-00-00 00:00:00",
	"dur": "838:59:59", "yr": "2024", "doc": `{"b":[1,2],"a":{"x":null}}`, "data": "\x00\xffbin",
	"bits": "5", "color": "green", "tags": "a,c", "name": "Zoë", "note": nil,
}

func wideRow(t testing.TB) *cdc.Row {
	t.Helper()
	row := cdc.RowOf()
	for i := range wideColumns {
		c := &wideColumns[i]
		s := wideText[c.Name]
		if s == nil {
			row.Set(c.Name, nil)
			continue
		}
		v, err := cdc.ParseText(c, s.(string))
		if err != nil {
			t.Fatal(err)
		}
		row.Set(c.Name, v)
	}
	return row
}

func wideEvent(t testing.TB, db string) cdc.Event {
	return cdc.Event{DB: db, Table: "wide", Op: cdc.Insert, PK: []string{"id"}, After: wideRow(t),
		Columns: wideColumns, Commit: time.Date(2024, 3, 1, 0, 0, 2, 0, time.UTC),
		Pos: cdc.Position{Version: cdc.BinlogVersion(3, 4711), Text: "mysql-bin.000003:4711"}}
}

func compileRule(t testing.TB, tc TableConfig, dec string) *rule {
	t.Helper()
	re, _ := cdc.CompileMatch(".*")
	r, err := compile(cdc.TableRule[TableConfig]{Match: re, Config: tc}, Config{Decimal: dec})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDocumentGolden pins the document of a wide row, and checks that the
// same values give the same bytes whichever way they arrive: typed or as
// text, in any column order; and the order of fields without descriptions.
func TestDocumentGolden(t *testing.T) {
	r := compileRule(t, TableConfig{Metadata: "_rowsync", VersionField: "_v"}, DecimalDecimal128)
	e := wideEvent(t, "shop")
	id, err := r.id(&e, e.After, e.PK)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := r.document(&e, e.After, id, e.Pos.Version)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bson.MarshalExtJSONIndent(raw, true, false, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "wide.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(want) != string(got)+"\n" {
		t.Errorf("document differs from %s (run with -update to accept):\n%s", golden, got)
	}

	// Typed values give the same bytes as the text form.
	typed := e
	typed.After = cdc.RowOf()
	for k, v := range e.After.All() {
		typed.After.Set(k, v)
	}
	typed.After.Set("id", int64(7))
	typed.After.Set("price", cdc.Decimal("1234.50"))
	typed.After.Set("tags", cdc.Set{"a", "c"})
	raw2, err := r.document(&typed, typed.After, id, e.Pos.Version)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, raw2) {
		t.Error("typed row encodes differently from its text form")
	}

	// A row whose columns come in another order than the event lists
	// them (a message naming its columns, a schema giving the table's
	// order) gives the same document: the event's order, the table's.
	shuffled := cdc.RowOf()
	for _, i := range []int{20, 3, 0, 19, 7, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18} {
		c := &wideColumns[i]
		shuffled.Set(c.Name, e.After.Get(c.Name))
	}
	if shuffled.Len() != len(wideColumns) || !shuffled.Equal(e.After) {
		t.Fatalf("shuffled row %v, want the columns of %v", shuffled, e.After)
	}
	raw3, err := r.document(&e, shuffled, id, e.Pos.Version)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, raw3) {
		t.Error("a row with its columns in another order encodes differently")
	}

	// Without column descriptions, fields follow the row's column order,
	// every time.
	bare := cdc.Event{DB: "shop", Table: "t", Op: cdc.Insert, PK: []string{"id"},
		After: cdc.RowOf("id", int64(1), "b", "x", "a", 1.5, "c", nil, "z", int64(3), "m", []byte("q"))}
	first, err := r.document(&bare, bare.After, int64(1), 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, _ := r.document(&bare, bare.After, int64(1), 0)
		if !bytes.Equal(first, again) {
			t.Fatal("document bytes differ between two encodings of one row")
		}
	}
	keys := []string{}
	elems, _ := first.Elements()
	for _, el := range elems {
		keys = append(keys, el.Key())
	}
	if want := []string{"_id", "id", "b", "a", "c", "z", "m", "_rowsync"}; !equalStrings(keys, want) {
		t.Errorf("field order %v, want %v", keys, want)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestID(t *testing.T) {
	cols := []cdc.Column{cdc.ParseColumnType("a", "int"), cdc.ParseColumnType("b", "varchar(5)"), cdc.ParseColumnType("c", "int")}
	row := cdc.RowOf("a", int64(1), "b", "x", "c", int64(3))
	e := cdc.Event{DB: "db", Table: "t", Op: cdc.Insert, Columns: cols, After: row}
	tests := []struct {
		name string
		tc   TableConfig
		pk   []string
		want any
		err  bool
	}{
		{"single", TableConfig{}, []string{"a"}, int32(1), false},
		{"composite in key order", TableConfig{}, []string{"b", "a"}, bson.D{{Key: "b", Value: "x"}, {Key: "a", Value: int32(1)}}, false},
		{"composite renamed", TableConfig{Rename: map[string]string{"a": "alpha"}}, []string{"a", "b"}, bson.D{{Key: "alpha", Value: int32(1)}, {Key: "b", Value: "x"}}, false},
		{"template", TableConfig{ID: "{table}:{pk}"}, []string{"a", "b"}, "t:1:x", false},
		{"template column", TableConfig{ID: "u-{c}"}, nil, "u-3", false},
		{"no pk", TableConfig{}, nil, nil, true},
		{"missing pk column", TableConfig{}, []string{"zz"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := compileRule(t, tc.tc, "")
			got, err := r.id(&e, row, tc.pk)
			if tc.err {
				if err == nil {
					t.Errorf("id = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sameBSON(t, got, tc.want)
		})
	}
}
