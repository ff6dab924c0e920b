package backfill

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/rowsync/rowsync/cdc"
)

// Source wraps the pipeline's stream and puts backfill chunks into it,
// each between two stream batches at the point the DBLog algorithm needs:
//
//  1. Record (before the chunk is read): from now on the keys of the
//     table's events that Next hands out are recorded with their version.
//  2. The chunk is read between its low (L) and high (H) watermark.
//  3. Emit: for a stream that says how far it has delivered
//     (cdc.Batch.Through, the binlog source), the chunk waits until a
//     batch with Through >= H has been handed out, so every change logged
//     before the chunk's high watermark is in the stream ahead of it. Its
//     rows whose key was recorded with a version above L (or with no
//     version) are dropped: the log has a newer image of them, which wins.
//     A stream without Through (Kafka, RabbitMQ) gets the chunk at once,
//     with every key recorded since the read began dropped.
//
// The rest enter the stream as one batch of Insert events (Read true,
// Pos.Version L, so a version-guarded sink orders them against the log)
// behind every batch handed out before, so per-key order holds in the
// pipeline. The stream is read by a goroutine of its own (one batch ahead),
// so a chunk never waits for a quiet stream's next batch. That batch waits
// in the goroutine's send, not in a buffer: a buffered one held a second
// batch ahead, a fifth of a binlog drain's peak live heap (46 -> 37 MiB).
//
// Next, Close: one goroutine each, as cdc.Source says; Record and Emit
// from the backfill's goroutine.
type Source struct {
	inner   cdc.Source
	through bool
	still   *still // the stream of NewStill; nil for a real one

	startOnce sync.Once
	pumpCtx   context.Context
	stop      context.CancelFunc
	pumped    chan cdc.Batch
	pumpDone  chan struct{}
	pumpErr   error // set before pumped closes
	wake      chan struct{}

	mu        sync.Mutex
	delivered uint64 // highest Through handed out
	// recs are the recordings under way, oldest first: one per chunk
	// being read or waiting for its turn. The first len(queue) of them
	// belong to the queued chunks, in order; the rest to chunks still
	// being read.
	recs  []*recording
	queue []*emission // chunks waiting for their turn, oldest first
}

var _ cdc.Source = (*Source)(nil)

// recording is the keys of one table seen in the stream since a chunk
// read began, each with the highest version seen (MaxUint64: an event
// without a version).
type recording struct {
	db, table string
	key       func(*cdc.Row) (string, bool)
	keys      map[string]uint64
}

// emission is a chunk waiting for its turn in the stream.
type emission struct {
	Emit
	rec     *recording
	done    chan error    // the verdict, buffered
	handed  chan struct{} // closed once Next handed the chunk out
	dropped int
}

// Sent is a chunk queued by Send.
type Sent struct{ em *emission }

// Handed is closed once Next has handed the chunk to the pipeline.
func (p *Sent) Handed() <-chan struct{} { return p.em.handed }

// Dropped is the number of rows (and missing keys) left out because the
// log changed their key; final once Handed is closed.
func (p *Sent) Dropped() int { return p.em.dropped }

// Acked receives the pipeline's verdict once the chunk was handed out:
// nil once it is applied, the nack's error if it will not be.
func (p *Sent) Acked() <-chan error { return p.em.done }

// Emit is a chunk ready to enter the stream.
type Emit struct {
	DB, Table string
	PK        []string
	Columns   []cdc.Column
	Chunk     Chunk
	// Text is the events' Pos.Text ("backfill shop.orders chunk 12 @ ...").
	Text string
}

// NewSource wraps inner. through says inner's batches carry
// cdc.Batch.Through (the binlog source); the chunks then wait for it.
func NewSource(inner cdc.Source, through bool) *Source {
	ctx, stop := context.WithCancel(context.Background())
	return &Source{inner: inner, through: through, pumpCtx: ctx, stop: stop,
		pumped: make(chan cdc.Batch), pumpDone: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// NewStill returns a Source with no stream in it, for a pipeline that is
// not running (`rowsync snapshot`): it has no changes, so each chunk goes
// out at once, nothing is dropped, and its events carry no version (0);
// a table without a primary key may be read in one full scan and chunks
// are plain consistent reads (the Engine sees Still). Finish ends it.
func NewStill() *Source {
	st := &still{end: make(chan struct{})}
	s := NewSource(st, false)
	s.still = st
	return s
}

// Still reports a Source made by NewStill: no stream runs beside the
// backfills.
func (s *Source) Still() bool { return s.still != nil }

// Finish ends a Still source: once every chunk is handed out, Next
// returns cdc.ErrEndOfStream, so the pipeline applies and acks what it
// holds and returns. No-op on a Source over a real stream.
func (s *Source) Finish() {
	if s.still != nil {
		s.still.once.Do(func() { close(s.still.end) })
	}
}

// still is the empty stream under NewStill.
type still struct {
	once sync.Once
	end  chan struct{}
}

func (st *still) Next(ctx context.Context) (cdc.Batch, error) {
	select {
	case <-st.end:
		return cdc.Batch{}, cdc.ErrEndOfStream
	case <-ctx.Done():
		return cdc.Batch{}, ctx.Err()
	}
}

func (*still) Close(context.Context) error { return nil }

// Inner returns the wrapped stream.
func (s *Source) Inner() cdc.Source { return s.inner }

// Through reports whether chunks wait for the stream's Through.
func (s *Source) Through() bool { return s.through }

func (s *Source) pump() {
	defer close(s.pumpDone)
	defer close(s.pumped)
	for {
		b, err := s.inner.Next(s.pumpCtx)
		if err != nil {
			s.pumpErr = err
			return
		}
		select {
		case s.pumped <- b:
		case <-s.pumpCtx.Done():
			// never handed out: its changes are read again after a restart
			s.pumpErr = s.pumpCtx.Err()
			return
		}
	}
}

// Next returns the stream's next batch, or a chunk whose turn has come.
func (s *Source) Next(ctx context.Context) (cdc.Batch, error) {
	s.startOnce.Do(func() { go s.pump() })
	for {
		if b, ok := s.ready(); ok {
			return b, nil
		}
		select {
		case b, ok := <-s.pumped:
			if !ok {
				return cdc.Batch{}, s.pumpErr
			}
			s.deliver(&b)
			return b, nil
		case <-s.wake:
		case <-ctx.Done():
			return cdc.Batch{}, ctx.Err()
		}
	}
}

// deliver records b's keys and its Through as handed out.
func (s *Source) deliver(b *cdc.Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.Through > s.delivered {
		s.delivered = b.Through
	}
	if len(s.recs) == 0 {
		return
	}
	for i := range b.Events {
		ev := &b.Events[i]
		v := ev.Pos.Version
		if v == 0 {
			v = math.MaxUint64
		}
		for _, row := range [2]*cdc.Row{ev.Before, ev.After} {
			if row == nil {
				continue
			}
			// Recordings of one table share its key function (the
			// engine reads one table at a time): the key is computed
			// once per row.
			var k string
			var keyed *recording
			for _, rec := range s.recs {
				if rec == nil || ev.DB != rec.db || ev.Table != rec.table {
					continue
				}
				if keyed == nil || keyed.db != rec.db || keyed.table != rec.table {
					var ok bool
					if k, ok = rec.key(row); !ok {
						continue
					}
					keyed = rec
				}
				if v > rec.keys[k] {
					rec.keys[k] = v
				}
			}
		}
	}
}

// Record starts recording the keys of db.table's events Next hands out,
// as key names them (refetch's canonical key text), for the next chunk:
// call it before the chunk's read begins, then Send the chunk. Several
// chunks may be recorded, read and queued at once; each Send takes the
// oldest recording not yet sent.
func (s *Source) Record(db, table string, key func(*cdc.Row) (string, bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, &recording{db: db, table: table, key: key, keys: map[string]uint64{}})
}

// Emit is Send, then waiting for the chunk to be handed out and for the
// pipeline's verdict: nil once it is applied (acked), the nack's error if
// it will not be. If ctx ends before the chunk is handed out, the chunks
// still queued are withdrawn and ctx's error returned.
func (s *Source) Emit(ctx context.Context, e Emit) (dropped int, err error) {
	p, err := s.Send(e)
	if err != nil {
		return 0, err
	}
	select {
	case <-p.Handed():
	case <-ctx.Done():
		s.Withdraw()
		select {
		case <-p.Handed(): // handed out meanwhile: the pipeline settles it
		default:
			return 0, ctx.Err()
		}
	}
	return p.Dropped(), <-p.Acked()
}

// Send queues the chunk behind the chunks already queued, with the oldest
// recording not yet sent, and returns at once. The chunks go out in the
// order they were sent, each once the stream has delivered through its
// high watermark. Withdraw takes back what is still queued.
func (s *Source) Send(e Emit) (*Sent, error) {
	if s.through && e.Chunk.High.Version() == 0 {
		return nil, fmt.Errorf("backfill %s.%s: the server gave no binlog position to order the chunk with the stream: %w", e.DB, e.Table, cdc.ErrPermanent)
	}
	em := &emission{Emit: e, done: make(chan error, 1), handed: make(chan struct{})}
	s.mu.Lock()
	if n := len(s.queue); n < len(s.recs) {
		em.rec = s.recs[n]
	} else {
		// sent without Record: nothing was recorded, nothing is dropped;
		// keep recs and queue paired
		s.recs = append(s.recs, nil)
	}
	s.queue = append(s.queue, em)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return &Sent{em: em}, nil
}

// Withdraw takes back the chunks queued and not yet handed out and ends
// every recording: the backfill stops, or reads again from its last
// applied chunk. Chunks already handed out are the pipeline's to settle.
func (s *Source) Withdraw() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue, s.recs = nil, nil
}

// ready returns the oldest queued chunk's batch once the stream has
// delivered everything up to its high watermark.
func (s *Source) ready() (cdc.Batch, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return cdc.Batch{}, false
	}
	em := s.queue[0]
	if s.through && s.delivered < em.Chunk.High.Version() {
		return cdc.Batch{}, false
	}
	s.queue[0], s.recs[0] = nil, nil
	s.queue, s.recs = s.queue[1:], s.recs[1:]
	rec := em.rec
	low := em.Chunk.Low.Version()
	drop := func(row *cdc.Row) bool {
		if rec == nil || len(rec.keys) == 0 {
			return false // nothing recorded: no key to compute per row
		}
		k, ok := rec.key(row)
		if !ok {
			return false
		}
		v, seen := rec.keys[k]
		// without Through every key seen since the read began goes: its
		// event may be newer than the chunk however its version compares
		return seen && (!s.through || v > low)
	}
	pos := cdc.Position{Version: low, Text: em.Text}
	if s.still != nil {
		// no stream to order against, and the rows may come from another
		// server than the log's (a replica): version 0, which
		// version-guarded sinks take; the log streamed after the snapshot
		// (from the checkpoint pinned before it) brings every later change
		pos.Version = 0
	}
	b := cdc.Batch{Events: make([]cdc.Event, 0, len(em.Chunk.Rows)+len(em.Chunk.Missing))}
	add := func(op cdc.Op, rows []*cdc.Row) {
		for _, row := range rows {
			if drop(row) {
				em.dropped++
				continue
			}
			ev := cdc.Event{DB: em.DB, Table: em.Table, Op: op, PK: em.PK, Columns: em.Columns, Pos: pos, Read: true}
			if op == cdc.Delete {
				ev.Before = row // a listed key gone from MySQL: the sinks drop it too
			} else {
				ev.After = row
			}
			b.Events = append(b.Events, ev)
		}
	}
	add(cdc.Insert, em.Chunk.Rows)
	add(cdc.Delete, em.Chunk.Missing)
	for _, br := range em.Chunk.Bad {
		b.Rejects = append(b.Rejects, cdc.Reject{Pos: pos, Raw: []byte(br.Key), Reason: br.Err})
	}
	var once atomic.Bool
	b.Ack = func(_ context.Context, err error) error {
		if !once.CompareAndSwap(false, true) {
			return errors.New("backfill chunk acked twice")
		}
		if err != nil {
			err = fmt.Errorf("backfill chunk not applied: %w", err)
		}
		em.done <- err
		return nil
	}
	close(em.handed)
	return b, true
}

// Close stops reading the stream and closes it. It acks nothing.
func (s *Source) Close(ctx context.Context) error {
	s.stop()
	s.startOnce.Do(func() { close(s.pumpDone) }) // never started
	select {
	case <-s.pumpDone:
	case <-ctx.Done():
	}
	return s.inner.Close(ctx)
}
