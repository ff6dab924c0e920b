package backfill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/backoff"
	"github.com/rowsync/rowsync/metrics"
	"github.com/rowsync/rowsync/refetch"
)

// Engine runs the backfills of one pipeline inside the process that owns
// its stream: it polls the Store for requests, runs one table at a time
// chunk by chunk through the Source wrapper, saves the cursor after each
// applied chunk, and resumes a Running backfill (a crashed or replaced
// owner's) from its saved cursor.
type Engine struct {
	// Store holds the requests and progress. Required.
	Store Store
	// Source is the pipeline's wrapped stream. Required.
	Source *Source
	// MySQL reads the rows. Required.
	MySQL *refetch.Refetcher
	// Tables says whether the pipeline syncs db.table (a table rule
	// routes it to a sink and the source streams it); a request for
	// another table fails. nil: every table.
	Tables func(db, table string) bool
	// StreamServer, when set, returns the @@server_id of the server the
	// stream's positions belong to (the binlog source's): a backfill then
	// fails unless MySQL is that server, since its watermarks are binlog
	// positions and another server's would order chunks wrongly.
	StreamServer func(ctx context.Context) (uint64, error)
	// Only, when set, picks the states this engine runs; it leaves the
	// others to another owner (`rowsync snapshot` runs only its own
	// requests). nil: every active state.
	Only func(State) bool
	// Owner names this process in the states and the heartbeat.
	Owner  string
	Config Config
	// Metrics may be nil; Logger too.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// logEvery is how many chunks pass between progress log lines.
const logEvery = 20

// beatEvery is how often the owner's heartbeat is written.
const beatEvery = 5 * time.Second

// chunkRetry spaces the retries of a chunk that failed transiently.
var chunkRetry = backoff.Policy{Min: 200 * time.Millisecond, Max: 30 * time.Second}

// Run works until ctx ends; it returns nil then. Store errors are logged
// and retried: a backfill never stops the stream.
func (e *Engine) Run(ctx context.Context) error {
	cfg := e.Config.withDefaults()
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("stage", "backfill")
	// The beat runs beside the backfills: one table can take hours, and
	// `backfill --wait` and `snapshot` judge from the beat whether a run owns
	// the pipeline. release runs after the beat loop has stopped.
	beatCtx, stopBeat := context.WithCancel(ctx)
	beatDone := make(chan struct{})
	go func() {
		defer close(beatDone)
		e.beat(beatCtx, log)
	}()
	defer e.release(ctx, log)
	defer func() { stopBeat(); <-beatDone }()
	var warned time.Time
	t := time.NewTicker(cfg.Poll)
	defer t.Stop()
	for {
		states, err := e.Store.List(ctx)
		if err != nil && ctx.Err() == nil && time.Since(warned) > time.Minute {
			log.Warn("backfill requests not readable; retrying", "err", err)
			warned = time.Now()
		}
		for _, st := range states {
			if ctx.Err() != nil {
				return nil
			}
			if st.Status.Active() && (e.Only == nil || e.Only(st)) {
				e.runOne(ctx, cfg, log, st)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// beat writes the owner's heartbeat every beatEvery until ctx ends.
func (e *Engine) beat(ctx context.Context, log *slog.Logger) {
	var warned time.Time
	t := time.NewTicker(beatEvery)
	defer t.Stop()
	for {
		if err := e.Store.Beat(ctx, e.Owner); err != nil && ctx.Err() == nil && time.Since(warned) > time.Minute {
			log.Warn("backfill heartbeat not saved", "err", err)
			warned = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runOne runs one table's backfill to its end, or until ctx ends.
func (e *Engine) runOne(ctx context.Context, cfg Config, log *slog.Logger, st State) {
	log = log.With("table", st.Name(), "id", st.ID)
	resumed := st.Status == Running
	now := time.Now().UTC()
	st.Status, st.Owner, st.Updated, st.Error = Running, e.Owner, now, ""
	if st.Started.IsZero() {
		st.Started = now
	}
	if e.Tables != nil && !e.Tables(st.DB, st.Table) {
		e.finish(ctx, log, st, Failed, errors.New("no tables[] rule routes this table to a sink of this pipeline (or the source does not stream it)"))
		return
	}
	if st.Estimate == 0 {
		if st.Keys != nil {
			st.Estimate = int64(len(st.Keys))
		} else if n, err := e.MySQL.EstimateRows(ctx, st.DB, st.Table); err == nil {
			st.Estimate = n
		}
	}
	if !e.save(ctx, log, &st) {
		return
	}
	label := prometheus.Labels{"table": st.Name()}
	rowsTotal := e.Metrics.Counter("rowsync_backfill_rows_total", "Rows a backfill applied to the sinks (or dead-lettered).", label)
	remaining := e.Metrics.Gauge("rowsync_backfill_remaining_rows", "Estimated rows a running backfill has still to read.", label)
	chunkSecs := e.Metrics.Histogram("rowsync_backfill_chunk_seconds", "Time of one backfill chunk, from the start of its read between its watermarks until the pipeline applied it.", nil, nil)
	remaining.Set(float64(max(0, st.Estimate-st.Rows)))
	log.Info("backfill started", "resumed", resumed, "cursor", st.Cursor, "rows_done", st.Rows, "estimate", st.Estimate, "keys", len(st.Keys))
	start := time.Now()
	var r *Reader
	defer func() {
		if r != nil {
			r.Close()
		}
	}()
	// Chunks handed to the pipeline and not yet acked, oldest first: the
	// next chunk is read while earlier ones are applied. saved is the
	// progress of the last acked chunk, what the store holds.
	// A chunk queued behind another waits for its turn in the Source
	// while the next one is read. st counts every row read; the rows the
	// log changed meanwhile (known once a chunk is handed out) are taken
	// off as each chunk settles, drops being those of the chunks settled
	// since st was last reset.
	type sent struct {
		st   State // progress once this chunk is applied, drops not counted
		p    *Sent
		read time.Time
	}
	var queue []sent
	var drops int64
	saved := st
	defer e.Source.Withdraw()
	// settle takes the verdicts of the oldest chunks, waiting for them
	// while more than keep are in flight; false stops the backfill (ctx
	// ended, the request was replaced); err is a nack.
	settle := func(keep int) (bool, error) {
		for len(queue) > 0 {
			var err error
			if len(queue) > keep {
				select {
				case err = <-queue[0].p.Acked():
				case <-ctx.Done():
					return false, nil
				}
			} else {
				select {
				case err = <-queue[0].p.Acked():
				default:
					return true, nil
				}
			}
			if err != nil {
				e.Source.Withdraw()
				queue = nil // the pipeline is failing: it nacks the rest too
				return true, err
			}
			chunkSecs.Observe(time.Since(queue[0].read).Seconds())
			drops += int64(queue[0].p.Dropped())
			next := queue[0].st
			next.Rows -= drops
			next.Dropped += drops
			queue = queue[1:]
			rowsTotal.Add(float64(next.Rows - saved.Rows))
			remaining.Set(float64(max(0, next.Estimate-next.Rows)))
			next.Updated = time.Now().UTC()
			saved = next
			if !e.save(ctx, log, &saved) {
				return false, nil
			}
			if saved.Chunks%logEvery == 0 {
				log.Info("backfill progress", "rows", saved.Rows, "estimate", saved.Estimate, "chunks", saved.Chunks, "dropped", saved.Dropped, "cursor", saved.Cursor)
			}
		}
		return true, nil
	}
	for attempt := 0; ; {
		if ctx.Err() != nil {
			return
		}
		if c, err := e.Store.Cancelled(ctx, st.DB, st.Table, st.ID); err == nil && c {
			if ok, _ := settle(0); ok {
				e.finish(ctx, log, saved, Cancelled, nil)
			}
			return
		}
		err := func() error {
			if ok, err := settle(maxInFlight - 1); !ok || err != nil {
				if err == nil {
					err = ctx.Err()
					if err == nil {
						err = errStop
					}
				}
				return err
			}
			if r == nil {
				if err := e.sameServer(ctx); err != nil {
					return err
				}
				var err error
				if r, err = openReader(ctx, e.MySQL, st, cfg.Chunk, cfg.Method, e.Source.Still()); err != nil {
					return err
				}
				if r.FullScan() {
					// one scan from the first row: earlier progress is read again
					st.Rows, st.Dropped, st.Chunks, st.Cursor = 0, 0, 0, nil
					saved = st
				}
			}
			t0 := time.Now()
			e.Source.Record(st.DB, st.Table, r.KeyOf)
			c, err := r.Next(ctx)
			if err != nil {
				return err
			}
			text := fmt.Sprintf("backfill %s chunk %d @ %s", st.Name(), st.Chunks+1, c.Low)
			p, err := e.Source.Send(Emit{DB: st.DB, Table: st.Table, PK: r.PK(), Columns: r.Columns(), Chunk: c, Text: text})
			if err != nil {
				return err
			}
			st.Rows += int64(len(c.Rows) + len(c.Missing) + len(c.Bad))
			st.Chunks++
			st.Cursor = c.After
			st.Watermark = c.Low.String() + ".." + c.High.String()
			queue = append(queue, sent{st: st, p: p, read: t0})
			return nil
		}()
		switch {
		case err == nil:
			attempt = 0
			continue
		case errors.Is(err, errStop):
			return
		case errors.Is(err, io.EOF):
			ok, err := settle(0)
			if !ok {
				return
			}
			if err == nil {
				remaining.Set(0)
				log.Info("backfill done", "rows", saved.Rows, "dropped", saved.Dropped, "chunks", saved.Chunks, "seconds", time.Since(start).Seconds())
				e.finish(ctx, log, saved, Done, nil)
				return
			}
		case ctx.Err() != nil:
			return
		case permanent(err):
			settle(0)
			e.finish(ctx, log, saved, Failed, err)
			return
		}
		// transient (or a nack): read again after the last applied chunk
		e.Source.Withdraw()
		queue, drops = nil, 0
		st = saved
		if r != nil {
			r.Close()
			r = nil
		}
		attempt++
		wait := chunkRetry.Delay(attempt)
		log.Warn("backfill chunk failed; retrying from the saved cursor", "err", err, "attempt", attempt, "backoff", wait)
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// sameServer checks that rows are read from the stream's server (see
// StreamServer): a mismatch is permanent, a failed query transient.
func (e *Engine) sameServer(ctx context.Context) error {
	if e.StreamServer == nil {
		return nil
	}
	want, err := e.StreamServer(ctx)
	if err != nil {
		return err
	}
	conn, err := e.MySQL.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var got uint64
	if err := conn.QueryRowContext(ctx, "SELECT @@server_id").Scan(&got); err != nil {
		return fmt.Errorf("mysql server_id: %w", err)
	}
	if got != want {
		return fmt.Errorf("rows are read from server_id %d but the binlog is streamed from server_id %d: a chunk's watermarks are binlog positions of the server it is read from, so mysql: must be the binlog source's server (or be left out): %w", got, want, cdc.ErrPermanent)
	}
	return nil
}

// release clears this owner's heartbeat as it stops, so that `rowsync
// snapshot` (which refuses beside a running owner) and `rowsync backfill`
// see at once that the pipeline is not running. A beat of another owner
// is left alone.
func (e *Engine) release(ctx context.Context, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	owner, _, err := e.Store.Owner(ctx)
	if err == nil && owner == e.Owner {
		err = e.Store.Beat(ctx, "")
	}
	if err != nil {
		log.Warn("backfill heartbeat not cleared: rowsync snapshot refuses until it is older than "+OwnerTimeout.String(), "err", err)
	}
}

// maxInFlight bounds the chunks read and not yet applied, queued for
// their turn in the stream or in the pipeline: the next chunk is read
// while earlier ones wait for the stream's high watermark or are written,
// and memory stays bounded by a few chunks.
const maxInFlight = 3

// errStop ends a backfill whose request was replaced or removed.
var errStop = errors.New("backfill stopped")

// save stores st's progress; false when the backfill must stop here (its
// request was replaced or removed, or ctx ended). Other store errors are
// retried: the chunk is applied, only its record is missing.
func (e *Engine) save(ctx context.Context, log *slog.Logger, st *State) bool {
	for attempt := 1; ; attempt++ {
		err := e.Store.Update(ctx, *st)
		if err == nil {
			return true
		}
		if errors.Is(err, ErrReplaced) {
			log.Info("backfill request replaced or removed; stopping it")
			return false
		}
		if ctx.Err() != nil {
			return false
		}
		wait := chunkRetry.Delay(attempt)
		log.Warn("backfill progress not saved; retrying", "err", err, "backoff", wait)
		if !backoff.Sleep(ctx, wait) {
			return false
		}
	}
}

// finish stores the backfill's end.
func (e *Engine) finish(ctx context.Context, log *slog.Logger, st State, status Status, err error) {
	st.Status, st.Finished = status, time.Now().UTC()
	st.Updated = st.Finished
	if err != nil {
		st.Error = strings.TrimSpace(err.Error())
		log.Error("backfill failed", "err", err)
	} else if status == Cancelled {
		log.Info("backfill cancelled", "rows", st.Rows, "chunks", st.Chunks)
	}
	e.save(ctx, log, &st)
}
