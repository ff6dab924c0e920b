package rabbitmq_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/changegen"
	"github.com/rowsync/rowsync/internal/sourcetest"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/canaljson"
	"github.com/rowsync/rowsync/source/rabbitmq"
)

// TestRowsKeptUntilAck drains canal-json changes of two tables (11 and 5
// columns; inserts, updates with old, deletes) in batches of 10 messages
// acked three batches late from another goroutine: no batch changes
// before its ack although later batches are decoded into the recycled
// rows of acked ones (sourcetest.Held; -race), and every event equals
// what a decoder without recycling gives.
func TestRowsKeptUntilAck(t *testing.T) {
	set := changegen.Generate(changegen.Config{Seed: 15, Changes: 400, Keys: 60})
	br := newBroker(t)
	q := uniqueName(t)
	br.queue(q, nil)
	plain, _ := canaljson.New(decode.Options{})
	var bodies []string
	var want []cdc.Event
	for i := range set.Changes {
		body := changegen.CanalJSON(&set.Changes[i])
		bodies = append(bodies, string(body))
		// delivery tags count from 1 on the source's channel
		evs, err := plain.Decode(decode.Message{Value: body, Topic: q, Offset: int64(i + 1)})
		if err != nil || len(evs) != 1 {
			t.Fatalf("decode %s: %d events, %v", body, len(evs), err)
		}
		want = append(want, evs...)
	}
	br.publish(q, bodies...)
	dec, _ := canaljson.New(decode.Options{})
	src, err := rabbitmq.New(rabbitmq.Config{URL: brokerURL, Queue: q, BatchSize: 10, MaxWait: 20 * time.Millisecond},
		dec, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	defer closeSource(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	got := sourcetest.Held(ctx, t, src, len(want), 3)
	if !sourcetest.SameEvents(got, want) {
		for i := range got {
			if i < len(want) && !sourcetest.SameEvent(got[i], want[i]) {
				t.Fatalf("event %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	if reused, made := src.RowPoolStats(); reused == 0 {
		t.Errorf("rows reused %d, made %d: the acked batches' rows were not recycled", reused, made)
	}
}
