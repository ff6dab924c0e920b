package backfill

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rowsync/rowsync/cdc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// script is an inner stream the test feeds batch by batch.
type script struct {
	ch     chan cdc.Batch
	mu     sync.Mutex
	acked  []error
	closed bool
}

func newScript() *script { return &script{ch: make(chan cdc.Batch)} }

func (s *script) Next(ctx context.Context) (cdc.Batch, error) {
	select {
	case b := <-s.ch:
		return b, nil
	case <-ctx.Done():
		return cdc.Batch{}, ctx.Err()
	}
}

func (s *script) Close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// batch builds a stream batch of updates (id, v, version) with through.
func (s *script) batch(through uint64, evs ...cdc.Event) cdc.Batch {
	if through != 0 {
		through = wm(through).Version()
	}
	return cdc.Batch{Events: evs, Through: through, Ack: func(_ context.Context, err error) error {
		s.mu.Lock()
		s.acked = append(s.acked, err)
		s.mu.Unlock()
		return nil
	}}
}

func logUpdate(id int64, v string, version uint64) cdc.Event {
	return cdc.Event{DB: "shop", Table: "t", Op: cdc.Update, PK: []string{"id"}, Before: cdc.RowOf("id", id), After: cdc.RowOf("id", id, "v", v),
		Pos: cdc.Position{Version: ver(version), Text: fmt.Sprint(version)}}
}

func keyOf(row *cdc.Row) (string, bool) {
	v, ok := row.Lookup("id")
	if !ok || v == nil {
		return "", false
	}
	return fmt.Sprint(v), true
}

// sink applies events in order as a version-guarded store would.
type sink struct {
	rows map[string]*cdc.Row
	ver  map[string]uint64
}

func newSink() *sink { return &sink{rows: map[string]*cdc.Row{}, ver: map[string]uint64{}} }

func (k *sink) apply(evs []cdc.Event) {
	for _, ev := range evs {
		id, _ := keyOf(ev.Image())
		if ev.Pos.Version != 0 && ev.Pos.Version < k.ver[id] {
			continue
		}
		k.ver[id] = ev.Pos.Version
		if ev.Op == cdc.Delete {
			delete(k.rows, id)
			continue
		}
		k.rows[id] = ev.After.Clone() // kept past the batch's ack
	}
}

// ver is offset v of the first binlog file as a version (0 stays 0).
func ver(v uint64) uint64 {
	if v == 0 {
		return 0
	}
	return wm(v).Version()
}

func wm(v uint64) Watermark { return Watermark{File: "mysql-bin.000001", Offset: v} }

func chunkOf(low, high uint64, rows ...*cdc.Row) Chunk {
	return Chunk{Rows: rows, Low: wm(low), High: wm(high)}
}

func row(id int64, v string) *cdc.Row { return cdc.RowOf("id", id, "v", v) }

// emitAsync runs Emit in a goroutine; the result arrives on the channel.
type emitResult struct {
	dropped int
	err     error
}

func emitAsync(ctx context.Context, s *Source, c Chunk) <-chan emitResult {
	out := make(chan emitResult, 1)
	go func() {
		d, err := s.Emit(ctx, Emit{DB: "shop", Table: "t", PK: []string{"id"}, Chunk: c, Text: "backfill shop.t chunk 1"})
		out <- emitResult{d, err}
	}()
	return out
}

func next(t *testing.T, s *Source) cdc.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := s.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func closeSource(t *testing.T, s *Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRaceBetweenWatermarks is the DBLog race on its own, forced step by
// step: a row is read by a chunk, then updated in the log between the
// chunk's watermarks; the log's value must win, whichever order the
// stream and the chunk would otherwise reach the sink in.
func TestRaceBetweenWatermarks(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		low, high uint64 // the chunk's watermarks
		update    uint64 // version of the log's update of row 2
		dropped   int
	}{
		// MariaDB snapshot: L == H; the update is logged after the snapshot
		{"snapshot, update after L", 100, 100, 150, 1},
		// MySQL locking read: the update lands between L and H
		{"locking read, update between L and H", 100, 200, 150, 1},
		// an update logged before L is in the chunk already: the chunk keeps it
		{"update before L", 100, 200, 90, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newScript()
			s := NewSource(in, true)
			defer closeSource(t, s)
			k := newSink()
			go func() { in.ch <- in.batch(50) }()
			k.apply(next(t, s).Events)

			s.Record("shop", "t", keyOf)
			// the chunk read row 2 as "chunk"; the log changed it to "log"
			// (before L: the chunk read it as "log" already)
			read := "chunk"
			if tc.update < tc.low {
				read = "log"
			}
			res := emitAsync(ctx, s, chunkOf(tc.low, tc.high, row(1, "a"), row(2, read), row(3, "c")))
			go func() { in.ch <- in.batch(tc.high, logUpdate(2, "log", tc.update)) }()
			b := next(t, s)
			if len(b.Events) != 1 || b.Events[0].Op != cdc.Update {
				t.Fatalf("first batch after the read = %+v, want the log's update (the chunk waits for Through >= H)", b.Events)
			}
			k.apply(b.Events)
			b.Ack(ctx, nil)
			cb := next(t, s)
			for _, ev := range cb.Events {
				if !ev.Read || ev.Op != cdc.Insert || ev.Pos.Version != ver(tc.low) {
					t.Fatalf("chunk event %+v: want a Read Insert at version L", ev)
				}
			}
			k.apply(cb.Events)
			if err := cb.Ack(ctx, nil); err != nil {
				t.Fatal(err)
			}
			r := <-res
			if r.err != nil || r.dropped != tc.dropped {
				t.Fatalf("emit = %d dropped, %v; want %d", r.dropped, r.err, tc.dropped)
			}
			if got := k.rows["2"].Get("v"); got != "log" {
				t.Fatalf("row 2 = %v, want the log's value", got)
			}
			if k.rows["1"].Get("v") != "a" || k.rows["3"].Get("v") != "c" {
				t.Fatalf("rows %v", k.rows)
			}
		})
	}
}

// TestChunkWaitsForThroughAndQuietStream: a chunk waits until the stream
// has delivered through its high watermark, and goes without a new batch
// when the stream delivered that far already (a quiet server).
func TestChunkWaitsForThroughAndQuietStream(t *testing.T) {
	ctx := context.Background()
	in := newScript()
	s := NewSource(in, true)
	defer closeSource(t, s)
	go func() { in.ch <- in.batch(300) }()
	next(t, s)
	// delivered 300 >= H 200: out at once although the stream is quiet
	res := emitAsync(ctx, s, chunkOf(200, 200, row(1, "a")))
	b := next(t, s)
	if len(b.Events) != 1 || !b.Events[0].Read {
		t.Fatalf("got %+v", b.Events)
	}
	b.Ack(ctx, nil)
	if r := <-res; r.err != nil {
		t.Fatal(r.err)
	}
	// H 500 > delivered: Next blocks until a batch brings Through 500
	res = emitAsync(ctx, s, chunkOf(500, 500, row(1, "b")))
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if _, err := s.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next before Through reached H = %v", err)
	}
	cancel()
	go func() { in.ch <- in.batch(499) }()
	if b := next(t, s); len(b.Events) != 0 {
		t.Fatalf("want the stream's batch, got %+v", b.Events)
	}
	go func() { in.ch <- in.batch(500) }()
	next(t, s)
	b = next(t, s)
	if len(b.Events) != 1 || b.Events[0].After.Get("v") != "b" {
		t.Fatalf("got %+v", b.Events)
	}
	b.Ack(ctx, nil)
	if r := <-res; r.err != nil {
		t.Fatal(r.err)
	}
}

// TestNoThroughDropsEveryRecordedKey: a queue source cannot say how far it
// delivered; the chunk goes at once, without every key seen since the
// read began, whatever its version.
func TestNoThroughDropsEveryRecordedKey(t *testing.T) {
	ctx := context.Background()
	in := newScript()
	s := NewSource(in, false)
	defer closeSource(t, s)
	s.Record("shop", "t", keyOf)
	go func() { in.ch <- in.batch(0, logUpdate(1, "old", 10), logUpdate(2, "nover", 0)) }()
	next(t, s)
	res := emitAsync(ctx, s, chunkOf(100, 100, row(1, "chunk"), row(2, "chunk"), row(3, "chunk")))
	b := next(t, s)
	if len(b.Events) != 1 || b.Events[0].After.Get("id") != int64(3) {
		t.Fatalf("got %+v, want only row 3", b.Events)
	}
	b.Ack(ctx, nil)
	if r := <-res; r.err != nil || r.dropped != 2 {
		t.Fatalf("emit = %+v", r)
	}
}

// TestMissingKeysAreDeletes: a key-list chunk's keys without a row come
// out as Deletes of the key.
func TestMissingKeysAreDeletes(t *testing.T) {
	ctx := context.Background()
	in := newScript()
	s := NewSource(in, false)
	defer closeSource(t, s)
	c := chunkOf(1, 1, row(1, "a"))
	c.Missing = []*cdc.Row{cdc.RowOf("id", int64(9))}
	res := emitAsync(ctx, s, c)
	b := next(t, s)
	if len(b.Events) != 2 || b.Events[1].Op != cdc.Delete || b.Events[1].Before.Get("id") != int64(9) || b.Events[1].After != nil {
		t.Fatalf("got %+v", b.Events)
	}
	b.Ack(ctx, nil)
	if r := <-res; r.err != nil {
		t.Fatal(r.err)
	}
}

// TestNackAndCancel: a nacked chunk reports the error to Emit; an Emit
// whose context ends before the chunk is handed out takes it back.
func TestNackAndCancel(t *testing.T) {
	ctx := context.Background()
	in := newScript()
	s := NewSource(in, false)
	defer closeSource(t, s)
	res := emitAsync(ctx, s, chunkOf(1, 1, row(1, "a")))
	b := next(t, s)
	b.Ack(ctx, errors.New("sink down"))
	if r := <-res; r.err == nil {
		t.Fatal("nacked chunk: Emit returned nil")
	}
	if err := b.Ack(ctx, nil); err == nil {
		t.Fatal("second ack accepted")
	}

	cctx, cancel := context.WithCancel(ctx)
	res = emitAsync(cctx, s, chunkOf(1, 1, row(1, "a")))
	// wait until it is queued, then cancel before any Next
	for {
		s.mu.Lock()
		queued := len(s.queue) > 0
		s.mu.Unlock()
		if queued {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if r := <-res; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled Emit = %v", r.err)
	}
	s.mu.Lock()
	left := len(s.queue) + len(s.recs)
	s.mu.Unlock()
	if left != 0 {
		t.Fatal("cancelled chunk still pending")
	}
}

// TestThroughNeedsWatermark: with a Through stream a chunk without binlog
// position cannot be ordered and is refused.
func TestThroughNeedsWatermark(t *testing.T) {
	in := newScript()
	s := NewSource(in, true)
	defer closeSource(t, s)
	_, err := s.Emit(context.Background(), Emit{DB: "shop", Table: "t", Chunk: Chunk{}})
	if !errors.Is(err, cdc.ErrPermanent) {
		t.Fatalf("got %v", err)
	}
}

// TestCloseStopsThePump: Close ends the goroutine reading the stream
// (goleak checks) and closes the stream; Next then fails.
func TestCloseStopsThePump(t *testing.T) {
	in := newScript()
	s := NewSource(in, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	s.Next(ctx) // starts the pump, which waits in the stream
	closeSource(t, s)
	in.mu.Lock()
	closed := in.closed
	in.mu.Unlock()
	if !closed {
		t.Fatal("inner stream not closed")
	}
	if _, err := s.Next(context.Background()); err == nil {
		t.Fatal("Next after Close worked")
	}
	closeSource(t, NewSource(newScript(), false)) // never started
}

func TestResolveMethod(t *testing.T) {
	for _, tc := range []struct {
		m       Method
		version string
		want    Method
		err     bool
	}{
		{"", "10.11.19-MariaDB-0+deb12u1-log", MethodSnapshot, false},
		{MethodAuto, "8.0.36", MethodLockingRead, false},
		{MethodAuto, "8.4.0", MethodLockingRead, false},
		{MethodSnapshot, "8.0.36", "", true},
		{MethodLockingRead, "10.11.19-MariaDB", MethodLockingRead, false},
		{"dblog", "8.0.36", "", true},
	} {
		got, err := resolveMethod(tc.m, tc.version)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("resolveMethod(%q, %q) = %q, %v", tc.m, tc.version, got, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	err := Config{Chunk: -1, Method: "x", Poll: -time.Second}.Validate()
	for _, key := range []string{"chunk:", "method:", "poll:"} {
		if err == nil || !contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

// TestQueuedChunksKeepTheirOwnRecording: a second chunk is read and queued
// while the first waits for its turn. Each drops only the keys the log
// changed after its own read began, and they go out in order, each once
// the stream delivered through its high watermark. Withdraw takes back
// what is still queued.
func TestQueuedChunksKeepTheirOwnRecording(t *testing.T) {
	ctx := context.Background()
	in := newScript()
	s := NewSource(in, true)
	defer closeSource(t, s)
	go func() { in.ch <- in.batch(50) }()
	next(t, s)

	s.Record("shop", "t", keyOf) // chunk 1: rows 1, 2 at L=H=100
	p1, err := s.Send(Emit{DB: "shop", Table: "t", PK: []string{"id"}, Chunk: chunkOf(100, 100, row(1, "c1"), row(2, "c1")), Text: "chunk 1"})
	if err != nil {
		t.Fatal(err)
	}
	// the log changes row 2 (version 120) before chunk 2's read begins
	go func() { in.ch <- in.batch(90, logUpdate(2, "log", 120)) }()
	next(t, s)                   // delivered 90 < 100: chunk 1 still waits
	s.Record("shop", "t", keyOf) // chunk 2: rows 3, 2(again: not in chunk 2's range, but its key was changed before chunk 2 began) at 200
	p2, err := s.Send(Emit{DB: "shop", Table: "t", PK: []string{"id"}, Chunk: chunkOf(200, 200, row(3, "c2"), row(2, "c2")), Text: "chunk 2"})
	if err != nil {
		t.Fatal(err)
	}
	// row 3 changes at 210, after both reads began
	go func() { in.ch <- in.batch(250, logUpdate(3, "log", 210)) }()
	if b := next(t, s); len(b.Events) != 1 || b.Events[0].Read {
		t.Fatalf("want the stream's batch first, got %+v", b.Events)
	}
	b1 := next(t, s)
	if len(b1.Events) != 1 || b1.Events[0].After.Get("id") != int64(1) || p1.Dropped() != 1 {
		t.Fatalf("chunk 1 = %+v, dropped %d; want row 1 only (row 2 changed after its read began)", b1.Events, p1.Dropped())
	}
	b2 := next(t, s)
	if len(b2.Events) != 1 || b2.Events[0].After.Get("id") != int64(2) || p2.Dropped() != 1 {
		t.Fatalf("chunk 2 = %+v, dropped %d; want row 2 only (row 3 changed after its read began, row 2 before)", b2.Events, p2.Dropped())
	}
	b1.Ack(ctx, nil)
	b2.Ack(ctx, errors.New("sink down"))
	if err := <-p1.Acked(); err != nil {
		t.Fatal(err)
	}
	if err := <-p2.Acked(); err == nil {
		t.Fatal("nacked chunk 2 reported applied")
	}

	// queued and withdrawn: never handed out
	s.Record("shop", "t", keyOf)
	p3, err := s.Send(Emit{DB: "shop", Table: "t", PK: []string{"id"}, Chunk: chunkOf(900, 900, row(9, "c3")), Text: "chunk 3"})
	if err != nil {
		t.Fatal(err)
	}
	s.Withdraw()
	go func() { in.ch <- in.batch(1000) }()
	if b := next(t, s); len(b.Events) != 0 {
		t.Fatalf("withdrawn chunk handed out: %+v", b.Events)
	}
	select {
	case <-p3.Handed():
		t.Fatal("withdrawn chunk reported handed out")
	default:
	}
}
