package canaljson

import (
	"fmt"
	"testing"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/sourcetest"
	"github.com/rowsync/rowsync/source/decode"
)

// narrowMessage is an INSERT of rows of a 2-column table.
func narrowMessage(rows int) []byte {
	data := ""
	for i := range rows {
		if i > 0 {
			data += ","
		}
		data += fmt.Sprintf(`{"k":"%d","v":"v%d"}`, i, i)
	}
	return []byte(`{"data":[` + data + `],"database":"shop","es":1714558860000,"isDdl":false,` +
		`"mysqlType":{"k":"int(11)","v":"varchar(8)"},"pkNames":["k"],"table":"tiny","type":"INSERT"}`)
}

// TestRecycledRows decodes messages of tables of 2, 10 and 11 columns
// (inserts, updates with old, deletes) batch after batch into the maps of
// the batch before, recycled: every event equals the one a decoder
// without a pool gives.
func TestRecycledRows(t *testing.T) {
	msgs := [][]byte{narrowMessage(3), benchMessage(4), []byte(scenario["update-2rows-quirk"]),
		[]byte(scenario["insert-2rows"]), narrowMessage(1), []byte(scenario["delete"]), benchMessage(1)}
	plain, _ := New(decode.Options{})
	var want [][]cdc.Event
	for _, m := range msgs {
		evs, err := plain.Decode(decode.Message{Value: m, Topic: "t", Offset: 7})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, evs)
	}
	d, _ := New(decode.Options{})
	var pool cdc.RowPool
	for round := range 5 {
		rows := pool.Rows()
		for i, m := range msgs {
			// each round in another order, so maps move between tables
			k := (i + round*3) % len(msgs)
			m = msgs[k]
			got, err := d.Decode(decode.Message{Value: m, Topic: "t", Offset: 7, Rows: rows})
			if err != nil {
				t.Fatal(err)
			}
			if !sourcetest.SameEvents(got, want[k]) {
				t.Fatalf("round %d message %d:\n got %+v\nwant %+v", round, k, got, want[k])
			}
		}
		if rows.Len() == 0 {
			t.Fatal("no row taken from the batch's rows")
		}
		rows.Recycle()
	}
	if reused, _ := pool.Stats(); reused == 0 {
		t.Fatal("no map reused")
	}
}

// BenchmarkDecodePooled is BenchmarkDecode with the rows' maps recycled
// after every decode, as the Kafka and RabbitMQ sources do once a batch
// is acked.
//
//	go test ./source/decode/canaljson -run '^$' -bench DecodePooled -benchmem
func BenchmarkDecodePooled(b *testing.B) {
	for _, rows := range []int{1, 10} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			msg := decode.Message{Value: benchMessage(rows), Topic: "canal", Partition: 3, Offset: 1}
			d, _ := New(decode.Options{})
			var pool cdc.RowPool
			b.SetBytes(int64(len(msg.Value)))
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				msg.Rows = pool.Rows()
				evs, err := d.Decode(msg)
				if err != nil || len(evs) != rows {
					b.Fatal(err)
				}
				msg.Rows.Recycle()
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N*rows)/1e3, "cpu-µs/row")
		})
	}
}
