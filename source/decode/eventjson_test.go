package decode

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
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
		Before: cdc.RowOf("id", uint64(math.MaxUint64), "n", nil),
		After:  cdc.RowOf("id", uint64(math.MaxUint64), "z", int64(-5), "w", float64(float32(5.17)), "dbl", 1e20, "dec", cdc.Decimal("1234.50"), "s", "é \"q\" <b>", "b", []byte{0, 0xff}, "created", time.Date(2024, 5, 1, 10, 20, 30, 0, time.UTC), "d", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), "t", -(838*time.Hour + 500*time.Millisecond), "j", cdc.JSON(`{ "a" : [1, 2] }`), "badj", cdc.JSON(`{`), "set", cdc.Set{"a", "c"}, "nan", math.NaN(), "n", nil, "zero", "0000-00-00"),
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
	del := cdc.Event{DB: "a", Table: "b", Op: cdc.Delete, Before: cdc.RowOf("k", int64(1))}
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

// TestEventJSONHostile: whatever names and values a message carries, the
// line is valid JSON and reads back to what was rendered. Go's %q escapes
// (\a, \x01) once made dead-letter writes fail for ever.
func TestEventJSONHostile(t *testing.T) {
	names := []string{"t\a", "d\x01b", "a\"b\\c", "line\nbreak", "\x7f del", "\u2028sep", "<html>&", "é🚀", "nul\x00"}
	for _, name := range names {
		t.Run(strconv.Quote(name), func(t *testing.T) {
			ev := cdc.Event{DB: name, Table: name, Op: cdc.Insert, PK: []string{name},
				After:   cdc.RowOf(name, name, "bytes", []byte(name)),
				Columns: []cdc.Column{{Name: name, Kind: cdc.KindString}},
				Pos:     cdc.Position{Text: name}}
			got, err := EventJSON(ev)
			if err != nil {
				t.Fatal(err)
			}
			var back struct {
				DB, Table, Pos string
				PK, After      map[string]any
			}
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("invalid JSON %s: %v", got, err)
			}
			if back.DB != name || back.Table != name || back.Pos != name || back.After[name] != name || back.PK[name] != name {
				t.Fatalf("round trip: %s", got)
			}
			if strings.Contains(string(got), "\n") {
				t.Fatalf("not one line: %q", got)
			}
		})
	}
	// invalid UTF-8: names degrade to U+FFFD, string values keep their bytes
	bad := "x\xff\xfey"
	got, err := EventJSON(cdc.Event{DB: bad, Table: "t", Op: cdc.Delete, Before: cdc.RowOf("v", bad), Pos: cdc.Position{Text: bad}})
	if err != nil || !json.Valid(got) {
		t.Fatalf("%s %v", got, err)
	}
	want := `{"db":"x\ufffd\ufffdy","table":"t","op":"delete","pk":null,"before":{"v":{"$base64":"eP/+eQ=="}},"after":null,"ts":null,"pos":"x\ufffd\ufffdy"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// BenchmarkEventJSONWide renders a 40,000-column row (MySQL allows 4096;
// a message may claim more): the time per column must not grow with the
// width. go test ./source/decode -run '^$' -bench EventJSONWide
func BenchmarkEventJSONWide(b *testing.B) {
	for _, n := range []int{400, 40000} {
		ev := cdc.Event{DB: "d", Table: "t", Op: cdc.Insert, After: cdc.RowOf()}
		for i := range n {
			name := "c" + strconv.Itoa(i)
			ev.Columns = append(ev.Columns, cdc.Column{Name: name, Kind: cdc.KindInt})
			ev.After.Set(name, int64(i))
		}
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				if _, err := EventJSON(ev); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/column")
		})
	}
}
