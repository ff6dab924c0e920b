package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/deadletter"
	"github.com/rowsync/rowsync/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sliceSource hands out prepared batches and records acks and nacks.
type sliceSource struct {
	mu      sync.Mutex
	batches []cdc.Batch
	next    int
	acked   []int // Ack(nil), in call order
	nacked  []int // Ack(err), in call order
	settled []int // both, in call order
	ackErr  error
	drained chan struct{}
}

func newSliceSource(batches [][]cdc.Event) *sliceSource {
	s := &sliceSource{drained: make(chan struct{})}
	for i, evs := range batches {
		s.batches = append(s.batches, cdc.Batch{Events: evs, Ack: func(ctx context.Context, err error) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.settled = append(s.settled, i)
			if err != nil {
				s.nacked = append(s.nacked, i)
				return nil
			}
			s.acked = append(s.acked, i)
			if len(s.acked) == len(s.batches) {
				close(s.drained)
			}
			return s.ackErr
		}})
	}
	return s
}

// checkSettled fails unless every batch handed out was settled exactly
// once, in the order Next returned them, with no nil ack after a nack.
func (s *sliceSource) checkSettled(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.settled) != s.next {
		t.Fatalf("%d batches handed out, %d settled (%v)", s.next, len(s.settled), s.settled)
	}
	for i, b := range s.settled {
		if b != i {
			t.Fatalf("settled out of order: %v", s.settled)
		}
	}
	if len(s.nacked) > 0 && len(s.acked) > 0 && s.acked[len(s.acked)-1] > s.nacked[0] {
		t.Fatalf("batch %d acked after batch %d was nacked", s.acked[len(s.acked)-1], s.nacked[0])
	}
}

func (s *sliceSource) Next(ctx context.Context) (cdc.Batch, error) {
	s.mu.Lock()
	if s.next < len(s.batches) {
		b := s.batches[s.next]
		s.next++
		s.mu.Unlock()
		return b, nil
	}
	s.mu.Unlock()
	<-ctx.Done()
	return cdc.Batch{}, ctx.Err()
}

func (s *sliceSource) Close(context.Context) error { return nil }

func (s *sliceSource) ackedOrder() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.acked...)
}

// recordSink records every applied event, can fail transiently or
// permanently, and checks per-key order itself.
type recordSink struct {
	mu        sync.Mutex
	lastSeq   map[string]int64
	applied   int
	violation error
	failNext  int            // transient failures still to return
	poison    map[int64]bool // seq values that fail permanently
	delay     time.Duration
}

func (s *recordSink) Apply(ctx context.Context, events []cdc.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		return errors.New("connection refused")
	}
	var be cdc.BatchError
	for i, ev := range events {
		seq := ev.After.Get("seq").(int64)
		if s.poison[seq] {
			be.Fail(i, fmt.Errorf("poison %d", seq))
			continue
		}
		key := fmt.Sprint(ev.After.Get("id"))
		if last, ok := s.lastSeq[key]; ok && last >= seq && s.violation == nil {
			s.violation = fmt.Errorf("key %s: seq %d applied after %d", key, seq, last)
		}
		s.lastSeq[key] = seq
		s.applied++
	}
	return be.Err()
}

func (s *recordSink) Close(context.Context) error { return nil }

func makeBatches(nBatches, perBatch, keys int) [][]cdc.Event {
	var out [][]cdc.Event
	seq := int64(0)
	for b := 0; b < nBatches; b++ {
		var evs []cdc.Event
		for i := 0; i < perBatch; i++ {
			seq++
			id := rand.Int64N(int64(keys))
			evs = append(evs, cdc.Event{DB: "shop", Table: "users", Op: cdc.Update, PK: []string{"id"},
				After: cdc.RowOf("id", id, "seq", seq), Pos: cdc.Position{Text: fmt.Sprint(seq)}})
		}
		out = append(out, evs)
	}
	return out
}

func run(t *testing.T, src *sliceSource, sink cdc.Sink, dl deadletter.Writer, opts Options) {
	t.Helper()
	opts.DeadLetter = dl
	cancel, done := start(t, src, sink, opts)
	select {
	case <-src.drained:
	case <-time.After(3 * time.Minute):
		t.Fatalf("not drained: acked %d of %d batches", len(src.ackedOrder()), len(src.batches))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	src.checkSettled(t)
}

// start runs a pipeline from src to sink (route "test") in a goroutine;
// cancel stops it and done has Run's error. Retries are fast unless opts
// sets them.
func start(t *testing.T, src cdc.Source, sink cdc.Sink, opts Options) (cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	if opts.RetryMin == 0 {
		opts.RetryMin, opts.RetryMax = time.Millisecond, 5*time.Millisecond
	}
	p, err := New(src, []Route{{Name: "test", Sink: sink}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	return cancel, errc
}

func TestPerKeyOrderUnderManyWorkers(t *testing.T) {
	src := newSliceSource(makeBatches(200, 500, 1000))
	sink := &recordSink{lastSeq: map[string]int64{}}
	run(t, src, sink, &deadletter.Memory{}, Options{Workers: 8, MaxInFlight: 4})
	if sink.violation != nil {
		t.Fatal(sink.violation)
	}
	if sink.applied != 200*500 {
		t.Fatalf("applied %d, want %d", sink.applied, 200*500)
	}
	for i, b := range src.ackedOrder() {
		if b != i {
			t.Fatalf("ack %d was batch %d: acks out of order", i, b)
		}
	}
}

func TestTransientErrorsAreRetriedBeforeAck(t *testing.T) {
	src := newSliceSource(makeBatches(5, 10, 3))
	sink := &recordSink{lastSeq: map[string]int64{}, failNext: 7}
	run(t, src, sink, &deadletter.Memory{}, Options{Workers: 2})
	if sink.applied != 50 {
		t.Fatalf("applied %d, want 50", sink.applied)
	}
}

func TestPermanentFailuresGoToDeadLetterAndStreamGoesOn(t *testing.T) {
	batches := makeBatches(3, 10, 5)
	src := newSliceSource(batches)
	src.batches[1].Rejects = []cdc.Reject{{Pos: cdc.Position{Text: "t/0@7"}, Raw: []byte("{bad"), Reason: errors.New("bad json")}}
	sink := &recordSink{lastSeq: map[string]int64{}, poison: map[int64]bool{4: true, 25: true}}
	dl := &deadletter.Memory{}
	run(t, src, sink, dl, Options{Workers: 3, RenderEvent: func(e cdc.Event) ([]byte, error) { return []byte(`{"x":1}`), nil }})
	recs := dl.Records()
	if len(recs) != 3 {
		t.Fatalf("dead letters = %d, want 3: %+v", len(recs), recs)
	}
	var decode, poison int
	for _, r := range recs {
		switch r.Stage {
		case "decode":
			decode++
			if string(r.Raw) != "{bad" || r.Reason != "bad json" || r.Pos != "t/0@7" {
				t.Errorf("reject record = %+v", r)
			}
		case "test":
			poison++
			if r.Pos != "4" && r.Pos != "25" || string(r.Event) != `{"x":1}` {
				t.Errorf("sink record = %+v", r)
			}
		}
	}
	if decode != 1 || poison != 2 || sink.applied != 28 {
		t.Fatalf("decode=%d poison=%d applied=%d", decode, poison, sink.applied)
	}
}

func TestKeyChangeIsSplitIntoDeleteAndInsert(t *testing.T) {
	ev := cdc.Event{DB: "d", Table: "t", Op: cdc.Update, PK: []string{"id"},
		Before: cdc.RowOf("id", int64(1), "v", "a"), After: cdc.RowOf("id", int64(2), "v", "a")}
	old, nw, split := splitKeyChange(ev)
	if !split || old.Op != cdc.Delete || old.Before.Get("id") != int64(1) || old.After != nil ||
		nw.Op != cdc.Insert || nw.After.Get("id") != int64(2) || nw.Before != nil {
		t.Fatalf("split = %v %+v %+v", split, old, nw)
	}
	ev.After.Set("id", int64(1))
	if _, _, split := splitKeyChange(ev); split {
		t.Fatal("same key must not split")
	}
}

// TestStopNacksUnfinishedWork: a sink that never comes back, then a
// shutdown whose grace expires: nothing is acked, and every batch taken
// from the source is nacked, once, in order (cdc.Batch's contract).
func TestStopNacksUnfinishedWork(t *testing.T) {
	src := newSliceSource(makeBatches(50, 10, 10))
	sink := &recordSink{lastSeq: map[string]int64{}, failNext: 1 << 30} // sink never comes back
	p, err := New(src, []Route{{Name: "test", Sink: sink}}, Options{DeadLetter: &deadletter.Memory{},
		RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond, ShutdownGrace: 50 * time.Millisecond, StuckAfter: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(3 * time.Minute)
	for p.Ready() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if p.Ready() == nil {
		t.Fatal("Ready() never reported the stuck pipeline")
	}
	cancel()
	if err := <-done; err == nil {
		t.Log("run returned nil after grace expiry")
	}
	if n := len(src.ackedOrder()); n != 0 {
		t.Fatalf("%d batches acked although nothing was applied", n)
	}
	src.checkSettled(t)
	if len(src.nacked) == 0 {
		t.Fatal("no batch nacked")
	}
}

func TestAckErrorStopsThePipeline(t *testing.T) {
	src := newSliceSource(makeBatches(3, 2, 2))
	src.ackErr = errors.New("checkpoint store down")
	p, err := New(src, []Route{{Name: "test", Sink: &recordSink{lastSeq: map[string]int64{}}}}, Options{DeadLetter: &deadletter.Memory{}})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Run(context.Background())
	if err == nil || !errors.Is(err, src.ackErr) {
		t.Fatalf("run = %v, want the ack error", err)
	}
	src.checkSettled(t)
}

// finiteSource hands out its batches, then cdc.ErrEndOfStream for ever.
type finiteSource struct{ *sliceSource }

func (s finiteSource) Next(ctx context.Context) (cdc.Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next < len(s.batches) {
		s.next++
		return s.batches[s.next-1], nil
	}
	return cdc.Batch{}, fmt.Errorf("snapshot done: %w", cdc.ErrEndOfStream)
}

func TestEndOfStreamDrainsAcksAndReturnsNil(t *testing.T) {
	for _, tc := range []struct {
		name     string
		batches  int
		failNext int
		delay    time.Duration
	}{
		{"empty source", 0, 0, 0},
		{"one batch", 1, 0, 0},
		{"many batches in flight", 40, 0, time.Millisecond},
		{"transient errors at the end", 10, 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := finiteSource{newSliceSource(makeBatches(tc.batches, 50, 20))}
			sink := &recordSink{lastSeq: map[string]int64{}, failNext: tc.failNext, delay: tc.delay}
			p, err := New(src, []Route{{Name: "test", Sink: sink}}, Options{DeadLetter: &deadletter.Memory{},
				Workers: 4, MaxInFlight: 4, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := p.Run(ctx); err != nil {
				t.Fatalf("run = %v, want nil at end of stream", err)
			}
			if ctx.Err() != nil {
				t.Fatal("run returned only because the test timed out")
			}
			acked := src.ackedOrder()
			if len(acked) != tc.batches {
				t.Fatalf("acked %d batches, want %d", len(acked), tc.batches)
			}
			for i, b := range acked {
				if b != i {
					t.Fatalf("ack %d was batch %d: acks out of order", i, b)
				}
			}
			if sink.applied != tc.batches*50 || p.Applied() != int64(tc.batches*50) {
				t.Fatalf("applied %d (pipeline says %d), want %d", sink.applied, p.Applied(), tc.batches*50)
			}
			if sink.violation != nil {
				t.Fatal(sink.violation)
			}
		})
	}
}

func BenchmarkPipeline(b *testing.B) {
	batches := makeBatches(b.N/1000+1, 1000, 100000)
	src := newSliceSource(batches)
	sink := &recordSink{lastSeq: map[string]int64{}}
	b.ResetTimer()
	start := time.Now()
	p, _ := New(src, []Route{{Name: "bench", Sink: sink}}, Options{DeadLetter: &deadletter.Memory{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-src.drained
	cancel()
	<-done
	b.ReportMetric(float64(len(batches)*1000)/time.Since(start).Seconds(), "events/s")
}

// pickyWriter writes every record except those whose reason is "too big",
// which it reports as unwritable, as a size-limited dead letter would.
type pickyWriter struct {
	deadletter.Memory
	calls int
}

func (w *pickyWriter) Write(ctx context.Context, recs []deadletter.Record) error {
	w.calls++
	var ok []deadletter.Record
	ue := &deadletter.UnwritableError{Failed: map[int]error{}}
	for i, r := range recs {
		if r.Reason == "too big" {
			ue.Failed[i] = errors.New("record of 2 MiB exceeds the 1 MiB limit")
			continue
		}
		ok = append(ok, r)
	}
	_ = w.Memory.Write(ctx, ok)
	if len(ue.Failed) > 0 {
		return ue
	}
	return nil
}

// TestUnwritableDeadLetterIsDroppedNotRetried: a record the dead letter can
// never take is logged and counted, and the stream goes on (it once
// retried for ever and stalled everything behind it).
func TestUnwritableDeadLetterIsDroppedNotRetried(t *testing.T) {
	batches := makeBatches(3, 5, 5)
	src := newSliceSource(batches)
	src.batches[1].Rejects = []cdc.Reject{{Pos: cdc.Position{Text: "t/0@7"}, Raw: []byte("x"), Reason: errors.New("too big")},
		{Pos: cdc.Position{Text: "t/0@8"}, Raw: []byte("y"), Reason: errors.New("bad json")}}
	sink := &recordSink{lastSeq: map[string]int64{}}
	dl := &pickyWriter{}
	m := metrics.New()
	run(t, src, sink, dl, Options{Workers: 2, Metrics: m})
	recs := dl.Records()
	if len(recs) != 1 || recs[0].Pos != "t/0@8" || dl.calls != 1 || sink.applied != 15 {
		t.Fatalf("records %+v, calls %d, applied %d", recs, dl.calls, sink.applied)
	}
	var got dto.Metric
	if err := m.Errors.WithLabelValues("deadletter", "permanent").Write(&got); err != nil || got.GetCounter().GetValue() != 1 {
		t.Fatalf("rowsync_errors_total{sink=deadletter,class=permanent} = %v (%v), want 1", got.GetCounter().GetValue(), err)
	}
}

// TestRouteWantsSelectsTables: a route gets only the tables its Wants
// selects; the others still go to the routes that want them and are acked.
func TestRouteWantsSelectsTables(t *testing.T) {
	var evs []cdc.Event
	for i := int64(1); i <= 10; i++ {
		table := "users"
		if i%2 == 0 {
			table = "cache_only"
		}
		evs = append(evs, cdc.Event{DB: "shop", Table: table, Op: cdc.Insert, PK: []string{"id"},
			After: cdc.RowOf("id", i, "seq", i), Pos: cdc.Position{Text: fmt.Sprint(i)}})
	}
	src := finiteSource{newSliceSource([][]cdc.Event{evs})}
	hashes := &recordSink{lastSeq: map[string]int64{}}
	all := &recordSink{lastSeq: map[string]int64{}}
	p, err := New(src, []Route{
		{Name: "hashes", Sink: hashes, Wants: func(db, table string) bool { return table == "users" }},
		{Name: "all", Sink: all},
	}, Options{DeadLetter: &deadletter.Memory{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if hashes.applied != 5 || all.applied != 10 || len(src.ackedOrder()) != 1 {
		t.Fatalf("hashes got %d (want 5), all got %d (want 10), acked %v", hashes.applied, all.applied, src.ackedOrder())
	}
}

// TestTableLabelsAreBounded: table names a message invents do not become
// rowsync_events_total series; only tables a rule matches do.
func TestTableLabelsAreBounded(t *testing.T) {
	var evs []cdc.Event
	for i := range 50 {
		evs = append(evs, cdc.Event{DB: "shop", Table: fmt.Sprintf("invented_%d", i), Op: cdc.Insert, PK: []string{"id"},
			After: cdc.RowOf("id", int64(i), "seq", int64(i))})
	}
	evs = append(evs, cdc.Event{DB: "shop", Table: "users", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(99), "seq", int64(99))})
	src := newSliceSource([][]cdc.Event{evs})
	m := metrics.New()
	run(t, src, &recordSink{lastSeq: map[string]int64{}}, &deadletter.Memory{}, Options{Metrics: m,
		MatchTable: func(db, table string) bool { return db == "shop" && table == "users" }})
	got := map[string]float64{}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "rowsync_events_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "table" {
					got[l.GetValue()] += s.GetCounter().GetValue()
				}
			}
		}
	}
	if len(got) != 2 || got["shop.users"] != 1 || got[UnmatchedTable] != 50 {
		t.Fatalf("series by table: %v", got)
	}
	var p Pipeline
	for i := range MaxTableLabels + 10 {
		p.tableLabel("d", fmt.Sprint(i))
	}
	if l := p.tableLabel("d", "new"); l != OtherTable {
		t.Fatalf("label past the budget: %q", l)
	}
	if l := p.tableLabel("d", "5"); l != "d.5" {
		t.Fatalf("known label: %q", l)
	}
}

// gateSink blocks every Apply until open is closed.
type gateSink struct {
	open    chan struct{}
	entered chan struct{} // closed at the first Apply
	once    sync.Once
}

func (g *gateSink) Apply(ctx context.Context, events []cdc.Event) error {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gateSink) Close(context.Context) error { return nil }

// TestMaxInFlightBytes: with a byte bound below one batch, a second batch
// waits until the first is acked, whatever MaxInFlight allows; the first
// always flows, so nothing deadlocks.
func TestMaxInFlightBytes(t *testing.T) {
	src := newSliceSource(makeBatches(6, 10, 10))
	sink := &gateSink{open: make(chan struct{}), entered: make(chan struct{})}
	p, err := New(src, []Route{{Name: "test", Sink: sink}}, Options{DeadLetter: &deadletter.Memory{},
		MaxInFlight: 8, MaxInFlightBytes: 1, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-sink.entered // batch 0 is being applied and holds the byte budget
	deadline := time.Now().Add(3 * time.Minute)
	for {
		src.mu.Lock()
		n := src.next
		src.mu.Unlock()
		if n >= 2 {
			break // batch 1 was read; it waits for room
		}
		if time.Now().After(deadline) {
			t.Fatal("the pipeline never read a second batch")
		}
		time.Sleep(time.Millisecond)
	}
	src.mu.Lock()
	n := src.next
	src.mu.Unlock()
	if got := p.inFlight.Load(); got != 1 || n > 2 {
		t.Fatalf("%d batches in flight and %d read under a 1-byte bound, want 1 and at most 2", got, n)
	}
	close(sink.open)
	select {
	case <-src.drained:
	case <-time.After(3 * time.Minute):
		t.Fatalf("not drained: acked %v", src.ackedOrder())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	src.checkSettled(t)
	p.bytesMu.Lock()
	left := p.inFlightBytes
	p.bytesMu.Unlock()
	if left != 0 {
		t.Fatalf("%d bytes still counted in flight after the drain", left)
	}
}

func TestBatchBytes(t *testing.T) {
	small := cdc.Event{DB: "d", Table: "t", After: cdc.RowOf("id", int64(1))}
	wide := cdc.Event{DB: "d", Table: "t", Before: cdc.RowOf("b", strings.Repeat("x", 1000)),
		After: cdc.RowOf("b", []byte(strings.Repeat("y", 2000)), "j", cdc.JSON(`{"k": 1}`), "d", cdc.Decimal("1.50"))}
	one := eventBytes(&small)
	if want := int64(eventOverhead + 2 + valueOverhead + 2); one != want {
		t.Fatalf("small event %d bytes, want %d", one, want)
	}
	if w := eventBytes(&wide); w < 3000 {
		t.Fatalf("wide event %d bytes, want at least its 3000 value bytes", w)
	}
	for _, n := range []int{0, 1, 7, 8, 9, 100} {
		evs := make([]cdc.Event, n)
		for i := range evs {
			evs[i] = small
		}
		if got := batchBytes(evs); got != int64(n)*one {
			t.Errorf("%d alike events: %d bytes, want %d", n, got, int64(n)*one)
		}
	}
	// Every run of another table or operation is sized from its own first
	// event, however short and wherever it falls among the sampled ones.
	other := small
	other.Table = "u"
	other.After = wide.After
	deleted := small
	deleted.Op, deleted.Before, deleted.After = cdc.Delete, wide.Before, nil
	for _, tc := range []struct {
		name string
		evs  []cdc.Event
	}{
		{"interleaved tables", []cdc.Event{small, other, small, other, other, small}},
		{"one wide among many", append(append(slices.Repeat([]cdc.Event{small}, 70), other), slices.Repeat([]cdc.Event{small}, 70)...)},
		{"operation changes", append(slices.Repeat([]cdc.Event{small}, 5), deleted, small)},
	} {
		var want int64
		for i := range tc.evs {
			want += eventBytes(&tc.evs[i])
		}
		if got := batchBytes(tc.evs); got != want {
			t.Errorf("%s: %d bytes, want %d", tc.name, got, want)
		}
	}
}

func TestKeyChanged(t *testing.T) {
	upd := func(before, after cdc.Value) *cdc.Event {
		return &cdc.Event{Op: cdc.Update, PK: []string{"k"}, Before: cdc.RowOf("k", before, "v", 1), After: cdc.RowOf("k", after, "v", 2)}
	}
	for _, tc := range []struct {
		name string
		ev   *cdc.Event
		want bool
	}{
		{"same int", upd(int64(7), int64(7)), false},
		{"other int", upd(int64(7), int64(8)), true},
		{"same uint", upd(uint64(1<<63), uint64(1<<63)), false},
		{"other uint", upd(uint64(1), uint64(2)), true},
		{"same string", upd("a", "a"), false},
		{"other string", upd("a", "b"), true},
		{"int and uint of one value", upd(int64(5), uint64(5)), false},
		{"int and its text", upd(int64(5), "5"), false},
		{"bytes and string of one text", upd([]byte("ab"), "ab"), false},
		{"other bytes", upd([]byte("ab"), []byte("ac")), true},
		{"null to value", upd(nil, int64(1)), true},
		{"insert", &cdc.Event{Op: cdc.Insert, PK: []string{"k"}, After: cdc.RowOf("k", int64(1))}, false},
		{"second key column changes", &cdc.Event{Op: cdc.Update, PK: []string{"a", "b"},
			Before: cdc.RowOf("a", int64(1), "b", "x"), After: cdc.RowOf("a", int64(1), "b", "y")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keyChanged(tc.ev); got != tc.want {
				t.Fatalf("keyChanged = %v, want %v", got, tc.want)
			}
		})
	}
}

// countingRefetcher counts the events it is asked to read again and
// returns them unchanged.
type countingRefetcher struct {
	mu   sync.Mutex
	seen int
}

func (r *countingRefetcher) Refetch(_ context.Context, events []cdc.Event) ([]cdc.Event, error) {
	r.mu.Lock()
	r.seen += len(events)
	r.mu.Unlock()
	return events, nil
}

// TestReadRowsAreNotRefetched: a row a backfill read is fresh; only the
// logged changes of a refetched table are read again.
func TestReadRowsAreNotRefetched(t *testing.T) {
	batches := makeBatches(2, 10, 5)
	for i := range batches[1] {
		batches[1][i].Read = true
	}
	rf := &countingRefetcher{}
	sink := &recordSink{lastSeq: map[string]int64{}}
	run(t, newSliceSource(batches), sink, &deadletter.Memory{}, Options{Workers: 2, Refetch: rf})
	if rf.seen != 10 || sink.applied != 20 {
		t.Fatalf("refetched %d events (want 10), applied %d (want 20)", rf.seen, sink.applied)
	}
}

// keyRefetcher returns one event per distinct key, as refetch.Refetcher
// does (the key's last event).
type keyRefetcher struct{}

func (keyRefetcher) Refetch(_ context.Context, events []cdc.Event) ([]cdc.Event, error) {
	last := map[any]int{}
	for i, ev := range events {
		last[ev.After.Get("id")] = i
	}
	var out []cdc.Event
	for i, ev := range events {
		if last[ev.After.Get("id")] == i {
			out = append(out, ev)
		}
	}
	return out, nil
}

// TestEventsTotalCountsChangesWithRefetch: rowsync_events_total counts the
// changes taken from the source, also when refetch reads their keys once.
func TestEventsTotalCountsChangesWithRefetch(t *testing.T) {
	batches := makeBatches(2, 50, 3)
	m := metrics.New()
	sink := &recordSink{lastSeq: map[string]int64{}}
	run(t, newSliceSource(batches), sink, &deadletter.Memory{}, Options{Name: "rf", Workers: 2, Refetch: keyRefetcher{}, Metrics: m})
	var got dto.Metric
	if err := m.Events.WithLabelValues("rf", "shop.users", "update").Write(&got); err != nil {
		t.Fatal(err)
	}
	if n := got.GetCounter().GetValue(); n != 100 {
		t.Fatalf("rowsync_events_total = %v, want the 100 changes (the sink got %d refetched rows)", n, sink.applied)
	}
	if sink.applied >= 100 {
		t.Fatalf("the sink got %d rows: the refetcher did not merge keys", sink.applied)
	}
}

// stateSink applies events to a map of id -> seq, one Apply call at a time.
type stateSink struct {
	mu        sync.Mutex
	state     map[int64]int64
	violation error
}

func (s *stateSink) Apply(_ context.Context, events []cdc.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range events {
		switch ev.Op {
		case cdc.Delete:
			delete(s.state, ev.Before.Get("id").(int64))
		case cdc.Update:
			if ev.Before.Get("id") != ev.After.Get("id") && s.violation == nil {
				s.violation = fmt.Errorf("key change %v -> %v reached the sink unsplit", ev.Before.Get("id"), ev.After.Get("id"))
			}
			fallthrough
		default:
			s.state[ev.After.Get("id").(int64)] = ev.After.Get("seq").(int64)
		}
	}
	return nil
}

func (s *stateSink) Close(context.Context) error { return nil }

// TestKeyChangesKeepPerKeyOrder: updates that move rows between keys,
// mixed with plain ones over few keys and many workers, end in the state
// of applying them one by one: each half of a split goes in its key's
// order.
func TestKeyChangesKeepPerKeyOrder(t *testing.T) {
	const keys = 40
	want := map[int64]int64{}
	var batches [][]cdc.Event
	seq := int64(0)
	for range 100 {
		var evs []cdc.Event
		for range 200 {
			seq++
			id := rand.Int64N(keys)
			ev := cdc.Event{DB: "shop", Table: "users", Op: cdc.Update, PK: []string{"id"},
				Before: cdc.RowOf("id", id), After: cdc.RowOf("id", id, "seq", seq), Pos: cdc.Position{Text: fmt.Sprint(seq)}}
			if rand.IntN(4) == 0 {
				to := rand.Int64N(keys)
				ev.After = cdc.RowOf("id", to, "seq", seq)
				delete(want, id)
				id = to
			}
			want[id] = seq
			evs = append(evs, ev)
		}
		batches = append(batches, evs)
	}
	src := newSliceSource(batches)
	sink := &stateSink{state: map[int64]int64{}}
	run(t, src, sink, &deadletter.Memory{}, Options{Workers: 8, MaxInFlight: 4})
	if sink.violation != nil {
		t.Fatal(sink.violation)
	}
	if !maps.Equal(sink.state, want) {
		t.Fatalf("state after the stream:\n got  %v\n want %v", sink.state, want)
	}
}

// TestFilterAndCountByRuns: filter asks once per run of one table's
// events and keeps exactly the wanted ones in order; countEvents counts
// interleaved tables and ops right.
func TestFilterAndCountByRuns(t *testing.T) {
	var evs []cdc.Event
	for i, tb := range []string{"a", "a", "b", "a", "c", "c", "c", "b", "b", "a"} {
		op := cdc.Insert
		if i%3 == 0 {
			op = cdc.Update
		}
		evs = append(evs, cdc.Event{DB: "d", Table: tb, Op: op, After: cdc.RowOf("i", int64(i))})
	}
	asked := 0
	got := filter(evs, func(db, table string) bool { asked++; return db == "d" && table != "b" })
	var order []int64
	for _, ev := range got {
		order = append(order, ev.After.Get("i").(int64))
	}
	if fmt.Sprint(order) != "[0 1 3 4 5 6 9]" || asked > 2*6 {
		t.Fatalf("filter kept %v asking %d times, want [0 1 3 4 5 6 9] asking at most 12 (twice per run)", order, asked)
	}
	if all := filter(evs, func(string, string) bool { return true }); &all[0] != &evs[0] {
		t.Fatalf("filter copied a slice it keeps whole")
	}
	m := metrics.New()
	p := &Pipeline{opts: Options{Name: "x", Metrics: m}}
	p.countEvents(evs)
	p.countEvents(evs[:4])
	counts := map[string]float64{}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "rowsync_events_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			var key string
			for _, l := range s.GetLabel() {
				if l.GetName() != "pipeline" {
					key += l.GetValue() + " "
				}
			}
			counts[key] += s.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"insert d.a ": 2, "update d.a ": 5, "insert d.b ": 4, "insert d.c ": 2, "update d.c ": 1}
	if !maps.Equal(counts, want) {
		t.Fatalf("rowsync_events_total = %v, want %v", counts, want)
	}
}

// TestShard checks that an event's shard depends on its (db, table,
// primary key) alone, not on the events hashed before it (the read loop
// keeps the last table's hash), and that keys spread evenly.
func TestShard(t *testing.T) {
	p, err := New(newSliceSource(nil), []Route{{Name: "s", Sink: &countSink{}}}, Options{DeadLetter: &deadletter.Memory{}})
	if err != nil {
		t.Fatal(err)
	}
	const shards, keys = 4, 20000
	ev := func(db, table string, key cdc.Value) *cdc.Event {
		return &cdc.Event{DB: db, Table: table, Op: cdc.Insert, PK: []string{"k"}, After: cdc.RowOf("k", key)}
	}
	for _, tc := range []struct {
		name string
		key  func(i int) cdc.Value
	}{
		{"int keys", func(i int) cdc.Value { return int64(i) }},
		{"string keys", func(i int) cdc.Value { return fmt.Sprintf("user-%d", i) }},
		{"uint keys", func(i int) cdc.Value { return uint64(i) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			counts := make([]int, shards)
			alone := make([]int, keys)
			for i := range keys {
				p.shardTable = tableHash{} // as if first in its batch
				alone[i] = p.shard(ev("shop", "items", tc.key(i)), shards)
				counts[alone[i]]++
			}
			for i, n := range counts {
				if n < keys/shards*9/10 || n > keys/shards*11/10 {
					t.Errorf("shard %d has %d of %d keys: %v", i, n, keys, counts)
				}
			}
			// Interleaved with other tables (and one of the same name in
			// another db, and the empty names), every key keeps its shard.
			for i := range keys {
				p.shard(ev("shop", "orders", tc.key(i)), shards)
				p.shard(ev("", "", tc.key(i)), shards)
				p.shard(ev("shop2", "items", tc.key(i)), shards)
				if got := p.shard(ev("shop", "items", tc.key(i)), shards); got != alone[i] {
					t.Fatalf("key %v: shard %d after other tables, %d alone", tc.key(i), got, alone[i])
				}
			}
		})
	}
	// Multi-column keys: the column order and each column matter.
	two := func(a, b cdc.Value) *cdc.Event {
		return &cdc.Event{DB: "d", Table: "t", PK: []string{"a", "b"}, After: cdc.RowOf("a", a, "b", b)}
	}
	counts := make([]int, shards)
	for i := range keys {
		counts[p.shard(two(int64(i%100), int64(i/100)), shards)]++
	}
	for i, n := range counts {
		if n < keys/shards*9/10 || n > keys/shards*11/10 {
			t.Errorf("two-column keys: shard %d has %d of %d: %v", i, n, keys, counts)
		}
	}
}

// The in-flight gauge reads 0 once every batch is acked: the read loop and
// the acker move it concurrently, and neither may overwrite the other.
func TestInFlightGaugeSettles(t *testing.T) {
	m := metrics.New()
	src := newSliceSource(makeBatches(300, 20, 100))
	sink := &recordSink{lastSeq: map[string]int64{}}
	run(t, src, sink, &deadletter.Memory{}, Options{Name: "gauge", Workers: 4, MaxInFlight: 4, Metrics: m})
	var got dto.Metric
	if err := m.InFlight.WithLabelValues("gauge").Write(&got); err != nil || got.GetGauge().GetValue() != 0 {
		t.Fatalf("rowsync_pipeline_inflight_batches = %v (%v) after every batch was acked, want 0", got.GetGauge().GetValue(), err)
	}
}

// blockedSink holds every Apply until its context ends.
type blockedSink struct{ entered chan struct{} }

func (s *blockedSink) Apply(ctx context.Context, _ []cdc.Event) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}
func (s *blockedSink) Close(context.Context) error { return nil }

// Batches given up at shutdown (nacked) leave the in-flight gauge too.
func TestInFlightGaugeAfterGivingUp(t *testing.T) {
	m := metrics.New()
	src := newSliceSource(makeBatches(20, 10, 10))
	sink := &blockedSink{entered: make(chan struct{}, 1)}
	cancel, done := start(t, src, sink, Options{Name: "gaveup", Workers: 2, MaxInFlight: 4,
		ShutdownGrace: 10 * time.Millisecond, DeadLetter: &deadletter.Memory{}, Metrics: m})
	defer cancel()
	select {
	case <-sink.entered:
	case <-time.After(3 * time.Minute):
		t.Fatal("no Apply call")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("Run did not return after cancel")
	}
	var got dto.Metric
	if err := m.InFlight.WithLabelValues("gaveup").Write(&got); err != nil || got.GetGauge().GetValue() != 0 {
		t.Fatalf("rowsync_pipeline_inflight_batches = %v (%v) after Run returned, want 0", got.GetGauge().GetValue(), err)
	}
}
