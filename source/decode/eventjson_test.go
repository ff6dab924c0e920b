package decode

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

func TestEventJSON(t *testing.T) {
	cols := []cdc.Column{
		cdc.ParseColumnType("id", "bigint(20) unsigned"),
		cdc.ParseColumnType("created", "datetime(3)"),
		cdc.ParseColumnType("d", "date"),
		cdc.ParseColumnType("w", "float"),
		cdc.ParseColumnType("t", "time(2)"),
	}
	ev := cdc.Event{
		DB: "shop", Table: "t<x>", Op: cdc.Update, PK: []string{"id"}, Columns: cols,
		Before: cdc.Row{"id": uint64(math.MaxUint64), "n": nil},
		After: cdc.Row{
			"id": uint64(math.MaxUint64), "z": int64(-5), "w": float64(float32(5.17)), "dbl": 1e20,
			"dec": cdc.Decimal("1234.50"), "s": "é \"q\" <b>", "b": []byte{0, 0xff},
			"created": time.Date(2024, 5, 1, 10, 20, 30, 0, time.UTC),
			"d":       time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC),
			"t":       -(838*time.Hour + 500*time.Millisecond),
			"j":       cdc.JSON(`{ "a" : [1, 2] }`), "badj": cdc.JSON(`{`), "set": cdc.Set{"a", "c"},
			"nan": math.NaN(), "n": nil, "zero": "0000-00-00",
		},
		Commit: time.UnixMilli(1714558830123),
		Pos:    cdc.Position{Version: 1, Text: "mysql-bin.000003:4711"},
	}
	got, err := EventJSON(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"db":"shop","table":"t<x>","op":"update","pk":{"id":18446744073709551615},` +
		`"before":{"id":18446744073709551615,"n":null},` +
		`"after":{"b":{"$base64":"AP8="},"badj":"{","created":"2024-05-01 10:20:30.000","d":"2024-05-01","dbl":1e20,"dec":"1234.50",` +
		`"id":18446744073709551615,"j":{"a":[1,2]},"n":null,"nan":"NaN","s":"é \"q\" <b>","set":["a","c"],"t":"-838:00:00.50","w":5.17,"z":-5,"zero":"0000-00-00"},` +
		`"ts":"2024-05-01T10:20:30.123Z","pos":"mysql-bin.000003:4711"}`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if !json.Valid(got) {
		t.Fatal("invalid JSON")
	}
	del := cdc.Event{DB: "a", Table: "b", Op: cdc.Delete, Before: cdc.Row{"k": int64(1)}}
	got, _ = EventJSON(del)
	if string(got) != `{"db":"a","table":"b","op":"delete","pk":null,"before":{"k":1},"after":null,"ts":null,"pos":""}` {
		t.Fatalf("delete: %s", got)
	}
}

func TestPosText(t *testing.T) {
	m := Message{Topic: "orders", Partition: 2, Offset: 1811}
	if got := m.PosText(); got != "orders/2@1811" {
		t.Fatal(got)
	}
}
