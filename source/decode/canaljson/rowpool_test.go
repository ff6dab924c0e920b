package canaljson

import (
	"fmt"
	"testing"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/benchdata"
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

// TestEventsRoom decodes into the room of a slice of events
// (decode.Message.Events) that holds stale events of an earlier batch:
// the events are built there, whole (no stale image left), equal to those
// of a decode without room, and the slice's own events are untouched; with
// too little room they come in a slice of their own.
func TestEventsRoom(t *testing.T) {
	d, _ := New(decode.Options{})
	msg := decode.Message{Value: benchMessageOp(3, "INSERT"), Topic: "t", Offset: 7}
	want, err := d.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	stale := cdc.Event{DB: "old", Table: "old", Op: cdc.Update, Before: cdc.RowOf("x", int64(1)), After: cdc.RowOf("x", int64(2))}
	own := cdc.Event{DB: "mine", Table: "t", Op: cdc.Insert, After: cdc.RowOf("id", int64(1))}
	for _, room := range []int{3, 10, 2} {
		batch := make([]cdc.Event, 1+room)
		for i := range batch {
			batch[i] = stale
		}
		batch[0] = own
		msg.Events = batch[:1]
		got, err := d.Decode(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !sourcetest.SameEvents(got, want) {
			t.Fatalf("room %d:\n got %+v\nwant %+v", room, got, want)
		}
		inRoom := &got[0] == &batch[1]
		if inRoom != (room >= len(want)) {
			t.Fatalf("room %d: events built in the room: %v", room, inRoom)
		}
		all := decode.Append(msg.Events, got)
		if len(all) != 1+len(want) || !sourcetest.SameEvents(all[:1], []cdc.Event{own}) || !sourcetest.SameEvents(all[1:], want) {
			t.Fatalf("room %d: Append gave %+v", room, all)
		}
		if inRoom != (&all[0] == &batch[0]) {
			t.Fatalf("room %d: Append copied events built in the room, or extended a slice without room", room)
		}
	}
}

// BenchmarkDecodePooled is BenchmarkDecode with the rows' maps recycled
// after every decode, as the Kafka and RabbitMQ sources do once a batch
// is acked.
//
//	go test ./source/decode/canaljson -run '^$' -bench DecodePooled -benchmem
//
// The /room cases also give the decoder room in a slice of events to
// build them in (decode.Message.Events), as the sources' batches do.
func BenchmarkDecodePooled(b *testing.B) {
	for _, c := range []struct {
		rows int
		room bool
	}{{1, false}, {10, false}, {1, true}, {10, true}} {
		rows := c.rows
		name := fmt.Sprintf("rows=%d", rows)
		if c.room {
			name += "/room"
		}
		b.Run(name, func(b *testing.B) {
			msg := decode.Message{Value: benchMessage(rows), Topic: "canal", Partition: 3, Offset: 1}
			d, _ := New(decode.Options{})
			var pool cdc.RowPool
			var batch []cdc.Event
			if c.room {
				batch = make([]cdc.Event, 0, 1000)
			}
			b.SetBytes(int64(len(msg.Value)))
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				msg.Rows = pool.Rows()
				msg.Events = batch[:0]
				evs, err := d.Decode(msg)
				if err != nil || len(evs) != rows {
					b.Fatal(err)
				}
				if c.room {
					batch = decode.Append(msg.Events, evs)
				}
				msg.Rows.Recycle()
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N*rows)/1e3, "cpu-µs/row")
		})
	}
}

// TestTextBlocks decodes messages whose text values and positions fill
// several text blocks, keeping every event: each still holds its own
// message's texts, none overwritten by a later message's.
func TestTextBlocks(t *testing.T) {
	d, _ := New(decode.Options{})
	var got [][]cdc.Event
	const n = 300
	for i := range n {
		msg := []byte(fmt.Sprintf(`{"data":[{"k":"%d","v":"text-%d"}],"database":"shop","isDdl":false,`+
			`"mysqlType":{"k":"int(11)","v":"varchar(16)"},"pkNames":["k"],"table":"tiny","type":"INSERT"}`, i, i))
		evs, err := d.Decode(decode.Message{Value: msg, Topic: "topic", Partition: 2, Offset: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, evs)
	}
	for i, evs := range got {
		if len(evs) != 1 || evs[0].After.Get("v") != fmt.Sprintf("text-%d", i) || evs[0].Pos.Text != fmt.Sprintf("topic/2@%d", i) {
			t.Fatalf("message %d: %+v", i, evs)
		}
	}
}

// BenchmarkDecodeDrain decodes the messages of the bench driver's Kafka
// drain (internal/benchdata) as the Kafka source does: single-row messages
// (75% inserts, 20% updates, 5% deletes), behind the validation boundary, into a batch's
// room and rows, the rows recycled every 256 messages (one batch).
//
//	go test ./source/decode/canaljson -run '^$' -bench DecodeDrain -benchmem
func BenchmarkDecodeDrain(b *testing.B) {
	const n, batchSize = 1000, 256
	msgs := make([]decode.Message, n)
	for i := range msgs {
		op := "INSERT"
		switch {
		case i%20 == 19:
			op = "DELETE"
		case i%5 == 4:
			op = "UPDATE"
		}
		msgs[i] = decode.Message{Value: benchdata.CanalItemsMessage(op, 1000+i, 1000+i), Topic: "rs-bench-canal", Partition: int32(i % 4), Offset: int64(100000 + i)}
	}
	d, _ := New(decode.Options{})
	d = decode.Bounded(d, decode.Options{})
	var pool cdc.RowPool
	batch := make([]cdc.Event, 0, batchSize)
	rows := pool.Rows()
	b.ReportAllocs()
	cpu0 := processCPU()
	i := 0
	for b.Loop() {
		if len(batch) == batchSize {
			rows.Recycle()
			rows, batch = pool.Rows(), batch[:0]
		}
		msg := msgs[i%n]
		i++
		msg.Rows, msg.Events = rows, batch
		evs, err := d.Decode(msg)
		if err != nil || len(evs) != 1 {
			b.Fatal(err)
		}
		batch = decode.Append(batch, evs)
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/row")
}
