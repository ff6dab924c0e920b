package mysqlmeta_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/mysqlmeta"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/canaljson"
	"github.com/rowsync/rowsync/source/decode/debezium"
	"github.com/rowsync/rowsync/source/decode/jsonl"
	"github.com/rowsync/rowsync/source/decode/maxwell"
)

// samples are the decoders' copies of the shared format samples.
var samples = map[string]string{"canal-flat": "../source/decode/canaljson/testdata", "maxwell": "../source/decode/maxwell/testdata",
	"debezium": "../source/decode/debezium/testdata", "liukelin": "../source/decode/jsonl/testdata"}

// TestSamplesWithSchemaSource decodes the shared samples of the typeless
// formats with a schema source (the sample's table created in MariaDB) and
// compares them with the canal-json decoding of the same change: Flink's
// fixtures carry one change sequence of the products table in every
// format; a liukelin line is canal's own text, so the canal-json message
// with the table's mysqlType is the same change.
func TestSamplesWithSchemaSource(t *testing.T) {
	// Flink's tables are products (Debezium), product (Maxwell), products2 (canal)
	var ddl []string
	for _, tb := range []string{"products", "product", "products2"} {
		ddl = append(ddl, "CREATE TABLE $S."+tb+" (id INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL,"+
			" description VARCHAR(512), weight FLOAT)")
	}
	ddl = append(ddl, "CREATE TABLE $S.user (id INT NOT NULL PRIMARY KEY, img VARCHAR(64), sex TINYINT, uid INT)")
	db, s := ownSchema(t, "127.0.0.1:3306", "samples", ddl...)
	schemas := mysqlmeta.NewSchemas(db)
	opts := decode.Options{Schemas: schemas}
	canal, _ := canaljson.New(decode.Options{})
	dbz, _ := debezium.New(opts)
	mw, _ := maxwell.New(opts)
	jl, _ := jsonl.New(opts)

	read := func(t *testing.T, name string) []byte {
		t.Helper()
		dir, file, _ := strings.Cut(name, "/")
		b, err := os.ReadFile(filepath.Join(samples[dir], file))
		if err != nil {
			t.Fatal(err)
		}
		r := strings.NewReplacer(`"database":"inventory"`, `"database":"`+s+`"`, `"database":"test"`, `"database":"`+s+`"`,
			`"db": "inventory"`, `"db": "`+s+`"`, `"db":"inventory"`, `"db":"`+s+`"`, `"db":"kelin_test"`, `"db":"`+s+`"`)
		return []byte(r.Replace(string(b)))
	}
	decodeAll := func(t *testing.T, dec decode.Decoder, b []byte) []cdc.Event {
		t.Helper()
		evs, err := dec.Decode(decode.Message{Value: b, Topic: "t"})
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		return evs
	}
	schemaless := func(t *testing.T, b []byte) []byte {
		var env struct{ Payload json.RawMessage }
		if err := json.Unmarshal(b, &env); err != nil || env.Payload == nil {
			t.Fatalf("not an envelope: %v", err)
		}
		return env.Payload
	}
	same := func(t *testing.T, got, want cdc.Event) {
		t.Helper()
		if got.Op != want.Op {
			t.Errorf("op %v, want %v", got.Op, want.Op)
		}
		if !got.Before.Equal(want.Before) {
			t.Errorf("before\n%#v\ncanal\n%#v", got.Before.Map(), want.Before.Map())
		}
		if !got.After.Equal(want.After) {
			t.Errorf("after\n%#v\ncanal\n%#v", got.After.Map(), want.After.Map())
		}
		if !reflect.DeepEqual(got.PK, want.PK) {
			t.Errorf("pk %v, canal %v", got.PK, want.PK)
		}
	}

	insert9 := decodeAll(t, canal, read(t, "canal-flat/canal-flat-flink-insert-9rows.json"))
	for _, tc := range []struct {
		name, canal string
		canalRow    int
		others      map[string]decode.Decoder // sample → decoder; "-noschema" strips a Debezium schema
	}{
		{"insert 101", "", 0, map[string]decode.Decoder{"maxwell/maxwell-flink-insert-tx-first-row.json": mw,
			"debezium/debezium-flink-schema-snapshot-read-as-c.json": dbz, "debezium/debezium-flink-schema-snapshot-read-as-c.json-noschema": dbz}},
		{"insert 109", "", 8, map[string]decode.Decoder{"maxwell/maxwell-flink-insert-tx-last-row.json": mw}},
		{"update 106", "canal-flat/canal-flat-flink-update.json", 0, map[string]decode.Decoder{"maxwell/maxwell-flink-update.json": mw,
			"debezium/debezium-flink-schema-update.json": dbz, "debezium/debezium-flink-schema-update.json-noschema": dbz}},
		{"delete 111", "canal-flat/canal-flat-flink-delete.json", 0, map[string]decode.Decoder{"maxwell/maxwell-flink-delete.json": mw,
			"debezium/debezium-flink-schema-delete.json": dbz, "debezium/debezium-flink-schema-delete.json-noschema": dbz}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := insert9[tc.canalRow]
			if tc.canal != "" {
				want = decodeAll(t, canal, read(t, tc.canal))[tc.canalRow]
			}
			for sample, dec := range tc.others {
				t.Run(sample, func(t *testing.T) {
					file, noSchema := strings.CutSuffix(sample, "-noschema")
					b := read(t, file)
					if noSchema {
						b = schemaless(t, b)
					}
					evs := decodeAll(t, dec, b)
					if len(evs) != 1 {
						t.Fatalf("%d events", len(evs))
					}
					got := evs[0]
					if dec == dbz && !noSchema {
						got.PK = want.PK // the sample has no Kafka key; schemaless uses the schema source's key
					}
					same(t, got, want)
				})
			}
		})
	}

	for _, sample := range []string{"liukelin-insert.json", "liukelin-update-quotes.json", "liukelin-update-unicode.json",
		"liukelin-update-escaped-json-in-value.json", "liukelin-delete.json"} {
		t.Run(sample, func(t *testing.T) {
			b := read(t, "liukelin/"+sample)
			got := decodeAll(t, jl, b)
			if len(got) != 1 {
				t.Fatalf("%d events", len(got))
			}
			// the same change as canal-json: the line's text, the table's types
			var l struct {
				DB, Table, EventType string
				Before, After        json.RawMessage
			}
			if err := json.Unmarshal(b, &l); err != nil {
				t.Fatal(err)
			}
			data, old := l.After, json.RawMessage("null")
			if l.EventType == "UPDATE" {
				old = json.RawMessage("[" + string(l.Before) + "]")
			}
			msg := fmt.Sprintf(`{"data":[%s],"database":%q,"table":%q,"type":%q,"isDdl":false,"es":1,"ts":1,"pkNames":["id"],`+
				`"mysqlType":{"id":"int(11)","img":"varchar(64)","sex":"tinyint(4)","uid":"int(11)"},"old":%s}`,
				data, l.DB, l.Table, l.EventType, old)
			want := decodeAll(t, canal, []byte(msg))
			same(t, got[0], want[0])
		})
	}
}
