package canaljson

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/internal/canal"
)

// benchMessage is a realistic canal 1.1.7 message: one UPDATE row of a
// 10-column table, old holding two changed columns.
func benchMessage(rows int) []byte {
	return benchMessageOp(rows, "UPDATE")
}

// benchMessageOp is benchMessage as an INSERT (old null) or UPDATE.
func benchMessageOp(rows int, op string) []byte {
	data, old := "", ""
	for i := range rows {
		if i > 0 {
			data += ","
			old += ","
		}
		data += fmt.Sprintf(`{"id":"%d","user_id":"88231","sku":"SKU-9931-XL","qty":"3","price":"1299.00","discount":"0.15","status":"paid","note":"gift wrap, deliver after 6pm","created_at":"2024-05-01 10:20:30.123","updated_at":"2024-05-01 10:21:00"}`, 1000000+i)
		old += `{"status":"new","updated_at":"2024-05-01 10:20:30"}`
	}
	if op == "UPDATE" {
		old = "[" + old + "]"
	} else {
		old = "null"
	}
	return []byte(`{"data":[` + data + `],"database":"shop","es":1714558860000,"gtid":"","id":1811,"isDdl":false,` +
		`"mysqlType":{"id":"bigint(20) unsigned","user_id":"int(11)","sku":"varchar(32)","qty":"smallint(6)","price":"decimal(12,2)","discount":"double","status":"varchar(16)","note":"varchar(255)","created_at":"datetime(3)","updated_at":"timestamp"},` +
		`"old":` + old + `,"pkNames":["id"],"sql":"",` +
		`"sqlType":{"id":-5,"user_id":4,"sku":12,"qty":5,"price":3,"discount":8,"status":12,"note":12,"created_at":93,"updated_at":93},` +
		`"table":"order_item","ts":1714558860123,"type":"` + op + `"}`)
}

func BenchmarkDecode(b *testing.B) {
	for _, c := range []struct {
		rows    int
		bounded bool
		op      string
	}{{1, false, "UPDATE"}, {10, false, "UPDATE"}, {1, true, "UPDATE"}, {10, true, "UPDATE"}, {1, true, "INSERT"}} {
		rows := c.rows
		name := fmt.Sprintf("rows=%d", rows)
		if c.op != "UPDATE" {
			name += "/" + strings.ToLower(c.op) // the Kafka drain's bench is 75% inserts
		}
		if c.bounded {
			name += "/bounded" // behind the validation boundary, as run and decode use it
		} else {
			name += "/plain" // every leaf at the same depth, so -bench can pick one alone
		}
		b.Run(name, func(b *testing.B) {
			msg := decode.Message{Value: benchMessageOp(rows, c.op), Topic: "canal", Partition: 3, Offset: 1}
			d, _ := New(decode.Options{})
			if c.bounded {
				d = decode.Bounded(d, decode.Options{})
			}
			b.SetBytes(int64(len(msg.Value)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for b.Loop() {
				evs, err := d.Decode(msg)
				if err != nil || len(evs) != rows {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
			// CPU (the process's, GC included) is steadier than wall time
			// on a loaded machine
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N*rows)/1e3, "cpu-µs/row")
		})
	}
}

// BenchmarkDecodeBaseline is the naive decoder this package replaces:
// encoding/json into a typed struct, then the same value conversion.
func BenchmarkDecodeBaseline(b *testing.B) {
	type flat struct {
		Data      []map[string]*string `json:"data"`
		Old       []map[string]*string `json:"old"`
		Database  string               `json:"database"`
		Table     string               `json:"table"`
		Type      string               `json:"type"`
		Es        int64                `json:"es"`
		IsDdl     bool                 `json:"isDdl"`
		PkNames   []string             `json:"pkNames"`
		MysqlType map[string]string    `json:"mysqlType"`
		SQLType   map[string]int32     `json:"sqlType"`
	}
	for _, rows := range []int{1, 10} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			raw := benchMessage(rows)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				var m flat
				if err := json.Unmarshal(raw, &m); err != nil {
					b.Fatal(err)
				}
				cols := map[string]cdc.Column{}
				for n, t := range m.MysqlType {
					cols[n] = cdc.ParseColumnType(n, t)
				}
				conv := func(r map[string]*string) *cdc.Row {
					row := cdc.RowOf()
					for n, v := range r {
						if v == nil {
							row.Set(n, nil)
							continue
						}
						c := cols[n]
						x, err := canal.Value(&c, m.SQLType[n], *v, nil)
						if err != nil {
							b.Fatal(err)
						}
						row.Set(n, x)
					}
					return row
				}
				evs := make([]cdc.Event, len(m.Data))
				for i, r := range m.Data {
					evs[i].After = conv(r)
					before := conv(r)
					for k, v := range conv(m.Old[i]).All() {
						before.Set(k, v)
					}
					evs[i].Before = before
				}
			}
			b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// tinyRows is a 900,000-row message of about 13 MB, the size that once
// took 830 MB to decode.
func tinyRows(n int) []byte {
	var b []byte
	b = append(b, `{"type":"INSERT","database":"d","table":"t","pkNames":["a"],"data":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"a":"1"}`...)
	}
	return append(b, "]}"...)
}

// BenchmarkTinyRows reports the bytes allocated to reject a message of
// 900,000 tiny rows (the row cap stops the parse at 10,001 rows), beside
// decoding it whole with the cap raised, as before the cap existed.
// go test ./source/decode/canaljson -run '^$' -bench TinyRows -benchtime 3x
func BenchmarkTinyRows(b *testing.B) {
	msg := decode.Message{Value: tinyRows(900000)}
	for _, maxRows := range []int{0, 1000000} {
		b.Run(fmt.Sprintf("max_rows=%d", maxRows), func(b *testing.B) {
			d, _ := New(decode.Options{Limits: decode.Limits{MaxRows: maxRows}})
			b.SetBytes(int64(len(msg.Value)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = d.Decode(msg)
			}
		})
	}
}

// processCPU is the process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
