package debezium

import (
	"context"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/sourcetest"
	"github.com/rowsync/rowsync/source/decode"
)

// benchColumns is a 24-column table: its Debezium envelope schema (with
// column.propagate.source.type) is about 5 KB, as in the field.
var benchColumns = []struct{ name, mysql, connect, semantic string }{
	{"id", "BIGINT UNSIGNED", "int64", ""}, {"user_id", "INT", "int32", ""}, {"sku", "VARCHAR", "string", ""},
	{"qty", "SMALLINT", "int16", ""}, {"price", "DECIMAL", "bytes", nameDecimal}, {"discount", "DOUBLE", "double", ""},
	{"status", "ENUM", "string", nameEnum}, {"note", "VARCHAR", "string", ""}, {"created_at", "DATETIME", "int64", nameTimestamp},
	{"updated_at", "TIMESTAMP", "string", nameZonedTS}, {"day", "DATE", "int32", nameDate}, {"dur", "TIME", "int64", nameMicroTime},
	{"data", "BLOB", "bytes", ""}, {"doc", "JSON", "string", nameJSON}, {"tags", "SET", "string", nameEnumSet},
	{"flags", "BIT", "bytes", nameBits}, {"yr", "YEAR", "int32", nameYear}, {"weight", "FLOAT", "float", ""},
	{"a1", "VARCHAR", "string", ""}, {"a2", "VARCHAR", "string", ""}, {"a3", "INT", "int32", ""},
	{"a4", "INT", "int32", ""}, {"a5", "VARCHAR", "string", ""}, {"a6", "BIGINT", "int64", ""},
}

const benchRow = `{"id":1000001,"user_id":88231,"sku":"SKU-9931-XL","qty":3,"price":"AfuQ","discount":0.15,"status":"paid",` +
	`"note":"gift wrap, deliver after 6pm","created_at":1714558830123,"updated_at":"2024-05-01T10:21:00Z","day":19844,` +
	`"dur":45296000000,"data":"AAEC/w==","doc":"{\"k\":[1,2]}","tags":"a,c","flags":"qgI=","yr":2024,"weight":3.14,` +
	`"a1":"x","a2":"y","a3":1,"a4":2,"a5":"z","a6":-7}`

func benchSchema() string {
	var fields []map[string]any
	for _, c := range benchColumns {
		f := map[string]any{"type": c.connect, "optional": true, "field": c.name,
			"parameters": map[string]string{paramSourceType: c.mysql, paramSourceLen: "20"}}
		if c.semantic != "" {
			f["name"] = c.semantic
			f["version"] = 1
		}
		switch c.semantic {
		case nameDecimal:
			f["parameters"] = map[string]string{"scale": "2", "connect.decimal.precision": "12", paramSourceType: "DECIMAL", paramSourceLen: "12", paramSourceScale: "2"}
		case nameEnum, nameEnumSet:
			f["parameters"] = map[string]string{"allowed": "a,b,c,new,paid", paramSourceType: c.mysql}
		case nameBits:
			f["parameters"] = map[string]string{"length": "10", paramSourceType: "BIT", paramSourceLen: "10"}
		}
		fields = append(fields, f)
	}
	row := map[string]any{"type": "struct", "fields": fields, "optional": true, "name": "dbserver1.shop.order_item.Value"}
	before, after := map[string]any{"field": "before"}, map[string]any{"field": "after"}
	for k, v := range row {
		before[k], after[k] = v, v
	}
	src := map[string]any{"type": "struct", "field": "source", "optional": false, "name": "io.debezium.connector.mysql.Source",
		"fields": []map[string]any{{"type": "string", "field": "db"}, {"type": "string", "field": "table"}, {"type": "string", "field": "file"}, {"type": "int64", "field": "pos"}}}
	env := map[string]any{"type": "struct", "optional": false, "name": "dbserver1.shop.order_item.Envelope",
		"fields": []any{before, after, src, map[string]any{"type": "string", "field": "op"}, map[string]any{"type": "int64", "field": "ts_ms", "optional": true}}}
	b, _ := json.Marshal(env)
	return string(b)
}

func benchPayload() string {
	return `{"before":null,"after":` + benchRow + `,"source":{"db":"shop","table":"order_item","file":"mysql-bin.000003","pos":4711,"ts_ms":1714558860000},"op":"c","ts_ms":1714558860123}`
}

// fixedSchemas is a schema source with one definition in memory: the
// benchmark measures decoding, not information_schema.
type fixedSchemas struct{ def *cdc.TableDef }

func (f fixedSchemas) Table(context.Context, string, string, bool) (*cdc.TableDef, error) {
	return f.def, nil
}
func (fixedSchemas) Forget(string, string) {}

func benchDef() *cdc.TableDef {
	types := map[string]string{"id": "bigint(20) unsigned", "user_id": "int(11)", "sku": "varchar(32)", "qty": "smallint(6)",
		"price": "decimal(12,2)", "discount": "double", "status": "enum('new','paid')", "note": "varchar(255)",
		"created_at": "datetime(3)", "updated_at": "timestamp", "day": "date", "dur": "time(6)", "data": "blob", "doc": "longtext",
		"tags": "set('a','b','c')", "flags": "bit(10)", "yr": "year(4)", "weight": "float", "a1": "varchar(8)", "a2": "varchar(8)",
		"a3": "int(11)", "a4": "int(11)", "a5": "varchar(8)", "a6": "bigint(20)"}
	var cols []cdc.Column
	for _, c := range benchColumns {
		col := cdc.ParseColumnType(c.name, types[c.name])
		if c.name == "doc" {
			col.Kind = cdc.KindJSON
		}
		cols = append(cols, col)
	}
	return cdc.NewTableDef(cols, []string{"id"})
}

// BenchmarkDecodeWide compares, in one run, Debezium messages with their ~5 KB
// schema (each distinct schema parsed once), the same with the schema
// parsed for every message (the cost before the cache), and schemaless
// messages typed by a schema source.
func BenchmarkDecodeWide(b *testing.B) {
	schema := benchSchema()
	withSchema := []byte(`{"schema":` + schema + `,"payload":` + benchPayload() + `}`)
	schemaless := []byte(benchPayload())
	key := []byte(`{"id":1000001}`)
	for _, c := range []struct {
		name    string
		msg     []byte
		opts    decode.Options
		perCall bool
	}{
		{"schema", withSchema, decode.Options{}, false},
		{"schema-parsed-per-message", withSchema, decode.Options{}, true},
		{"schemaless-typed", schemaless, decode.Options{Schemas: fixedSchemas{benchDef()}}, false},
		{"schemaless-raw", schemaless, decode.Options{}, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			d, _ := New(c.opts)
			msg := decode.Message{Key: key, Value: c.msg}
			b.SetBytes(int64(len(c.msg)))
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				if c.perCall {
					d, _ = New(c.opts)
				}
				evs, err := d.Decode(msg)
				if err != nil || len(evs) != 1 {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			// CPU (the process's, GC included) is steadier than wall time
			// on a loaded machine
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/msg")
		})
	}
}

// processCPU is the process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestSplitEnvelope(t *testing.T) {
	for _, tc := range []struct {
		in              string
		schema, payload string
		ok              bool
	}{
		{`{"schema":{"a":"}"},"payload":{"b":1}}`, `{"a":"}"}`, `{"b":1}`, true},
		{` { "payload" : null , "schema" : {"x":["\"]",{}]} } `, `{"x":["\"]",{}]}`, `null`, true},
		{`{"schema":null,"payload":[1,2]}`, `null`, `[1,2]`, true},
		{`{"schema":{},"payload":{},"extra":1}`, "", "", false},
		{`{"schema":{},"schema":{}}`, "", "", false},
		{`{"schema":{}}`, "", "", false},
		{`{"before":null,"after":{}}`, "", "", false},
		{`{"schema":{"a":1},"payload":{}`, "", "", false},
		{`{"schema":{"a":"\\"},"payload":{}}`, `{"a":"\\"}`, `{}`, true},
		{`{"schema":{"a":"x},"payload":{}}`, "", "", false},
		{`{"schema":{},"payload":{}} trailing`, "", "", false},
		{`{"schema":,"payload":{}}`, "", "", false},
		{``, "", "", false},
		{`{`, "", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			s, p, ok := splitEnvelope([]byte(tc.in))
			if ok != tc.ok || string(s) != tc.schema || string(p) != tc.payload {
				t.Errorf("splitEnvelope = %q, %q, %v; want %q, %q, %v", s, p, ok, tc.schema, tc.payload, tc.ok)
			}
		})
	}
}

// TestSchemaParsedOnce: a second message with the same schema bytes finds
// the parsed schema; an invalid schema is never cached, so its bytes are
// rejected every time.
func TestSchemaParsedOnce(t *testing.T) {
	d := &Decoder{}
	schema := []byte(benchSchema())
	a, err := d.schemas.get(schema)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.schemas.get([]byte(string(schema)))
	if err != nil || a != b {
		t.Errorf("second lookup parsed again (%p, %p, %v)", a, b, err)
	}
	bad := []byte(`{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"x","type":"int128"}]}]}`)
	for range 2 {
		if _, err := d.schemas.get(bad); err == nil {
			t.Fatal("an invalid schema was accepted")
		}
	}
}

// TestLastSchemaFastPath: a decoder that has seen a schema (and so splits
// the next message of it by one comparison) decodes every message exactly
// as a decoder that has not.
func TestLastSchemaFastPath(t *testing.T) {
	schema, payload := benchSchema(), benchPayload()
	good := `{"schema":` + schema + `,"payload":` + payload + `}`
	warm, _ := New(decode.Options{})
	if _, err := warm.Decode(decode.Message{Value: []byte(good)}); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{
		good,
		`{"schema":` + schema + `,"payload":` + payload + ` } `,
		`{"schema":` + schema + `,"payload":null}`,
		`{"schema":` + schema + `,"payload":` + payload + `,"extra":1}`,
		`{"schema":` + schema + `,"payload":` + payload + `}}`,
		`{"schema":` + schema + `,"payload":{"op":}}`,
		`{"schema":` + schema + `,"payload":` + payload[:len(payload)-1] + `,"op":"d"}}`,
	} {
		cold, _ := New(decode.Options{})
		want, wantErr := cold.Decode(decode.Message{Value: []byte(msg)})
		got, err := warm.Decode(decode.Message{Value: []byte(msg)})
		if (err == nil) != (wantErr == nil) || !sourcetest.SameEvents(got, want) {
			t.Errorf("…%s: warm decoder gives %v, %v; a fresh one %v, %v", msg[max(0, len(msg)-40):], got, err, want, wantErr)
		}
	}
}
