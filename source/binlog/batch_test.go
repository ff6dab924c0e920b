package binlog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/checkpoint"
)

// TestLoneCommitNoWait: with a MaxWait of an hour, a transaction written
// to an idle server is still delivered, whole and alone, by the next call
// to Next: the batch closes at the transaction end because nothing more
// has arrived, not when MaxWait runs out.
func TestLoneCommitNoWait(t *testing.T) {
	db, schema := testDB(t)
	mustExec(t, db, "CREATE TABLE lone (id INT PRIMARY KEY, v VARCHAR(8))")
	store, err := checkpoint.NewFile(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := newSource(t, schema, store, func(c *Config) { c.MaxWait = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	for round := range 3 {
		base := round * 10
		mustExec(t, db, fmt.Sprintf("BEGIN; INSERT INTO lone VALUES (%d,'a'); INSERT INTO lone VALUES (%d,'b'), (%d,'c'); COMMIT",
			base+1, base+2, base+3))
		b, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("round %d: next did not return before the test deadline: %v", round, err)
		}
		if len(b.Events) != 3 {
			t.Fatalf("round %d: %d events, want the 3 rows of the transaction", round, len(b.Events))
		}
		for i, e := range b.Events {
			if e.After.Get("id") != int64(base+i+1) {
				t.Fatalf("round %d event %d: %v, want id %d", round, i, e.After, base+i+1)
			}
		}
		if err := b.Ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cp, ok, err := store.Load(ctx)
		if err != nil || !ok {
			t.Fatalf("round %d: no checkpoint: %v", round, err)
		}
		if v, last := cdc.BinlogPosVersion(cp.File, cp.Offset), b.Events[2].Pos.Version; v <= last {
			t.Fatalf("round %d: checkpoint %v is not after the transaction's last row", round, cp)
		}
	}
}

// TestBurstBatches: transactions that have all arrived when Next runs go
// out in one large batch, not one batch per transaction, although every
// transaction end is a point where an idle stream's batch would close.
func TestBurstBatches(t *testing.T) {
	db, schema := testDB(t)
	mustExec(t, db, "CREATE TABLE burst (id INT PRIMARY KEY)")
	s := newSource(t, schema, nil, func(c *Config) { c.MaxWait = time.Hour })
	const n = 2000 // autocommitted single-row transactions
	var q strings.Builder
	for i := range n {
		fmt.Fprintf(&q, "INSERT INTO burst VALUES (%d);", i)
	}
	mustExec(t, db, q.String())
	queueAll(t, s, n)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	got, batches, biggest := 0, 0, 0
	for got < n {
		b, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("next after %d of %d: %v", got, n, err)
		}
		for i, e := range b.Events {
			if e.After.Get("id") != int64(got+i) {
				t.Fatalf("event %d: %v, want id %d", got+i, e.After, got+i)
			}
		}
		got += len(b.Events)
		batches++
		biggest = max(biggest, len(b.Events))
		if err := b.Ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d transactions in %d batches, the biggest %d events", n, batches, biggest)
	if got != n {
		t.Fatalf("got %d events, want %d", got, n)
	}
	if batches != 1 {
		t.Fatalf("%d transactions came in %d batches (biggest %d): the burst was not batched", n, batches, biggest)
	}
}

// queueAll moves the burst's n transactions (one row each in table
// burst), as the syncer receives them, into the source's backlog of
// received events, so that Next finds them all already there, as under
// load. It counts the burst's own rows and the commit after the last one:
// other tests write to the same server meanwhile, so their transactions
// arrive in between and must not count.
func queueAll(t *testing.T, s *Source, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for rows, done := 0, false; !done; {
		s.mu.Lock()
		stream := s.stream
		s.mu.Unlock()
		evs := stream.DumpEvents()
		for _, e := range evs {
			switch ev := e.Event.(type) {
			case *replication.RowsEvent:
				if ev.Table != nil && string(ev.Table.Table) == "burst" {
					rows += len(ev.Rows)
				}
			case *replication.XIDEvent:
				done = done || rows >= n
			}
		}
		s.backlog = append(s.backlog, evs...)
		if len(evs) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d rows arrived", rows, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// failingStore is a real file store whose saves start failing on demand.
type failingStore struct {
	*checkpoint.File
	fail atomic.Bool
}

func (f *failingStore) Save(ctx context.Context, p checkpoint.Position) error {
	if f.fail.Load() {
		return errors.New("disk on fire")
	}
	return f.File.Save(ctx, p)
}

// TestAckSurvivesFailingCheckpointStore: a checkpoint store that fails
// does not stop the stream: acks succeed, the saver reports the error and
// retries, and the newest position lands once the store is back.
func TestAckSurvivesFailingCheckpointStore(t *testing.T) {
	db, schema := testDB(t)
	mustExec(t, db, "CREATE TABLE fail (id INT PRIMARY KEY)")
	file, err := checkpoint.NewFile(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	store := &failingStore{File: file}
	s := newSource(t, schema, store, nil) // saves the start position: works
	store.fail.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	next := func(id int) cdc.Batch {
		mustExec(t, db, "INSERT INTO fail VALUES (?)", id)
		b, err := s.Next(ctx)
		if err != nil || len(b.Events) != 1 {
			t.Fatalf("next: %d events, %v", len(b.Events), err)
		}
		return b
	}
	if err := next(1).Ack(ctx, nil); err != nil {
		t.Fatalf("first ack: %v", err)
	}
	for s.saver.Err() == nil {
		if ctx.Err() != nil {
			t.Fatal("the background save never failed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(s.saver.Err().Error(), "disk on fire") {
		t.Fatalf("saver error %q", s.saver.Err())
	}
	if err := next(2).Ack(ctx, nil); err != nil {
		t.Fatalf("ack while the store is down: %v", err)
	}
	want := s.saver.Acked()
	store.fail.Store(false)
	for s.Checkpoint() != want {
		if ctx.Err() != nil {
			t.Fatal("the checkpoint never landed after the store came back")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
