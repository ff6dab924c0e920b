package maxwell

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/internal/golden"
)

func decodeAll(t *testing.T, d decode.Decoder, key string, values ...string) ([]cdc.Event, error) {
	t.Helper()
	var all []cdc.Event
	for _, v := range values {
		m := decode.Message{Value: []byte(v), Topic: "maxwell", Offset: 7}
		if key != "" {
			m.Key = []byte(key)
		}
		evs, err := d.Decode(m)
		if err != nil {
			return all, err
		}
		all = append(all, evs...)
	}
	return all, nil
}

const shopDef = `{"type":"table-create","database":"shop","table":"user_profile","ts":1714558800000,
"sql":"create table ...","position":"mysql-bin.000003:100",
"def":{"database":"shop","table":"user_profile","charset":"utf8mb4","primary-key":["id"],"columns":[
 {"type":"bigint","name":"id","signed":false},
 {"type":"varchar","name":"nickname","charset":"utf8mb4"},
 {"type":"decimal","name":"balance"},
 {"type":"double","name":"score"},
 {"type":"float","name":"ratio"},
 {"type":"tinyint","name":"is_vip","signed":true},
 {"type":"date","name":"birthday"},
 {"type":"datetime","name":"created_at","column-length":3},
 {"type":"timestamp","name":"updated_at"},
 {"type":"blob","name":"avatar","charset":"binary"},
 {"type":"varchar","name":"bin_name","charset":"binary"},
 {"type":"text","name":"bio","charset":"utf8mb4"},
 {"type":"enum","name":"status","enum-values":["active","banned"]},
 {"type":"set","name":"flags","enum-values":["a","b","c"]},
 {"type":"json","name":"doc"},
 {"type":"time","name":"dur","column-length":0},
 {"type":"bit","name":"bits"},
 {"type":"year","name":"yr"},
 {"type":"geometry","name":"geo"}]}}`

const shopInsert = `{"database":"shop","table":"user_profile","type":"insert","ts":1714558830,"xid":8812,
"position":"mysql-bin.000003:4711","data":{"id":18446744073709551615,"nickname":"Zoë 🎉","balance":1234.50,
"score":1.0E10,"ratio":3.14,"is_vip":1,"birthday":"1990-02-28","created_at":"2024-05-01 10:20:30.120",
"updated_at":"2024-05-01 10:20:31","avatar":"AP8Q","bin_name":"YWI=","bio":null,"status":"banned",
"flags":["a","c"],"doc":{"b": [1, 2.50], "a": "x"},"dur":"-838:59:59","bits":5,"yr":2024,
"geo":"POINT (1 2)"}}`

func TestSchemaTyping(t *testing.T) {
	d, _ := New(decode.Options{})
	evs, err := decodeAll(t, d, "", shopDef, shopInsert)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("got %d events", len(evs))
	}
	ev := evs[0]
	want := cdc.RowOf("id", uint64(math.MaxUint64), "nickname", "Zoë 🎉", "balance", cdc.Decimal("1234.50"), "score", 1e10, "ratio", float64(float32(3.14)), "is_vip", int64(1), "birthday", time.Date(1990, 2, 28, 0, 0, 0, 0, time.UTC), "created_at", time.Date(2024, 5, 1, 10, 20, 30, 120e6, time.UTC), "updated_at", time.Date(2024, 5, 1, 10, 20, 31, 0, time.UTC), "avatar", []byte{0x00, 0xff, 0x10}, "bin_name", []byte("ab"), "bio", nil, "status", "banned", "flags", cdc.Set{"a", "c"}, "doc", cdc.JSON(`{"b": [1, 2.50], "a": "x"}`), "dur", -(838*time.Hour + 59*time.Minute + 59*time.Second), "bits", int64(5), "yr", int64(2024), "geo", "POINT (1 2)")
	if !ev.After.Equal(want) {
		t.Errorf("got %v\nwant %v", ev.After, want)
		for k, v := range want.All() {
			if !reflect.DeepEqual(ev.After.Get(k), v) {
				t.Errorf("%s: got %T %#v, want %T %#v", k, ev.After.Get(k), ev.After.Get(k), v, v)
			}
		}
	}
	if !reflect.DeepEqual(ev.PK, []string{"id"}) {
		t.Errorf("pk %v, want [id] from the learnt schema", ev.PK)
	}
	if got, want := ev.Pos.Version, cdc.BinlogVersion(3, 4711); got != want {
		t.Errorf("version %x, want %x", got, want)
	}
	if ev.Pos.Text != "mysql-bin.000003:4711" {
		t.Errorf("pos text %q", ev.Pos.Text)
	}
	if !ev.Commit.Equal(time.Unix(1714558830, 0)) {
		t.Errorf("commit %v", ev.Commit)
	}
	c, ok := ev.Column("created_at")
	if !ok || c.Kind != cdc.KindDateTime || c.Precision != 3 {
		t.Errorf("created_at column %+v", c)
	}
	if c, _ := ev.Column("id"); !c.Unsigned || c.Kind != cdc.KindInt {
		t.Errorf("id column %+v", c)
	}

	// dropping the table forgets the schema: values fall back to JSON typing
	evs, err = decodeAll(t, d, "", `{"type":"table-drop","database":"shop","table":"user_profile","ts":1714558900000}`, shopInsert)
	if err != nil {
		t.Fatal(err)
	}
	if v := evs[0].After.Get("birthday"); v != "1990-02-28" {
		t.Errorf("after drop: birthday %T %v, want the text", v, v)
	}
	if evs[0].PK != nil {
		t.Errorf("after drop: pk %v, want none", evs[0].PK)
	}
}

func TestRenameMovesSchema(t *testing.T) {
	d, _ := New(decode.Options{})
	alter := `{"type":"table-alter","database":"shop","table":"u2","ts":1,
	 "old":{"database":"shop","table":"user_profile","columns":[{"type":"date","name":"birthday"}]},
	 "def":{"database":"shop","table":"u2","columns":[{"type":"date","name":"birthday"}],"primary-key":["birthday"]}}`
	row := func(tbl string) string {
		return `{"database":"shop","table":"` + tbl + `","type":"insert","ts":1,"data":{"birthday":"2024-01-02"}}`
	}
	evs, err := decodeAll(t, d, "", shopDef, alter, row("u2"), row("user_profile"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := evs[0].After.Get("birthday").(time.Time); !ok {
		t.Errorf("renamed table: %T, want time.Time", evs[0].After.Get("birthday"))
	}
	if _, ok := evs[1].After.Get("birthday").(string); !ok {
		t.Errorf("old name: %T, want the text (schema gone)", evs[1].After.Get("birthday"))
	}
}

func TestDecode(t *testing.T) {
	keyCols := decode.Options{KeyColumns: func(db, table string) []string {
		if table == "configured" {
			return []string{"code"}
		}
		return nil
	}}
	tests := []struct {
		name   string
		opts   decode.Options
		key    string
		values []string
		check  func(t *testing.T, evs []cdc.Event)
	}{
		{
			name:   "bigint unsigned max without schema",
			values: []string{`{"database":"d","table":"t","type":"insert","ts":1,"primary_key_columns":["id"],"data":{"id":18446744073709551615,"n":-9223372036854775808,"big":123456789012345678901234567890,"dec":-0.10,"exp":1.5E+3,"f":true,"j":[1,"x"]}}`},
			check: func(t *testing.T, evs []cdc.Event) {
				want := cdc.RowOf("id", uint64(math.MaxUint64), "n", int64(math.MinInt64), "big", cdc.Decimal("123456789012345678901234567890"), "dec", cdc.Decimal("-0.10"), "exp", cdc.Decimal("1500"), "f", int64(1), "j", cdc.JSON(`[1, "x"]`))
				// the columns in the message's order
				if !evs[0].After.Equal(want) || !slices.Equal(evs[0].After.Names(), want.Names()) {
					t.Errorf("got %v\nwant %v", evs[0].After, want)
				}
			},
		},
		{
			name:   "update before is data merged with old",
			values: []string{`{"database":"d","table":"t","type":"update","ts":1,"primary_key_columns":["id"],"data":{"id":1,"a":"new","b":2},"old":{"a":null}}`},
			check: func(t *testing.T, evs []cdc.Event) {
				ev := evs[0]
				if ev.Op != cdc.Update || ev.Before.Get("a") != nil || ev.After.Get("a") != "new" || ev.Before.Get("b") != int64(2) {
					t.Errorf("got before %v after %v", ev.Before, ev.After)
				}
			},
		},
		{
			name: "bootstrap",
			values: []string{`{"database":"d","table":"t","type":"bootstrap-start","ts":1,"data":{}}`,
				`{"database":"d","table":"t","type":"bootstrap-insert","ts":1,"primary_key_columns":["id"],"data":{"id":1}}`,
				`{"database":"d","table":"t","type":"bootstrap-complete","ts":1,"data":{}}`},
			check: func(t *testing.T, evs []cdc.Event) {
				if len(evs) != 1 || evs[0].Op != cdc.Insert || evs[0].Before != nil {
					t.Errorf("got %+v", evs)
				}
			},
		},
		{
			name:   "hash kafka key names the pk, lower-cased",
			key:    `{"database":"d","table":"t","pk.id":1,"pk.region":"eu"}`,
			values: []string{`{"database":"d","table":"t","type":"delete","ts":1,"data":{"ID":1,"Region":"eu","x":null}}`},
			check: func(t *testing.T, evs []cdc.Event) {
				if !reflect.DeepEqual(evs[0].PK, []string{"ID", "Region"}) || evs[0].Op != cdc.Delete || evs[0].After != nil {
					t.Errorf("got pk %v op %v", evs[0].PK, evs[0].Op)
				}
			},
		},
		{
			name:   "array kafka key",
			key:    `["d","t",[{"b":1},{"a":2}]]`,
			values: []string{`{"database":"d","table":"t","type":"insert","ts":1,"data":{"a":2,"b":1}}`},
			check: func(t *testing.T, evs []cdc.Event) {
				if !reflect.DeepEqual(evs[0].PK, []string{"b", "a"}) {
					t.Errorf("pk %v", evs[0].PK)
				}
			},
		},
		{
			name:   "uuid key and no config leave the pk empty",
			key:    `{"database":"d","table":"t","_uuid":"9f0c"}`,
			values: []string{`{"database":"d","table":"t","type":"insert","ts":1,"data":{"a":2}}`},
			check: func(t *testing.T, evs []cdc.Event) {
				if evs[0].PK != nil {
					t.Errorf("pk %v", evs[0].PK)
				}
			},
		},
		{
			name:   "configured key columns",
			opts:   keyCols,
			values: []string{`{"database":"d","table":"configured","type":"insert","ts":1,"data":{"code":"x"}}`},
			check: func(t *testing.T, evs []cdc.Event) {
				if !reflect.DeepEqual(evs[0].PK, []string{"code"}) {
					t.Errorf("pk %v", evs[0].PK)
				}
			},
		},
		{
			name:   "several objects in one message, rows of one event share the version",
			values: []string{"{\"database\":\"d\",\"table\":\"t\",\"type\":\"insert\",\"ts\":1,\"position\":\"bin.000002:99\",\"primary_key_columns\":[\"id\"],\"data\":{\"id\":1}}\r\n{\"database\":\"d\",\"table\":\"t\",\"type\":\"insert\",\"ts\":1,\"position\":\"bin.000002:99\",\"primary_key_columns\":[\"id\"],\"data\":{\"id\":2}}\n"},
			check: func(t *testing.T, evs []cdc.Event) {
				if len(evs) != 2 || evs[0].Pos.Version != evs[1].Pos.Version || evs[0].Pos.Version != cdc.BinlogVersion(2, 99) {
					t.Errorf("got %+v", evs)
				}
			},
		},
		{
			name:   "no position: transport text, version 0",
			values: []string{`{"database":"d","table":"t","type":"insert","ts":1,"xid":5,"data":{"id":1}}`},
			check: func(t *testing.T, evs []cdc.Event) {
				if evs[0].Pos.Version != 0 || evs[0].Pos.Text != "maxwell/0@7" {
					t.Errorf("pos %+v", evs[0].Pos)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := decodeAll(t, d, tc.key, tc.values...)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) == 0 {
				t.Fatal("no events")
			}
			tc.check(t, evs)
		})
	}
}

func TestPoison(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"bad json", `{"database":"d",`, "bad JSON"},
		{"not an object", `[1,2]`, "bad JSON"},
		{"empty", ``, "empty message"},
		{"unknown type", `{"database":"d","table":"t","type":"upsert","data":{}}`, `d.t: unknown type "upsert"`},
		{"missing type", `{"database":"d","table":"t","data":{}}`, "missing type"},
		{"missing data", `{"database":"d","table":"t","type":"insert","ts":1}`, "insert without data"},
		{"missing table", `{"database":"d","type":"insert","ts":1,"data":{}}`, "missing database or table"},
		{"pk column missing", `{"database":"d","table":"t","type":"insert","ts":1,"primary_key_columns":["id"],"data":{"x":1}}`, `primary key column "id" missing`},
		{"bad position", `{"database":"d","table":"t","type":"insert","ts":1,"position":"nocolon","data":{"x":1}}`, `position "nocolon"`},
		{"bad ts", `{"database":"d","table":"t","type":"insert","ts":"x","data":{"x":1}}`, "bad JSON"},
		{"bad base64 in a blob column", `{"database":"shop","table":"user_profile","type":"insert","ts":1,"data":{"id":1,"avatar":"%%%"}}`, "column avatar: binary value is not base64"},
		{"text in an int column", `{"database":"shop","table":"user_profile","type":"insert","ts":1,"data":{"id":"abc"}}`, "column id"},
		{"table-create without def", `{"database":"d","table":"t","type":"table-create","ts":1}`, "table-create without def"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := New(decode.Options{})
			if _, err := decodeAll(t, d, "", shopDef); err != nil {
				t.Fatal(err)
			}
			evs, err := decodeAll(t, d, "", tc.value)
			if err == nil {
				t.Fatalf("no error, events %+v", evs)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "maxwell: ") {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestConcurrentSchemaCache(t *testing.T) {
	d, _ := New(decode.Options{})
	done := make(chan struct{})
	for i := 0; i < 4; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := 0; j < 200; j++ {
				if _, err := d.Decode(decode.Message{Value: []byte(shopDef)}); err != nil {
					t.Error(err)
					return
				}
				if _, err := d.Decode(decode.Message{Value: []byte(shopInsert)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < 4; i++ {
		<-done
	}
}

func seeds(f *testing.F) {
	for _, b := range golden.Samples(f, "testdata/*.json*") {
		f.Add([]byte(nil), b)
	}
	f.Add([]byte(`{"database":"d","table":"t","pk.id":1}`), []byte(shopInsert))
	f.Add([]byte(`["d","t",[{"id":1}]]`), []byte(shopDef))
}

func FuzzDecode(f *testing.F) {
	seeds(f)
	for _, m := range golden.HostileSeeds(f) {
		f.Add(m.Key, m.Value)
	}
	d, _ := New(decode.Options{})
	d = decode.Bounded(d, decode.Options{}) // as run uses it
	f.Fuzz(func(t *testing.T, key, value []byte) {
		golden.CheckDecoded(t, d, decode.Message{Key: key, Value: value})
	})
}

func BenchmarkDecode(b *testing.B) {
	msg := []byte(`{"database":"shop","table":"user_profile","type":"update","ts":1714558830,"xid":8813,"commit":true,"position":"mysql-bin.000003:5120","primary_key_columns":["id"],"data":{"id":1001,"nickname":"Zoë","balance":1234.50,"score":98.6,"is_vip":1,"birthday":"1990-02-28","created_at":"2024-05-01 10:20:30.120","updated_at":"2024-05-01 10:20:31","avatar":null,"bio":"hello","status":"active"},"old":{"balance":1000.00,"bio":null}}`)
	b.Run("maxwell", func(b *testing.B) {
		d, _ := New(decode.Options{})
		if _, err := d.Decode(decode.Message{Value: []byte(shopDef)}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			if _, err := d.Decode(decode.Message{Value: msg}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	// naive: what a consumer does without a decoder, untyped map[string]any.
	b.Run("naive-unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(msg, &m); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
