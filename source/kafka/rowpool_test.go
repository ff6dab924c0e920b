package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/changegen"
	"github.com/rowsync/rowsync/internal/sourcetest"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/canaljson"
)

// TestRowsKeptUntilAck drains canal-json changes of two tables (11 and 5
// columns; inserts, updates with old, deletes) from two partitions in
// batches of 10 messages acked three batches late from another goroutine:
// no batch changes before its ack although later chunks are decoded into
// the recycled rows of acked batches (sourcetest.Held; -race), and
// every event equals what a decoder without recycling gives.
func TestRowsKeptUntilAck(t *testing.T) {
	const topic, parts = "rowpool", 2
	set := changegen.Generate(changegen.Config{Seed: 15, Changes: 600, Keys: 80})
	addr := newCluster(t, parts, topic)
	plain, _ := canaljson.New(decode.Options{})
	want := map[string][]cdc.Event{} // by position
	for p := range parts {
		var values []string
		for i := p; i < len(set.Changes); i += parts {
			values = append(values, string(changegen.CanalJSON(&set.Changes[i])))
		}
		produce(t, addr, topic, p, values...)
		for off, v := range values {
			msg := decode.Message{Value: []byte(v), Topic: topic, Partition: int32(p), Offset: int64(off)}
			evs, err := plain.Decode(msg)
			if err != nil || len(evs) != 1 {
				t.Fatalf("decode %s: %d events, %v", v, len(evs), err)
			}
			want[msg.PosText()] = evs
		}
	}
	dec, _ := canaljson.New(decode.Options{})
	s, err := New(testConfig(addr, topic, "g-rowpool"), dec, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer closeSource(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	got := sourcetest.Held(ctx, t, s, len(set.Changes), 3)
	for _, ev := range got {
		w := want[ev.Pos.Text]
		if len(w) != 1 || !sourcetest.SameEvent(ev, w[0]) {
			t.Fatalf("event at %s:\n got %+v\nwant %+v", ev.Pos.Text, ev, w)
		}
		delete(want, ev.Pos.Text)
	}
	if len(want) > 0 {
		t.Fatalf("%d messages not delivered", len(want))
	}
	if reused, made := s.rowPool.Stats(); reused == 0 {
		t.Errorf("rows reused %d, made %d: the acked batches' rows were not recycled", reused, made)
	}
}
