package jsonl

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
)

// fixedSchemas answers every read with one definition held in memory.
type fixedSchemas map[string]*cdc.TableDef

func (f fixedSchemas) Table(_ context.Context, db, table string, _ bool) (*cdc.TableDef, error) {
	return f[db+"."+table], nil
}
func (fixedSchemas) Forget(string, string) {}

func TestSchemaSource(t *testing.T) {
	var cols []cdc.Column
	for _, c := range [][2]string{{"id", "int(11)"}, {"n", "int(11)"}, {"name", "varchar(10)"}, {"data", "blob"},
		{"ts", "timestamp"}, {"day", "date"}, {"state", "enum('a','b')"}} {
		cols = append(cols, cdc.ParseColumnType(c[0], c[1]))
	}
	sc := fixedSchemas{"shop.t": cdc.NewTableDef(cols, []string{"id"})}
	d, _ := New(decode.Options{Schemas: sc, TimeZone: time.FixedZone("+08:00", 8*3600)})
	line := func(after string) decode.Message {
		return decode.Message{Value: []byte(`{"db":"shop","table":"t","eventType":"INSERT","before":"","after":` + after + `}`)}
	}
	for _, tc := range []struct {
		name, after string
		want        *cdc.Row
		err         string
	}{
		{"typed", `{"id":"1","n":"-5","name":"x","data":"\u0000ÿ","ts":"2024-03-04 13:00:00","day":"2024-02-29","state":"b"}`,
			cdc.RowOf("id", int64(1), "n", int64(-5), "name", "x", "data", []byte{0, 0xff}, "ts", time.Date(2024, 3, 4, 5, 0, 0, 0, time.UTC), "day", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "state", "b"), ""},
		// NULL prints as "": NULL where "" cannot be a value, "" in text
		{"empty", `{"id":"2","n":"","name":"","data":"","ts":"","day":"","state":""}`,
			cdc.RowOf("id", int64(2), "n", nil, "name", "", "data", []byte{}, "ts", nil, "day", nil, "state", ""), ""},
		{"not a number", `{"id":"3","n":"abc"}`, nil, "column n (int(11))"},
		{"unknown column", `{"id":"3","nope":"1"}`, nil, "column nope: not in the table's definition"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := d.Decode(line(tc.after))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !evs[0].After.Equal(tc.want) {
				t.Errorf("after %#v\nwant %#v", evs[0].After.Map(), tc.want.Map())
			}
			if !reflect.DeepEqual(evs[0].PK, []string{"id"}) {
				t.Errorf("pk %v, want the definition's [id] (no pk configured)", evs[0].PK)
			}
		})
	}
}
