package debezium

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"math/big"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/internal/golden"
)

// twos returns base64 of n as a big-endian two's-complement integer, as
// Kafka Connect's Decimal writes the unscaled value.
func twos(n int64) string {
	b := big.NewInt(n).Bytes()
	if n >= 0 {
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	// -n in the smallest width that keeps the sign bit
	for w := 1; ; w++ {
		m := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(8*w)), big.NewInt(n))
		mb := m.Bytes()
		if len(mb) == w && mb[0]&0x80 != 0 {
			return base64.StdEncoding.EncodeToString(mb)
		}
	}
}

// envelope builds a with-schema record for one row struct.
func envelope(fields, before, after, op string) string {
	return `{"schema":{"type":"struct","fields":[{"type":"struct","fields":[` + fields + `],"optional":true,"field":"before"},` +
		`{"type":"struct","fields":[` + fields + `],"optional":true,"field":"after"},` +
		`{"type":"struct","fields":[],"field":"source"},{"type":"string","field":"op"}],"name":"x.Envelope"},` +
		`"payload":{"before":` + before + `,"after":` + after + `,"source":{"db":"shop","table":"t","file":"mysql-bin.000003","pos":4711,"row":1,"ts_ms":1714558830000},"op":"` + op + `","ts_ms":1714558830123}}`
}

func TestSchemaTypes(t *testing.T) {
	fields := `{"type":"int64","optional":false,"field":"id"},
	{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"balance"},
	{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"},"field":"neg"},
	{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"0","__debezium.source.column.type":"BIGINT UNSIGNED"},"field":"ubig"},
	{"type":"int64","parameters":{"__debezium.source.column.type":"BIGINT UNSIGNED"},"field":"ulong"},
	{"type":"int32","name":"io.debezium.time.Date","field":"birthday"},
	{"type":"int64","name":"io.debezium.time.Timestamp","field":"created_at"},
	{"type":"int64","name":"io.debezium.time.MicroTimestamp","field":"micro_at"},
	{"type":"string","name":"io.debezium.time.ZonedTimestamp","field":"updated_at"},
	{"type":"int64","name":"io.debezium.time.MicroTime","field":"dur"},
	{"type":"string","name":"io.debezium.data.Json","field":"doc"},
	{"type":"string","name":"io.debezium.data.EnumSet","parameters":{"allowed":"a,b,c"},"field":"flags"},
	{"type":"string","name":"io.debezium.data.EnumSet","parameters":{"allowed":"a,b,c"},"field":"noflags"},
	{"type":"string","name":"io.debezium.data.Enum","parameters":{"allowed":"active,banned"},"field":"status"},
	{"type":"bytes","field":"avatar"},
	{"type":"bytes","name":"io.debezium.data.Bits","parameters":{"length":"12"},"field":"bits"},
	{"type":"boolean","field":"flag"},
	{"type":"float","field":"ratio"},
	{"type":"double","field":"score"},
	{"type":"int32","name":"io.debezium.time.Year","field":"yr"},
	{"type":"string","field":"bio"},
	{"type":"struct","name":"io.debezium.data.geometry.Geometry","fields":[{"type":"bytes","field":"wkb"},{"type":"int32","field":"srid"}],"field":"geo"}`
	after := `{"id":1001,"balance":"` + twos(123450) + `","neg":"` + twos(-5) + `","ubig":"AP//////////","ulong":-1,
	"birthday":19844,"created_at":1714558830120,"micro_at":1714558830123456,"updated_at":"2024-05-01T10:20:31Z",
	"dur":-3020399000000,"doc":"{\"a\": [1, 2]}","flags":"a,c","noflags":"","status":"banned","avatar":"AP8Q",
	"bits":"BQ8=","flag":true,"ratio":3.14,"score":1.0E10,"yr":2024,"bio":null,"geo":{"wkb":"AQE=","srid":null}}`
	d, _ := New(decode.Options{})
	evs, err := d.Decode(decode.Message{Key: []byte(`{"id":1001}`), Value: []byte(envelope(fields, "null", after, "r"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	ev := evs[0]
	want := cdc.RowOf("id", int64(1001), "balance", cdc.Decimal("1234.50"), "neg", cdc.Decimal("-0.05"), "ubig", uint64(math.MaxUint64), "ulong", uint64(math.MaxUint64), "birthday", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), "created_at", time.Date(2024, 5, 1, 10, 20, 30, 120e6, time.UTC), "micro_at", time.Date(2024, 5, 1, 10, 20, 30, 123456e3, time.UTC), "updated_at", time.Date(2024, 5, 1, 10, 20, 31, 0, time.UTC), "dur", -(838*time.Hour + 59*time.Minute + 59*time.Second), "doc", cdc.JSON(`{"a": [1, 2]}`), "flags", cdc.Set{"a", "c"}, "noflags", cdc.Set{}, "status", "banned", "avatar", []byte{0, 0xff, 0x10}, "bits", int64(0x0f05), "flag", int64(1), "ratio", float64(float32(3.14)), "score", 1e10, "yr", int64(2024), "bio", nil, "geo", []byte{1, 1})
	for k, v := range want.All() {
		if !reflect.DeepEqual(ev.After.Get(k), v) {
			t.Errorf("%s: got %T %#v, want %T %#v", k, ev.After.Get(k), ev.After.Get(k), v, v)
		}
	}
	if ev.After.Len() != want.Len() {
		t.Errorf("got %d columns, want %d", ev.After.Len(), want.Len())
	}
	if ev.Op != cdc.Insert || ev.Before != nil {
		t.Errorf("op %v before %v", ev.Op, ev.Before)
	}
	if ev.Pos.Version != cdc.BinlogVersion(3, 4711) || ev.Pos.Text != "mysql-bin.000003:4711 row 1" {
		t.Errorf("pos %+v", ev.Pos)
	}
	if !ev.Commit.Equal(time.UnixMilli(1714558830000)) {
		t.Errorf("commit %v", ev.Commit)
	}
	if !reflect.DeepEqual(ev.PK, []string{"id"}) {
		t.Errorf("pk %v", ev.PK)
	}
	if c, _ := ev.Column("balance"); c.Kind != cdc.KindDecimal || c.Precision != 2 {
		t.Errorf("balance column %+v", c)
	}
	if c, _ := ev.Column("status"); c.Kind != cdc.KindEnum || !reflect.DeepEqual(c.Elems, []string{"active", "banned"}) {
		t.Errorf("status column %+v", c)
	}
}

func TestKeyWithSchema(t *testing.T) {
	key, err := os.ReadFile("testdata/debezium-docs-key-with-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := keyColumns(key); !reflect.DeepEqual(got, []string{"id"}) {
		t.Errorf("key columns %v", got)
	}
	if got := keyColumns([]byte(`{"payload":{"b":1,"a":2},"schema":{}}`)); !reflect.DeepEqual(got, []string{"b", "a"}) {
		t.Errorf("key order: %v", got)
	}
	for _, k := range []string{``, `null`, `"abc"`, `12`, `{bad`} {
		if got := keyColumns([]byte(k)); got != nil {
			t.Errorf("key %q: %v, want none", k, got)
		}
	}
}

const schemaless = `{"before":%s,"after":%s,"source":{"version":"2.7.0.Final","connector":"mysql","name":"dbserver1","ts_ms":1714558830000,"snapshot":"false","db":"inventory","table":"customers","server_id":223344,"gtid":null,"file":"mysql-bin.000003","pos":805,"row":0,"thread":7,"query":null},"op":"%s","ts_ms":1714558830456}`

func record(before, after, op string) string {
	r := strings.Replace(schemaless, "%s", before, 1)
	r = strings.Replace(r, "%s", after, 1)
	return strings.Replace(r, "%s", op, 1)
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		opts  decode.Options
		msgs  []decode.Message
		check func(t *testing.T, evs []cdc.Event)
	}{
		{
			name: "tombstones give nothing",
			msgs: []decode.Message{{Key: []byte(`{"id":1}`)}, {Key: []byte(`{"id":1}`), Value: []byte("null")},
				{Value: []byte(" \n")}, {Value: []byte(`{"schema":null,"payload":null}`)}},
			check: func(t *testing.T, evs []cdc.Event) {
				if len(evs) != 0 {
					t.Errorf("got %+v", evs)
				}
			},
		},
		{
			name: "pk change is a delete and a create",
			msgs: []decode.Message{
				{Key: []byte(`{"id":1004}`), Value: []byte(record(`{"id":1004,"email":"a@x"}`, "null", "d"))},
				{Key: []byte(`{"id":1004}`)},
				{Key: []byte(`{"id":2004}`), Value: []byte(record("null", `{"id":2004,"email":"a@x"}`, "c"))},
			},
			check: func(t *testing.T, evs []cdc.Event) {
				if len(evs) != 2 || evs[0].Op != cdc.Delete || evs[1].Op != cdc.Insert ||
					evs[0].Before.Get("id") != int64(1004) || evs[1].After.Get("id") != int64(2004) || evs[0].After != nil {
					t.Fatalf("got %+v", evs)
				}
				for _, ev := range evs {
					if !reflect.DeepEqual(ev.PK, []string{"id"}) {
						t.Errorf("pk %v", ev.PK)
					}
				}
			},
		},
		{
			name: "schemaless values keep their JSON form",
			msgs: []decode.Message{{Key: []byte(`{"id":1}`), Value: []byte(record(`{"id":1,"n":1.5}`,
				`{"id":18446744073709551615,"n":2.25,"d":19844,"s":"x","b":false,"g":{"wkb":"AQ=="}}`, "u"))}},
			check: func(t *testing.T, evs []cdc.Event) {
				ev := evs[0]
				want := cdc.RowOf("id", uint64(math.MaxUint64), "n", 2.25, "d", int64(19844), "s", "x", "b", int64(0), "g", cdc.JSON(`{"wkb": "AQ=="}`))
				if ev.Op != cdc.Update || !ev.After.Equal(want) || ev.Before.Get("n") != 1.5 {
					t.Errorf("got %v / %v", ev.Before, ev.After)
				}
				if ev.Pos.Version != cdc.BinlogVersion(3, 805) || ev.Pos.Text != "mysql-bin.000003:805" {
					t.Errorf("pos %+v", ev.Pos)
				}
			},
		},
		{
			name: "configured key columns when the record has no key",
			opts: decode.Options{KeyColumns: func(db, table string) []string { return []string{"email"} }},
			msgs: []decode.Message{{Value: []byte(record("null", `{"id":1,"email":"a@x"}`, "c"))}},
			check: func(t *testing.T, evs []cdc.Event) {
				if !reflect.DeepEqual(evs[0].PK, []string{"email"}) {
					t.Errorf("pk %v", evs[0].PK)
				}
			},
		},
		{
			name: "truncate, message, heartbeat, transaction metadata give nothing",
			msgs: []decode.Message{{Value: []byte(record("null", "null", "t"))}, {Value: []byte(record("null", "null", "m"))},
				{Value: []byte(`{"ts_ms":1714558830000}`)}, {Value: []byte(`{"status":"BEGIN","id":"571","event_count":null}`)}},
			check: func(t *testing.T, evs []cdc.Event) {
				if len(evs) != 0 {
					t.Errorf("got %+v", evs)
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
			var all []cdc.Event
			for i, m := range tc.msgs {
				evs, err := d.Decode(m)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				all = append(all, evs...)
			}
			tc.check(t, all)
		})
	}
}

func TestSchemaChangeTopic(t *testing.T) {
	var got []decode.DDL
	d, _ := New(decode.Options{OnDDL: func(dd decode.DDL) { got = append(got, dd) }})
	v := `{"source":{"db":"inventory","table":"customers","file":"mysql-bin.000003","pos":900,"ts_ms":1714558830000},"ts_ms":1714558830456,"databaseName":"inventory","schemaName":null,"ddl":"ALTER TABLE customers ADD COLUMN tags json","tableChanges":[{"type":"ALTER","id":"\"inventory\".\"customers\""}]}`
	evs, err := d.Decode(decode.Message{Key: []byte(`{"databaseName":"inventory"}`), Value: []byte(v)})
	if err != nil || len(evs) != 0 {
		t.Fatalf("events %v err %v", evs, err)
	}
	if len(got) != 1 || got[0].DB != "inventory" || got[0].Table != "customers" || got[0].Type != "ALTER" ||
		got[0].SQL != "ALTER TABLE customers ADD COLUMN tags json" || got[0].Pos.Version != cdc.BinlogVersion(3, 900) {
		t.Errorf("got %+v", got)
	}
}

// A truncate record is reported as a TRUNCATE statement of its table (the
// sinks cannot mirror it; the wiring makes that visible), not skipped.
func TestTruncateReported(t *testing.T) {
	var got []decode.DDL
	d, _ := New(decode.Options{OnDDL: func(dd decode.DDL) { got = append(got, dd) }})
	v := `{"before":null,"after":null,"source":{"db":"shop","table":"orders","file":"mysql-bin.000003","pos":4711,"ts_ms":1714558830000},"op":"t","ts_ms":1714558830123}`
	evs, err := d.Decode(decode.Message{Value: []byte(v)})
	if err != nil || len(evs) != 0 {
		t.Fatalf("events %v err %v", evs, err)
	}
	if len(got) != 1 || got[0].DB != "shop" || got[0].Table != "orders" || got[0].Type != "TRUNCATE" || !got[0].Clears() {
		t.Errorf("got %+v", got)
	}
	if _, err := d.Decode(decode.Message{Value: []byte(`{"source":{"db":"shop"},"op":"t"}`)}); err == nil {
		t.Error("a truncate without its table decoded")
	}
}

func TestPoison(t *testing.T) {
	tests := []struct {
		name, key, value, want string
	}{
		{"bad json", "", `{"before":`, "debezium: bad JSON"},
		{"not an object", "", `[1]`, "debezium: bad JSON"},
		{"unknown op", "", record("null", `{"id":1}`, "x"), `unknown op "x"`},
		{"no op", "", `{"before":null,"after":{"id":1},"source":{"db":"d","table":"t"}}`, "without op"},
		{"no source", "", `{"before":null,"after":{"id":1},"op":"c"}`, "source.db or source.table missing"},
		{"create without after", "", record("null", "null", "c"), "inventory.customers: insert without after"},
		{"delete without before", "", record("null", `{"id":1}`, "d"), "delete without before"},
		{"row not an object", "", record("null", `[1]`, "c"), "after: row is not an object"},
		{"pk column missing", `{"id":1}`, record("null", `{"email":"x"}`, "c"), `primary key column "id" missing`},
		{"bad pos", "", strings.Replace(record("null", `{"id":1}`, "c"), `"pos":805`, `"pos":-1`, 1), "source.pos"},
		{"unknown schema type", "", envelope(`{"type":"int128","field":"id"}`, "null", `{"id":1}`, "c"), `column id: unknown schema type "int128"`},
		{"decimal without scale", "", envelope(`{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","field":"p"}`, "null", `{"p":"AQ=="}`, "c"), `column p: decimal: scale parameter "" is not in MySQL's range 0..30`},
		{"decimal huge scale", "", envelope(`{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"30000000000"},"field":"p"}`, "null", `{"p":"AQ=="}`, "c"), `scale parameter "30000000000" is not in MySQL's range`},
		{"decimal huge unscaled", "", envelope(`{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"},"field":"p"}`, "null", `{"p":"`+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x7f}, 29))+`"}`, "c"), "unscaled value of 29 bytes"},
		{"variable decimal huge scale", "", envelope(`{"type":"struct","name":"io.debezium.data.VariableScaleDecimal","field":"p"}`, "null", `{"p":{"scale":31,"value":"AQ=="}}`, "c"), "scale 31 is not in MySQL's range"},
		{"bad base64", "", envelope(`{"type":"bytes","field":"p"}`, "null", `{"p":"%%"}`, "c"), "column p: bytes value is not base64"},
		{"string in an int field", "", envelope(`{"type":"int32","field":"p"}`, "null", `{"p":"1"}`, "c"), "column p"},
		{"bad zoned timestamp", "", envelope(`{"type":"string","name":"io.debezium.time.ZonedTimestamp","field":"p"}`, "null", `{"p":"yesterday"}`, "c"), "zoned timestamp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := New(decode.Options{})
			m := decode.Message{Value: []byte(tc.value)}
			if tc.key != "" {
				m.Key = []byte(tc.key)
			}
			evs, err := d.Decode(m)
			if err == nil {
				t.Fatalf("no error, events %+v", evs)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "debezium: ") {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, b := range golden.Samples(f, "testdata/*.json") {
		f.Add([]byte(`{"id":1}`), b)
	}
	f.Add([]byte(`{"id":1004}`), []byte(record(`{"id":1004}`, "null", "d")))
	f.Add([]byte(nil), []byte(envelope(`{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"},"field":"p"}`, "null", `{"p":"AeJA"}`, "c")))
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
	withSchema, err := os.ReadFile("testdata/debezium-flink-schema-update.json")
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name  string
		value []byte
	}{
		{"schemaless", []byte(record(`{"id":1004,"first_name":"Anne","last_name":"Kretchmar","email":"annek@noanswer.org","balance":1234.5}`,
			`{"id":1004,"first_name":"Anne Marie","last_name":"Kretchmar","email":"annek@noanswer.org","balance":1300.25}`, "u"))},
		{"with-schema", withSchema},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			d, _ := New(decode.Options{})
			m := decode.Message{Key: []byte(`{"id":1004}`), Value: c.value}
			b.ReportAllocs()
			b.SetBytes(int64(len(c.value)))
			for b.Loop() {
				if _, err := d.Decode(m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
		// naive: untyped map[string]any of the whole record
		b.Run(c.name+"-naive-unmarshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var m map[string]any
				if err := json.Unmarshal(c.value, &m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
