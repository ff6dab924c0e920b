package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rowsync/rowsync/backfill"
	"github.com/rowsync/rowsync/checkpoint"
	"github.com/rowsync/rowsync/internal/changegen"
)

// streamRate is the change rate the stream carries during the backfill.
const streamRate = 1000

// itemsSelect renders rs_bench.items' columns of row n as a SELECT list,
// the values itemRow gives (status 'new').
const itemsSelect = `n, 80000 + n % 1000, CONCAT('SKU-', n % 9973, '-XL'), n % 50,
	CAST(CONCAT(n % 10000, '.', LPAD(n % 100, 2, '0')) AS DECIMAL(12,2)), (n % 100) / 100, 'new',
	CONCAT('gift wrap, deliver after 6pm #', n % 90), '2024-05-01 10:20:30.123', '2024-05-01 10:21:00'`

// loadItems fills rs_bench.items with rows 0..n-1 on the server (a
// numbers CTE, 200k rows a statement), outside the binlog: the rows exist
// before any pipeline streams, as a table a backfill is asked for.
func loadItems(ctx context.Context, db *sql.DB, n int) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION sql_log_bin = 0"); err != nil {
		return fmt.Errorf("sql_log_bin: %w", err)
	}
	defer conn.ExecContext(context.Background(), "SET SESSION sql_log_bin = 1")
	cte := changegen.NumbersCTE(n)
	for lo := 1; lo <= n; lo += 200_000 {
		hi := min(lo+200_000-1, n)
		q := fmt.Sprintf("INSERT INTO %s.items %s SELECT %s FROM (SELECT n - 1 AS n FROM nums WHERE n BETWEEN %d AND %d) AS r",
			benchSchema, cte, itemsSelect, lo, hi)
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("fill rows %d..%d: %w", lo-1, hi-1, err)
		}
	}
	return nil
}

// pacedWriter updates random rows of rs_bench.items at rate single-row
// transactions a second (several per round trip, so a slow round trip
// does not lower the rate) until ctx ends.
type pacedWriter struct {
	done  atomic.Int64
	err   error
	start time.Time
	stop  chan struct{}
	once  sync.Once
	ended chan struct{}
}

func startWriter(ctx context.Context, db *sql.DB, rows, rate int) *pacedWriter {
	w := &pacedWriter{start: time.Now(), stop: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(w.ended)
		rng := rand.New(rand.NewPCG(14, 1000))
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var b strings.Builder
		for {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			due := int(time.Since(w.start).Seconds()*float64(rate)) - int(w.done.Load())
			if due <= 0 {
				continue
			}
			due = min(due, rate/10)
			b.Reset()
			for range due {
				fmt.Fprintf(&b, "UPDATE %s.items SET qty = qty + 1, status = 'paid' WHERE id = %d;", benchSchema, rng.IntN(rows))
			}
			if _, err := db.ExecContext(ctx, b.String()); err != nil {
				if ctx.Err() == nil {
					w.err = err
				}
				return
			}
			w.done.Add(int64(due))
		}
	}()
	return w
}

// end stops the writer (once; later calls only wait) and returns its rate
// and first error.
func (w *pacedWriter) end() (float64, error) {
	w.once.Do(func() { close(w.stop) })
	<-w.ended
	return float64(w.done.Load()) / time.Since(w.start).Seconds(), w.err
}

// runBackfill compares the two ways rowsync loads a table that already
// exists: `rowsync snapshot` of a 1M-row table with the stream stopped,
// and `rowsync backfill --wait` of the same table into a running pipeline
// whose binlog stream carries 1,000 changes/s from a paced writer on the
// same server. Target: the backfill at ≥ 70% of the snapshot's rows/s.
func runBackfill(ctx context.Context, o *options, t *table) error {
	n := o.n(1_000_000)
	db, rc, done, err := itemsEnv(ctx, o)
	if err != nil {
		return err
	}
	defer done()
	lstart := time.Now()
	if err := loadItems(ctx, db, n); err != nil {
		return err
	}
	o.log.Info("backfill table loaded", "rows", n, "took", time.Since(lstart).Round(time.Millisecond))
	rpid := redisPID(ctx)
	sinks := "    redis_hash:\n      key: \"{db}_{table}_{pk}\"\n"

	// 1. rowsync snapshot, no stream running.
	file, pos, err := masterPos(ctx, db)
	if err != nil {
		return err
	}
	cfg := binlogConfig("bench-snapshot", file, pos, "items", 1<<29+105, sinks, o.work)
	redis0 := cpuTime(rpid)
	snap, err := runOnce(ctx, o, "bench-snapshot", cfg, 30*time.Minute, "snapshot")
	if err != nil {
		return err
	}
	snapRedis := cpuTime(rpid) - redis0
	if err := waitDBSize(ctx, rc, int64(n), time.Minute); err != nil {
		return fmt.Errorf("after the snapshot: %w", err)
	}
	snapRPS := float64(n) / snap.wall.Seconds()
	o.log.Info("snapshot", "rows/s", int(snapRPS), "wall", snap.wall.Round(time.Millisecond))
	if err := flush(ctx, sinkDB); err != nil {
		return err
	}

	// 2. rowsync backfill into a running pipeline, stream at 1,000 changes/s.
	if file, pos, err = masterPos(ctx, db); err != nil {
		return err
	}
	cfg = binlogConfig("bench-backfill", file, pos, "items", 1<<29+106, sinks, o.work)
	runCfg := cfg
	if o.profDir != "" {
		runCfg = strings.Replace(cfg, "  addr: ADMIN\n", "  addr: ADMIN\n  pprof: true\n", 1)
	}
	p, err := startRowsync(ctx, o, "bench-backfill", runCfg)
	if err != nil {
		return err
	}
	defer p.stop()
	wdb, err := openMySQL(o)
	if err != nil {
		return err
	}
	defer wdb.Close()
	w := startWriter(ctx, wdb, n, streamRate)
	defer w.end()
	// the stream is flowing: the writer's first changes are applied
	if err := waitMetric(ctx, p, func(m metrics) bool { return m.events >= streamRate }, 2*time.Minute); err != nil {
		return fmt.Errorf("stream before the backfill: %w", err)
	}
	// the stream alone: its CPU per change, to tell it from the backfill's
	pid := p.cmd.Process.Pid
	sc0, sw0, st0 := cpuTime(pid), w.done.Load(), time.Now()
	select {
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	streamCPU := float64(cpuTime(pid)-sc0) / float64(max(1, w.done.Load()-sw0))
	streamSecs := float64(cpuTime(pid)-sc0) / float64(time.Since(st0))
	o.log.Info("stream alone", "cpu_us_per_change", int(streamCPU/1e3), "cpu_share", fmt.Sprintf("%.2f", streamSecs))
	store, err := backfill.Open(checkpoint.Config{File: filepath.Join(o.work, "bench-backfill.checkpoint.json")}, "bench-backfill", nil)
	if err != nil {
		return err
	}
	defer store.Close()
	cpu0, redis0, wrote0, req := cpuTime(pid), cpuTime(rpid), w.done.Load(), time.Now()
	var prof chan error
	if o.profDir != "" {
		// the backfill's first profDur (the run's stream included)
		prof = make(chan error, 1)
		go func() { prof <- p.cpuProfile(ctx, filepath.Join(o.profDir, "bench-backfill.pprof"), o.profDur) }()
	}
	bf, err := runOnce(ctx, o, "bench-backfill-wait", cfg, 30*time.Minute,
		"backfill", "--wait", benchSchema+".items")
	if err != nil {
		return err
	}
	cpu, bfRedis := cpuTime(pid)-cpu0, cpuTime(rpid)-redis0
	if prof != nil {
		if perr := <-prof; perr != nil {
			o.log.Warn("cpu profile", "run", "bench-backfill", "err", perr)
		}
	}
	if c, s, err := p.histogram(ctx, "rowsync_backfill_chunk_seconds"); err == nil && c > 0 {
		o.log.Info("backfill chunks: read + wait for the stream", "chunks", int(c), "mean_ms", int(1000*s/c))
	}
	wroteRate := float64(w.done.Load()-wrote0) / time.Since(req).Seconds()
	peak := vmHWM(pid)
	states, err := store.List(ctx)
	if err != nil {
		return err
	}
	var st backfill.State
	for _, s := range states {
		if s.Name() == benchSchema+".items" {
			st = s
		}
	}
	if st.Status != backfill.Done || st.Finished.IsZero() {
		return fmt.Errorf("backfill state after --wait: %+v", st)
	}
	if _, err := w.end(); err != nil {
		return fmt.Errorf("paced writer: %w", err)
	}
	if err := waitDBSize(ctx, rc, int64(n), time.Minute); err != nil {
		return fmt.Errorf("after the backfill: %w", err)
	}
	took := st.Finished.Sub(st.Requested)
	bfRPS := float64(n) / took.Seconds()
	o.log.Info("backfill", "rows/s", int(bfRPS), "took", took.Round(time.Millisecond), "wait_wall", bf.wall.Round(time.Millisecond))

	t.add(row{bench: fmt.Sprintf("snapshot of a %dk-row table → Redis hashes, stream stopped", n/1000),
		figure: rate(snapRPS, "rows/s")})
	t.add(row{bench: fmt.Sprintf("backfill of the same table, stream at %d changes/s", streamRate),
		figure: rate(bfRPS, "rows/s"), baseline: rate(snapRPS, "rows/s") + " (snapshot)",
		ratio: fmt.Sprintf("%.0f%%", 100*bfRPS/snapRPS), target: "≥ 70% of snapshot", pass: verdict(bfRPS >= 0.7*snapRPS)})
	t.note("snapshot: %d rows in %s from process start to exit; %s; peak RSS %d MiB.",
		n, snap.wall.Round(time.Millisecond), cpuNote(snap.cpu, snapRedis, n), snap.maxRSS>>20)
	t.note("the stream alone (5 s before the request): rowsync CPU %.0f µs per change, %.0f%% of a core; over the backfill's %s that is ≈ %.1f µs per backfilled row of the figure above.",
		streamCPU/1e3, 100*streamSecs, took.Round(time.Second), streamSecs*took.Seconds()*1e6/float64(n))
	t.note("backfill: %d rows in %s from request to done (%d chunks, %d rows left to the log's newer version; `backfill --wait` exited after %s); "+
		"%s (rowsync's includes the stream's changes meanwhile); rowsync peak RSS %d MiB (VmHWM of the whole run); the paced writer made %.0f changes/s during it.",
		st.Rows, took.Round(time.Millisecond), st.Chunks, st.Dropped, bf.wall.Round(time.Millisecond),
		cpuNote(cpu, bfRedis, n), peak>>20, wroteRate)
	return nil
}

// onceResult is one finished rowsync command.
type onceResult struct {
	wall   time.Duration
	cpu    time.Duration // user + system
	maxRSS int64         // bytes
}

// runOnce writes cfg and runs `rowsync CMD -c CFG ARGS...` to its end,
// with its output in the work dir.
func runOnce(ctx context.Context, o *options, name, cfg string, timeout time.Duration, cmdName string, args ...string) (onceResult, error) {
	var r onceResult
	admin, err := freeAddr()
	if err != nil {
		return r, err
	}
	path := filepath.Join(o.work, name+".yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(cfg, "ADMIN", admin)), 0o600); err != nil {
		return r, err
	}
	logPath := filepath.Join(o.work, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return r, err
	}
	defer lf.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.rowsync, append([]string{cmdName, "-c", path}, args...)...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = o.env
	start := time.Now()
	err = cmd.Run()
	r.wall = time.Since(start)
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.maxRSS = ru.Maxrss << 10 // KiB on Linux
		}
	}
	if err != nil {
		b, _ := os.ReadFile(logPath)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		return r, fmt.Errorf("rowsync %s: %w: %s", cmdName, err, strings.Join(lines[max(0, len(lines)-5):], " ⏎ "))
	}
	return r, nil
}

// waitMetric polls /metrics until ok.
func waitMetric(ctx context.Context, p *proc, ok func(metrics) bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if p.exited() {
			return fmt.Errorf("rowsync exited: %s", p.tail())
		}
		m, err := p.metrics(ctx)
		if err == nil && ok(m) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("not within %v (%d events applied)", timeout, int(m.events)), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
