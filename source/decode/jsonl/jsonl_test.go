package jsonl

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/internal/golden"
)

var keyID = decode.Options{KeyColumns: func(db, table string) []string {
	if table == "nokey" {
		return nil
	}
	return []string{"id"}
}}

func TestDecode(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	tests := []struct {
		name  string
		opts  decode.Options
		body  string
		check func(t *testing.T, evs []cdc.Event)
	}{
		{
			name: "CRLF batch of two rows of one statement",
			body: "{\"binlog\":\"mysql-bin.000058:1014\",\"db\":\"d\",\"table\":\"u\",\"eventType\":\"UPDATE\",\"before\":{\"id\":\"9\",\"img\":\"a\"},\"after\":{\"id\":\"9\",\"img\":\"b\"},\"time\":\"2016-08-26 17:18:06\"}\r\n" +
				"\r\n" +
				"{\"binlog\":\"mysql-bin.000058:1014\",\"db\":\"d\",\"table\":\"u\",\"eventType\":\"UPDATE\",\"before\":{\"id\":\"10\",\"img\":\"a\"},\"after\":{\"id\":\"10\",\"img\":\"b\"},\"time\":\"2016-08-26 17:18:06\"}\r\n",
			check: func(t *testing.T, evs []cdc.Event) {
				if len(evs) != 2 {
					t.Fatalf("%d events", len(evs))
				}
				for _, ev := range evs {
					if ev.Pos.Version != cdc.BinlogVersion(58, 1014) || ev.Pos.Text != "mysql-bin.000058:1014" || ev.Op != cdc.Update {
						t.Errorf("event %+v", ev)
					}
				}
				if evs[1].After.Get("id") != "10" || evs[1].Before.Get("img") != "a" {
					t.Errorf("second row %+v", evs[1])
				}
			},
		},
		{
			name: "NULL is the empty string",
			body: `{"binlog":"mysql-bin.000003:4711","db":"shop","table":"user_profile","eventType":"UPDATE","before":{"id":"1001","bio":""},"after":{"id":"1001","bio":"hi"},"time":"2024-05-01 10:20:31"}`,
			check: func(t *testing.T, evs []cdc.Event) {
				if evs[0].Before.Get("bio") != "" || evs[0].After.Get("bio") != "hi" {
					t.Errorf("got %+v", evs[0])
				}
			},
		},
		{
			name: "DELETE row is in after",
			body: `{"binlog":"mysql-bin.000052:1206","db":"d","table":"u","eventType":"DELETE","before":"","after":{"id":"6"},"time":"2016-08-23 15:44:36"}`,
			check: func(t *testing.T, evs []cdc.Event) {
				if evs[0].Op != cdc.Delete || evs[0].After != nil || evs[0].Before.Get("id") != "6" || !reflect.DeepEqual(evs[0].PK, []string{"id"}) {
					t.Errorf("got %+v", evs[0])
				}
			},
		},
		{
			name: "time is read in the configured zone",
			opts: decode.Options{KeyColumns: keyID.KeyColumns, TimeZone: shanghai},
			body: `{"binlog":"mysql-bin.000052:754","db":"d","table":"u","eventType":"INSERT","before":"","after":{"id":"9"},"time":"2016-08-23 15:44:10"}`,
			check: func(t *testing.T, evs []cdc.Event) {
				if want := time.Date(2016, 8, 23, 7, 44, 10, 0, time.UTC); !evs[0].Commit.Equal(want) || evs[0].Commit.Location() != time.UTC {
					t.Errorf("commit %v, want %v", evs[0].Commit, want)
				}
			},
		},
		{
			name: "non-string values keep their text",
			body: `{"db":"d","table":"u","eventType":"INSERT","before":"","after":{"id":9,"n":null,"e":"a\"b\\c\u00e9"}}`,
			check: func(t *testing.T, evs []cdc.Event) {
				want := cdc.RowOf("id", "9", "n", nil, "e", "a\"b\\cé")
				// the columns in the line's order
				if !evs[0].After.Equal(want) || !slices.Equal(evs[0].After.Names(), want.Names()) || evs[0].Pos.Text != "q/0@3" || evs[0].Pos.Version != 0 {
					t.Errorf("got %#v pos %+v", evs[0].After.Map(), evs[0].Pos)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if opts.KeyColumns == nil {
				opts = keyID
			}
			d, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := d.Decode(decode.Message{Value: []byte(tc.body), Topic: "q", Offset: 3})
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, evs)
		})
	}
}

func TestPoison(t *testing.T) {
	ok := `{"binlog":"mysql-bin.000052:754","db":"d","table":"u","eventType":"INSERT","before":"","after":{"id":"9"},"time":"2016-08-23 15:44:10"}`
	tests := []struct {
		name, body, want string
	}{
		{"bad json", `{"binlog":`, "line 1: bad JSON"},
		{"bad second line", ok + "\r\n{oops}\r\n", "line 2: bad JSON"},
		{"empty", "\r\n \n", "empty message"},
		{"unknown event type", strings.Replace(ok, "INSERT", "UPSERT", 1), `d.u: unknown eventType "UPSERT"`},
		{"no key configured", strings.Replace(ok, `"table":"u"`, `"table":"nokey"`, 1), "d.nokey: no key columns configured"},
		{"key column not in row", strings.Replace(ok, `{"id":"9"}`, `{"uid":"9"}`, 1), `d.u: key column "id" not in the row`},
		{"insert without row", strings.Replace(ok, `{"id":"9"}`, `""`, 1), "INSERT without a row"},
		{"row is a number", strings.Replace(ok, `{"id":"9"}`, `5`, 1), "after: 5 is neither"},
		{"bad binlog", strings.Replace(ok, "mysql-bin.000052:754", "mysql-bin", 1), `binlog "mysql-bin"`},
		{"bad time", strings.Replace(ok, "2016-08-23 15:44:10", "yesterday", 1), `time "yesterday"`},
		{"nested value", strings.Replace(ok, `{"id":"9"}`, `{"id":{"x":1}}`, 1), "column id"},
		{"missing table", strings.Replace(ok, `"table":"u",`, "", 1), "db or table missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := New(keyID)
			evs, err := d.Decode(decode.Message{Value: []byte(tc.body)})
			if err == nil {
				t.Fatalf("no error, events %+v", evs)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "jsonl: ") {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, b := range golden.Samples(f, "testdata/*.json*") {
		f.Add(b)
	}
	for _, m := range golden.HostileSeeds(f) {
		f.Add(m.Value)
	}
	d, _ := New(keyID)
	d = decode.Bounded(d, keyID) // as run uses it
	f.Fuzz(func(t *testing.T, value []byte) {
		for _, ev := range golden.CheckDecoded(t, d, decode.Message{Value: value}) {
			if len(ev.PK) == 0 {
				t.Fatalf("event without key %+v", ev)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	line := []byte(`{"binlog":"mysql-bin.000058:1014","db":"kelin_test","table":"user","eventType":"UPDATE","before":{"id":"9","img":"盛大的23","sex":"0","uid":"18"},"after":{"id":"9","img":"2323","sex":"0","uid":"18"},"time":"2016-08-26 17:18:06"}`)
	b.Run("jsonl", func(b *testing.B) {
		d, _ := New(keyID)
		b.ReportAllocs()
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			if _, err := d.Decode(decode.Message{Value: line}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("naive-unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
