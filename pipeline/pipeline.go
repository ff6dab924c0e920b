// Package pipeline moves changes from one source to its sinks: it shards
// events by (db, table, primary key) over workers so one row's changes
// apply in source order while different rows go in parallel, merges queued
// work into large Apply calls, optionally re-reads rows from MySQL,
// retries transient sink errors with capped backoff and jitter, sends
// permanent failures and undecodable messages to the dead letter, and only
// then acks the source, batch by batch in source order. The acked position
// is the checkpoint, so a crash anywhere loses nothing.
package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/deadletter"
	"github.com/rowsync/rowsync/internal/backoff"
	"github.com/rowsync/rowsync/metrics"
)

// Route is a named sink. Name labels metrics, logs and dead letters.
type Route struct {
	Name string
	Sink cdc.Sink
	// Wants, when set, selects the tables whose changes go to Sink (the
	// table router's answer); a sink that is a cdc.Filter is asked too.
	Wants func(db, table string) bool
}

// Refetcher re-reads rows from MySQL by primary key. It returns one event
// per distinct key with the current row (a Delete when the row is gone).
// A *cdc.BatchError names input events that can never be re-read; any
// other error is transient and the call is retried.
type Refetcher interface {
	Refetch(ctx context.Context, events []cdc.Event) ([]cdc.Event, error)
}

// Options tune a Pipeline. The zero value of each field means its default.
type Options struct {
	// Name labels metrics and dead letters.
	Name string
	// Workers is the number of shards applying in parallel. Default: GOMAXPROCS.
	Workers int
	// MaxInFlight bounds the batches taken from the source and not yet
	// acked; with the source's batch size it bounds memory. Default: 8.
	MaxInFlight int
	// MaxInFlightBytes bounds the estimated memory of the events taken
	// from the source and not yet acked, so a backlog of wide rows cannot
	// push memory up the way MaxInFlight batches of small ones would not.
	// The estimate counts value and column-name bytes plus a fixed
	// overhead per event and per value. A batch is always taken when
	// nothing else is in flight, so one batch above the bound still flows.
	// Default: 8 MiB: two batches of 4096 ten-column rows, enough to keep
	// the workers busy on a drain, sized with the sources' read-ahead for
	// a peak RSS near 100 MiB (32 MiB, four times the events plus the
	// sink's work on them, peaked near 300 MiB with Go's default GC).
	MaxInFlightBytes int64
	// MaxApply caps the events merged into one Apply call. Default: 8192.
	MaxApply int
	// RetryMin and RetryMax bound the backoff between retries of a
	// transient error. Default: 50ms and 10s.
	RetryMin, RetryMax time.Duration
	// StuckAfter is how long work may wait without any ack before Ready
	// reports the pipeline stuck. Default: 60s.
	StuckAfter time.Duration
	// ShutdownGrace is how long in-flight work may take to finish after the
	// run context ends. Default: 30s.
	ShutdownGrace time.Duration
	// KeyColumns gives the configured primary key of a table, used for
	// events whose source does not name one. May be nil.
	KeyColumns func(db, table string) []string
	// Refetch, with RefetchTable, re-reads rows of the tables it selects.
	Refetch      Refetcher
	RefetchTable func(db, table string) bool
	// MatchTable reports whether a table rule matches db.table: only such
	// tables get their own table label in rowsync_events_total, so table
	// names a message invents cannot create series. nil: every table.
	// Either way at most MaxTableLabels tables are labelled; the others
	// count under table="_other".
	MatchTable func(db, table string) bool
	// DeadLetter receives what cannot be applied. Required.
	DeadLetter deadletter.Writer
	// RenderEvent renders an event for the dead letter. May be nil.
	RenderEvent func(cdc.Event) ([]byte, error)
	Metrics     *metrics.Metrics
	Logger      *slog.Logger
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 8
	}
	if o.MaxInFlightBytes <= 0 {
		o.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if o.MaxApply <= 0 {
		o.MaxApply = 8192
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 50 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 10 * time.Second
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = 60 * time.Second
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
}

// DefaultMaxInFlightBytes is Options.MaxInFlightBytes's default.
const DefaultMaxInFlightBytes = 8 << 20

// Pipeline runs one source into its routes.
type Pipeline struct {
	src    cdc.Source
	routes []Route
	opts   Options
	log    *slog.Logger
	seed   maphash.Seed
	// shardTable is the read loop's memo of the last table shard hashed.
	shardTable tableHash

	inFlight     atomic.Int64
	lastProgress atomic.Int64 // unix nanos of the last ack, or of work arriving when idle
	applied      atomic.Int64 // events acked, for tests and logs

	labelMu  sync.Mutex
	labels   map[string]string // db.table -> its rowsync_events_total label
	labelled int               // distinct tables with their own label

	errMu   sync.Mutex
	lastErr string
	stuck   atomic.Bool

	// bytesMu guards inFlightBytes, the estimated size of the batches
	// between source and ack; released pokes the read loop waiting for room.
	bytesMu       sync.Mutex
	inFlightBytes int64
	released      chan struct{}

	// orphan is a batch read from the source that never reached the
	// acker (work ended first); Run nacks it after the acker is done, so
	// it is settled after every earlier batch. Only the read loop sets it.
	orphan *cdc.Batch
}

// New builds a pipeline. It does not start anything.
func New(src cdc.Source, routes []Route, opts Options) (*Pipeline, error) {
	if src == nil {
		return nil, errors.New("pipeline: nil source")
	}
	if len(routes) == 0 {
		return nil, errors.New("pipeline: no sinks configured")
	}
	if opts.DeadLetter == nil {
		return nil, errors.New("pipeline: no dead letter")
	}
	if opts.Refetch != nil && opts.RefetchTable == nil {
		opts.RefetchTable = func(string, string) bool { return true }
	}
	opts.defaults()
	p := &Pipeline{src: src, routes: routes, opts: opts, seed: maphash.MakeSeed(),
		log: opts.Logger.With("pipeline", opts.Name), released: make(chan struct{}, 1)}
	p.lastProgress.Store(time.Now().UnixNano())
	return p, nil
}

// Applied returns how many events have been applied and acked.
func (p *Pipeline) Applied() int64 { return p.applied.Load() }

// Ready returns nil when the pipeline makes progress, else why not: work
// has waited StuckAfter without an ack (typically a sink that stays down).
func (p *Pipeline) Ready() error {
	if p.inFlight.Load() == 0 {
		p.stuck.Store(false)
		return nil
	}
	idle := time.Since(time.Unix(0, p.lastProgress.Load()))
	if idle < p.opts.StuckAfter {
		p.stuck.Store(false)
		return nil
	}
	p.errMu.Lock()
	last := p.lastErr
	p.errMu.Unlock()
	err := fmt.Errorf("pipeline %s stuck: no progress for %s with %d batch(es) waiting; last error: %s",
		p.opts.Name, idle.Round(time.Second), p.inFlight.Load(), last)
	if !p.stuck.Swap(true) {
		p.log.Error("pipeline stuck", "idle", idle.Round(time.Second), "waiting_batches", p.inFlight.Load(), "last_error", last)
	}
	return err
}

type batchState struct {
	batch   cdc.Batch
	pending atomic.Int32
	done    chan struct{}
	events  int
	bytes   int64     // estimated size, counted in inFlightBytes
	commit  time.Time // newest commit time among its events
	// split holds the halves of the batch's key changes (splitKeyChange),
	// which tasks name by negative index.
	split []cdc.Event
}

func (b *batchState) finish() {
	if b.pending.Add(-1) == 0 {
		close(b.done)
	}
}

type task struct {
	batch *batchState
	// at lists the task's events in order: i >= 0 is batch.Events[i],
	// i < 0 is split[-i-1], a half of a key change.
	at []int32
}

// appendEvents appends t's events to dst.
func (t *task) appendEvents(dst []cdc.Event) []cdc.Event {
	evs, split := t.batch.batch.Events, t.batch.split
	for _, i := range t.at {
		if i >= 0 {
			dst = append(dst, evs[i])
		} else {
			dst = append(dst, split[-i-1])
		}
	}
	return dst
}

// Run reads the source until ctx ends, the source reports
// cdc.ErrEndOfStream, or a fatal error. When ctx ends it stops reading,
// lets in-flight batches finish and ack, and returns nil; if that takes
// longer than ShutdownGrace it gives up and returns an error saying so.
// Unacked work is redelivered on restart. At the end of a
// finite source it applies and acks every batch already read (retrying
// transient errors for as long as ctx lasts) and returns nil once the last
// one is acked.
func (p *Pipeline) Run(ctx context.Context) error {
	work, cancelWork := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelWork(nil)
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.opts.ShutdownGrace, func() {
			cancelWork(errors.New("shutdown grace period expired"))
		})
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stopGrace()

	shards := make([]chan task, p.opts.Workers)
	for i := range shards {
		// one task per shard per batch, and at most MaxInFlight batches
		shards[i] = make(chan task, p.opts.MaxInFlight)
	}
	acks := make(chan *batchState, p.opts.MaxInFlight)

	var wg sync.WaitGroup
	for i := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.worker(work, shards[i])
		}()
	}
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		p.acker(work, cancelWork, acks)
	}()

	// Reading stops on ctx (shutdown) and on a fatal error in work.
	readCtx, cancelRead := context.WithCancel(ctx)
	defer cancelRead()
	stopRead := context.AfterFunc(work, cancelRead)
	defer stopRead()
	readErr := p.read(readCtx, work, shards, acks)
	for _, ch := range shards {
		close(ch)
	}
	close(acks)
	<-ackDone
	if p.orphan != nil {
		cause := readErr
		if cause == nil {
			cause = context.Cause(work)
		}
		p.nack(*p.orphan, cause)
	}
	if readErr == nil && ctx.Err() == nil {
		readErr = context.Cause(work)
	}
	cancelWork(nil) // the acker is done; release workers still retrying
	wg.Wait()
	if readErr != nil {
		return readErr
	}
	if c := context.Cause(work); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return nil
}

// read takes batches from the source and dispatches them to shards.
func (p *Pipeline) read(ctx, work context.Context, shards []chan task, acks chan<- *batchState) error {
	for {
		if ctx.Err() != nil || work.Err() != nil {
			return nil
		}
		b, err := p.src.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || work.Err() != nil {
				return nil
			}
			if errors.Is(err, cdc.ErrEndOfStream) {
				// Returning nil closes the shards: workers finish what is
				// queued and the acker acks it all before Run returns.
				p.log.Info("source finished; draining in-flight batches", "waiting_batches", p.inFlight.Load())
				return nil
			}
			return fmt.Errorf("source: %w", err)
		}
		if err := p.dispatch(work, b, shards, acks); err != nil {
			return err
		}
	}
}

func (p *Pipeline) dispatch(work context.Context, b cdc.Batch, shards []chan task, acks chan<- *batchState) error {
	if len(b.Rejects) > 0 {
		recs := make([]deadletter.Record, len(b.Rejects))
		for i, r := range b.Rejects {
			recs[i] = deadletter.Record{Time: time.Now().UTC(), Pipeline: p.opts.Name, Stage: "decode",
				Reason: r.Reason.Error(), Pos: r.Pos.Text, Raw: r.Raw}
			p.log.Warn("undecodable message sent to dead letter", "pos", r.Pos.Text, "reason", r.Reason)
		}
		if err := p.writeDeadLetters(work, recs); err != nil {
			p.orphan = &b
			return err
		}
	}
	bs := &batchState{batch: b, done: make(chan struct{}), events: len(b.Events), bytes: batchBytes(b.Events)}
	// A shard's task lists its events by index (see task.at): copying the
	// events themselves per shard, 176 bytes each into new memory, was
	// most of the dispatch's CPU and doubled the events' memory in flight.
	// Each shard's list is sized for its expected share at its first event
	// (keys hash evenly; 1/8 headroom and a few more), so it is not regrown.
	perShard := make([][]int32, len(shards))
	shareCap := len(b.Events)/len(shards) + len(b.Events)/(8*len(shards)) + 16
	put := func(s int, i int32) {
		if perShard[s] == nil {
			perShard[s] = make([]int32, 0, shareCap)
		}
		perShard[s] = append(perShard[s], i)
	}
	for i := range b.Events {
		ev := &b.Events[i]
		if len(ev.PK) == 0 && p.opts.KeyColumns != nil {
			ev.PK = p.opts.KeyColumns(ev.DB, ev.Table)
		}
		if ev.Commit.After(bs.commit) {
			bs.commit = ev.Commit
		}
		if keyChanged(ev) {
			// The two halves are different keys: each goes to its own shard
			// so it stays ordered with that key's other changes.
			old, nw, _ := splitKeyChange(*ev)
			bs.split = append(bs.split, old, nw)
			n := int32(len(bs.split))
			put(p.shard(&old, len(shards)), -n+1)
			put(p.shard(&nw, len(shards)), -n)
			continue
		}
		put(p.shard(ev, len(shards)), int32(i))
	}
	n := int32(0)
	for _, at := range perShard {
		if len(at) > 0 {
			n++
		}
	}
	bs.pending.Store(n + 1) // +1 released below, once every task is queued
	if !p.acquire(work, bs.bytes) {
		p.orphan = &b
		return nil
	}
	if p.addInFlight(1) == 1 {
		p.lastProgress.Store(time.Now().UnixNano())
	}
	select { // the window: blocks while MaxInFlight batches are unacked
	case acks <- bs:
	case <-work.Done():
		p.addInFlight(-1)
		p.release(bs.bytes)
		p.orphan = &b
		return nil
	}
	for s, at := range perShard {
		if len(at) == 0 {
			continue
		}
		select {
		case shards[s] <- task{batch: bs, at: at}:
		case <-work.Done():
			return nil
		}
	}
	bs.finish()
	return nil
}

// acquire waits until bs's bytes fit beside those in flight (or nothing
// is in flight) and counts them; false if work ended first. Only the read
// loop calls it.
func (p *Pipeline) acquire(work context.Context, n int64) bool {
	for {
		p.bytesMu.Lock()
		if p.inFlightBytes == 0 || p.inFlightBytes+n <= p.opts.MaxInFlightBytes {
			p.inFlightBytes += n
			p.bytesMu.Unlock()
			return true
		}
		p.bytesMu.Unlock()
		select {
		case <-p.released:
		case <-work.Done():
			return false
		}
	}
}

// addInFlight counts d batches into or out of the window and moves the
// gauge by the same step: setting it from a separate read let the read
// loop overwrite a lower count the acker had just set, and the gauge stayed
// high once the pipeline went idle.
func (p *Pipeline) addInFlight(d int64) int64 {
	p.opts.Metrics.InFlight.WithLabelValues(p.opts.Name).Add(float64(d))
	return p.inFlight.Add(d)
}

// release returns n bytes and wakes the read loop if it waits for room.
func (p *Pipeline) release(n int64) {
	p.bytesMu.Lock()
	p.inFlightBytes -= n
	p.bytesMu.Unlock()
	select {
	case p.released <- struct{}{}:
	default:
	}
}

// Per-event and per-value overheads of the size estimate: the Event
// struct with its slices, and a map entry with its key and interface.
const eventOverhead, valueOverhead = 256, 48

// batchBytes estimates the memory events hold. Rows of one table and
// operation are alike, so it sizes the first event of each run of them
// (a run ends where the table or the operation changes) and every 64th
// within a run, and counts each sized event for the ones it stands for:
// the estimate bounds memory, it need not be exact, and sizing an event
// (iterating its rows) stays off the per-row CPU budget. Sizing every
// eighth event, regardless of runs, was 4% of a binlog drain's CPU and
// could miss a table of wide rows interleaved with a table of narrow ones.
func batchBytes(events []cdc.Event) int64 {
	const every = 64
	var n, size int64
	sized := 0
	for i := range events {
		ev := &events[i]
		if i == 0 || i-sized >= every || !sameRun(ev, &events[sized]) {
			size, sized = eventBytes(ev), i
		}
		n += size
	}
	return n
}

// sameRun reports whether a and b are of the same table and operation.
func sameRun(a, b *cdc.Event) bool {
	return a.Op == b.Op && a.Table == b.Table && a.DB == b.DB
}

func eventBytes(ev *cdc.Event) int64 {
	n := int64(eventOverhead + len(ev.DB) + len(ev.Table) + len(ev.Pos.Text))
	for _, row := range [2]*cdc.Row{ev.Before, ev.After} {
		for k, v := range row.All() {
			n += valueOverhead + int64(len(k))
			switch v := v.(type) {
			case string:
				n += int64(len(v))
			case []byte:
				n += int64(len(v))
			case cdc.Decimal:
				n += int64(len(v))
			case cdc.JSON:
				n += int64(len(v))
			}
		}
	}
	return n
}

// splitKeyChange turns an update that changes the primary key into a
// delete of the old row and an insert of the new one.
func splitKeyChange(ev cdc.Event) (cdc.Event, cdc.Event, bool) {
	if !keyChanged(&ev) {
		return ev, ev, false
	}
	old, nw := ev, ev
	old.Op, old.After = cdc.Delete, nil
	nw.Op, nw.Before = cdc.Insert, nil
	return old, nw, true
}

// keyChanged reports whether ev is an update that changes the primary key.
func keyChanged(ev *cdc.Event) bool {
	if ev.Op != cdc.Update || ev.Before == nil || ev.After == nil || len(ev.PK) == 0 {
		return false
	}
	var ab, bb [32]byte // the key's text, without a string per value
	for _, c := range ev.PK {
		va, vb := ev.Before.Get(c), ev.After.Get(c)
		// The common key types compare as themselves: equal values are one
		// key. Unequal ones are compared by text, which also finds 5 and
		// "5" one key; a key that really changed is rare.
		switch va.(type) {
		case int64, uint64, string:
			if va == vb {
				continue
			}
		}
		a, _ := cdc.AppendText(ab[:0], nil, va)
		b, _ := cdc.AppendText(bb[:0], nil, vb)
		if !bytes.Equal(a, b) {
			return true
		}
	}
	return false
}

// shard picks the worker for an event's (db, table, primary key). Only
// the read loop calls it: it keeps the hash of the last event's table, as
// neighbouring events mostly share one, and mixes each key value into it
// (an integer as itself, other values by their maphash), instead of
// hashing the table's name again per event (2.5% of a Kafka drain's CPU).
func (p *Pipeline) shard(ev *cdc.Event, n int) int {
	if n == 1 {
		return 0
	}
	t := &p.shardTable
	if !t.valid || ev.Table != t.table || ev.DB != t.db {
		var h maphash.Hash
		h.SetSeed(p.seed)
		h.WriteString(ev.DB)
		h.WriteByte(0)
		h.WriteString(ev.Table)
		*t = tableHash{valid: true, db: ev.DB, table: ev.Table, sum: h.Sum64()}
	}
	sum := t.sum
	row := ev.Image()
	for _, c := range ev.PK {
		var v uint64
		switch x := row.Get(c).(type) {
		case int64:
			v = uint64(x)
		case string:
			v = maphash.String(p.seed, x)
		default:
			var buf [32]byte
			b, _ := cdc.AppendText(buf[:0], nil, x)
			v = maphash.Bytes(p.seed, b)
		}
		sum = mix64(sum ^ v)
	}
	return int(sum % uint64(n))
}

// tableHash is the seeded hash of one table's (db, table).
type tableHash struct {
	valid     bool
	db, table string
	sum       uint64
}

// mix64 is the splitmix64 finalizer: a bijection whose output bits each
// depend on every input bit, so consecutive integer keys spread evenly.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// worker applies the tasks of one shard in order, merging whatever is
// already queued into one call.
func (p *Pipeline) worker(work context.Context, ch <-chan task) {
	var tasks []task
	var events []cdc.Event // reused: sinks keep no event after Apply
	for t := range ch {
		tasks = append(tasks[:0], t)
		n := len(t.at)
	drain:
		for n < p.opts.MaxApply {
			select {
			case t2, ok := <-ch:
				if !ok {
					break drain
				}
				tasks = append(tasks, t2)
				n += len(t2.at)
			default:
				break drain
			}
		}
		events = slices.Grow(events[:0], n) // one copy, not a regrowth per task
		for i := range tasks {
			events = tasks[i].appendEvents(events)
		}
		err := p.apply(work, events)
		// Drop the rows: the batches' own slices go once they are acked.
		clear(events)
		if err != nil {
			return // work cancelled: leave the batches unacked
		}
		for _, tk := range tasks {
			tk.batch.finish()
		}
		clear(tasks)
	}
}

// acker acks batches in source order as they complete. Once work ends
// (the shutdown grace expired, or a fatal error) or an ack fails, it nacks
// every batch it still holds, in order: they will not be applied here, and
// cdc.Batch's contract has every batch settled once.
func (p *Pipeline) acker(work context.Context, fail context.CancelCauseFunc, acks <-chan *batchState) {
	var gaveUp error
	for bs := range acks {
		if gaveUp == nil {
			select {
			case <-bs.done:
			default:
				select {
				case <-bs.done:
				case <-work.Done():
					gaveUp = context.Cause(work)
				}
			}
		}
		if gaveUp != nil {
			p.nack(bs.batch, gaveUp)
			p.addInFlight(-1)
			p.release(bs.bytes)
			continue
		}
		if err := bs.batch.Ack(work, nil); err != nil {
			p.addInFlight(-1)
			p.release(bs.bytes)
			gaveUp = fmt.Errorf("ack source: %w", err)
			if work.Err() == nil {
				fail(gaveUp)
			}
			continue
		}
		now := time.Now()
		p.lastProgress.Store(now.UnixNano())
		p.applied.Add(int64(bs.events))
		p.release(bs.bytes)
		p.addInFlight(-1)
		m := p.opts.Metrics
		m.LastAck.WithLabelValues(p.opts.Name).Set(float64(now.UnixNano()) / 1e9)
		if !bs.commit.IsZero() {
			m.Lag.WithLabelValues(p.opts.Name).Set(max(0, now.Sub(bs.commit).Seconds()))
		}
	}
}

// nack tells the source that b will not be applied (cdc.Batch's contract:
// it delivers b again, in order, before anything after it, or fails).
func (p *Pipeline) nack(b cdc.Batch, cause error) {
	if cause == nil {
		cause = errors.New("pipeline stopped")
	}
	if err := b.Ack(context.Background(), fmt.Errorf("not applied: %w", cause)); err != nil {
		p.log.Warn("nack source", "err", err)
	}
}

// apply runs events through refetch and every sink, retrying transient
// errors until they pass or work is cancelled.
func (p *Pipeline) apply(work context.Context, events []cdc.Event) error {
	// rowsync_events_total counts the changes taken from the source: with
	// refetch, the changes that triggered the reads (one read serves every
	// change of its key in the call), not the rows read.
	changes := events
	if p.opts.Refetch != nil {
		var err error
		if events, err = p.refetch(work, events); err != nil {
			return err
		}
	}
	for _, r := range p.routes {
		evs := events
		if r.Wants != nil {
			evs = filter(evs, r.Wants)
		}
		if f, ok := r.Sink.(cdc.Filter); ok {
			evs = filter(evs, f.Wants)
		}
		if len(evs) == 0 {
			continue
		}
		if err := p.applySink(work, r, evs); err != nil {
			return err
		}
	}
	p.countEvents(changes)
	return nil
}

func filter(events []cdc.Event, wants func(db, table string) bool) []cdc.Event {
	// Neighbouring events mostly share a table: ask once per run of them
	// (a sink's Wants builds the table's name to look it up).
	var db, table string
	var want bool
	keeps := func(ev *cdc.Event) bool {
		if ev.DB != db || ev.Table != table || db == "" && table == "" {
			db, table, want = ev.DB, ev.Table, wants(ev.DB, ev.Table)
		}
		return want
	}
	keep := 0
	for i := range events {
		if keeps(&events[i]) {
			keep++
		}
	}
	if keep == len(events) {
		return events
	}
	out := make([]cdc.Event, 0, keep)
	for i := range events {
		if keeps(&events[i]) {
			out = append(out, events[i])
		}
	}
	return out
}

func (p *Pipeline) refetch(work context.Context, events []cdc.Event) ([]cdc.Event, error) {
	var direct, again []cdc.Event
	for _, ev := range events {
		// a row a backfill read is fresh: reading it again gains nothing
		if !ev.Read && p.opts.RefetchTable(ev.DB, ev.Table) {
			again = append(again, ev)
		} else {
			direct = append(direct, ev)
		}
	}
	if len(again) == 0 {
		return events, nil
	}
	var out []cdc.Event
	err := p.retry(work, "refetch", func() error {
		var err error
		out, err = p.opts.Refetch.Refetch(work, again)
		var be *cdc.BatchError
		if errors.As(err, &be) {
			return p.deadLetterEvents(work, "refetch", again, be)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	// Keys of different tables never collide, so appending keeps per-key order.
	return append(direct, out...), nil
}

func (p *Pipeline) applySink(work context.Context, r Route, evs []cdc.Event) error {
	return p.retry(work, r.Name, func() error {
		start := time.Now()
		err := r.Sink.Apply(work, evs)
		p.opts.Metrics.ApplyDuration.WithLabelValues(r.Name).Observe(time.Since(start).Seconds())
		var be *cdc.BatchError
		if errors.As(err, &be) {
			return p.deadLetterEvents(work, r.Name, evs, be)
		}
		return err
	})
}

// retry calls fn until it returns nil, backing off (internal/backoff)
// between attempts. It returns an error only when work is cancelled.
func (p *Pipeline) retry(work context.Context, stage string, fn func() error) error {
	policy := backoff.Policy{Min: p.opts.RetryMin, Max: p.opts.RetryMax}
	var lastLog time.Time
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			if attempt > 1 {
				p.log.Info("recovered", "sink", stage, "attempts", attempt)
			}
			return nil
		}
		if work.Err() != nil {
			return context.Cause(work)
		}
		p.opts.Metrics.Errors.WithLabelValues(stage, "transient").Inc()
		p.errMu.Lock()
		p.lastErr = stage + ": " + err.Error()
		p.errMu.Unlock()
		wait := policy.Delay(attempt)
		if time.Since(lastLog) > 10*time.Second {
			p.log.Warn("transient error, retrying", "sink", stage, "attempt", attempt, "backoff", wait, "err", err)
			lastLog = time.Now()
		}
		if !backoff.Sleep(work, wait) {
			return context.Cause(work)
		}
	}
}

func (p *Pipeline) deadLetterEvents(work context.Context, stage string, evs []cdc.Event, be *cdc.BatchError) error {
	recs := make([]deadletter.Record, 0, len(be.Failed))
	for i, ferr := range be.Failed {
		if i < 0 || i >= len(evs) {
			continue
		}
		ev := evs[i]
		rec := deadletter.Record{Time: time.Now().UTC(), Pipeline: p.opts.Name, Stage: stage,
			Reason: ferr.Error(), Pos: ev.Pos.Text, DB: ev.DB, Table: ev.Table, Op: ev.Op.String()}
		if p.opts.RenderEvent != nil {
			if b, err := p.opts.RenderEvent(ev); err == nil {
				rec.Event = b
			}
		}
		recs = append(recs, rec)
		p.log.Warn("change sent to dead letter", "sink", stage, "table", ev.DB+"."+ev.Table, "pos", ev.Pos.Text, "reason", ferr)
	}
	p.opts.Metrics.Errors.WithLabelValues(stage, "permanent").Add(float64(len(recs)))
	return p.writeDeadLetters(work, recs)
}

// writeDeadLetters retries until the records are durable: acking past a
// dead letter that was not written would lose it.
func (p *Pipeline) writeDeadLetters(work context.Context, recs []deadletter.Record) error {
	if len(recs) == 0 {
		return nil
	}
	var unwritable *deadletter.UnwritableError
	err := p.retry(work, "deadletter", func() error {
		err := p.opts.DeadLetter.Write(work, recs)
		if errors.As(err, &unwritable) {
			return nil // the others are written; retrying cannot help these
		}
		return err
	})
	if err != nil {
		return err
	}
	for i, r := range recs {
		if ferr := unwritable.Failure(i); ferr != nil {
			// Logged and counted, then acked: a retry loop here would stop
			// the stream for good on one record.
			p.opts.Metrics.Errors.WithLabelValues("deadletter", "permanent").Inc()
			p.log.Error("dead-letter record cannot be written; dropped", "stage", r.Stage, "pos", r.Pos,
				"table", r.DB+"."+r.Table, "reason", r.Reason, "err", ferr)
			continue
		}
		p.opts.Metrics.DeadLetters.WithLabelValues(r.Stage).Inc()
	}
	return nil
}

type countKey struct {
	db, table string
	op        cdc.Op
}

func (p *Pipeline) countEvents(events []cdc.Event) {
	counts := map[countKey]int{}
	// Counted by runs of neighbours alike, which a batch mostly is: one
	// map update per run, not per event.
	for i := 0; i < len(events); {
		ev := &events[i]
		j := i + 1
		for j < len(events) && events[j].Op == ev.Op && events[j].Table == ev.Table && events[j].DB == ev.DB {
			j++
		}
		counts[countKey{ev.DB, ev.Table, ev.Op}] += j - i
		i = j
	}
	for k, n := range counts {
		p.opts.Metrics.Events.WithLabelValues(p.opts.Name, p.tableLabel(k.db, k.table), k.op.String()).Add(float64(n))
	}
}

// MaxTableLabels bounds the distinct table labels of rowsync_events_total.
const MaxTableLabels = 1000

// Table labels of tables no rule matches, or past MaxTableLabels.
const (
	UnmatchedTable = "_unmatched"
	OtherTable     = "_other"
)

// tableLabel returns the table label of db.table: its name when a rule
// matches it and the label budget allows, else a shared label.
func (p *Pipeline) tableLabel(db, table string) string {
	name := db + "." + table
	p.labelMu.Lock()
	defer p.labelMu.Unlock()
	if l, ok := p.labels[name]; ok {
		return l
	}
	l := name
	switch {
	case p.opts.MatchTable != nil && !p.opts.MatchTable(db, table):
		l = UnmatchedTable
	case p.labelled >= MaxTableLabels:
		l = OtherTable
	default:
		p.labelled++
	}
	if len(p.labels) < 4*MaxTableLabels { // the memo is bounded too
		if p.labels == nil {
			p.labels = map[string]string{}
		}
		p.labels[name] = l
	}
	return l
}
