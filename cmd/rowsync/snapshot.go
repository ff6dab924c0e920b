package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/invalidator"
	"github.com/rowsync/rowsync/metrics"
	"github.com/rowsync/rowsync/pipeline"
	"github.com/rowsync/rowsync/refetch"
	"github.com/rowsync/rowsync/snapshot"
	"github.com/rowsync/rowsync/source/binlog"
)

const snapshotHelp = `usage: rowsync snapshot -c FILE [--tables REGEX] [--chunk N] [--force]

Copies the rows that already exist in MySQL into the configured sinks
(redis_hash and mongo tables; invalidate is skipped: there is nothing to
invalidate yet), as Insert events through the same pipeline as 'run'
(sharding, retries, dead letter). Then start 'rowsync run'.

Tables: every base table matched by a tables[] entry with redis_hash or
mongo (and by source.binlog include/exclude), limited by --tables. Each is
read in primary-key order, --chunk rows per query, with keyset pagination
(WHERE key > last ORDER BY key LIMIT n). A table without a primary key is
read in one streaming full scan.

Where rows are read: mysql.dsn if set, else the binlog source's server with
its credentials. A kafka or rabbitmq source needs mysql: {dsn: ...}.

Consistency: chunks are separate short reads, not one transaction, so a
table is not copied as of one instant. With a binlog source that has no
checkpoint yet, snapshot first saves the source's start position (default:
the current binlog end) as the checkpoint; 'rowsync run' then streams every
change made during and after the snapshot, and since every write is a full
row image the sinks converge on the current rows. If a checkpoint exists,
snapshot refuses unless --force: a pipeline has already run, and a snapshot
taken while 'rowsync run' is running can overwrite a newer row with the
older copy it read (snapshot writes carry no version). Stop 'run' first;
with --force the checkpoint is kept and 'run' resumes from it. With kafka
or rabbitmq, make sure the consumer group's position (or the retained
messages) covers changes from before the snapshot started.

Flags:
`

// snapshotFlags are the command line of `rowsync snapshot`.
type snapshotFlags struct {
	tables string
	chunk  int
	force  bool
}

func cmdSnapshot(args []string, stdout, stderr io.Writer) int {
	var fl snapshotFlags
	cfg, _, code := loadConfig("snapshot", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&fl.tables, "tables", "", `only tables whose "db.table" matches this regex (anchored)`)
		fs.IntVar(&fl.chunk, "chunk", snapshot.DefaultChunk, fmt.Sprintf("rows per query and per batch (at most %d)", refetch.MaxChunkSize))
		fs.BoolVar(&fl.force, "force", false, "snapshot even though a binlog checkpoint exists (stop 'rowsync run' first)")
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), snapshotHelp)
			fs.PrintDefaults()
		}
	})
	if cfg == nil {
		return code
	}
	only, err := tableSelection(fl.tables, fl.chunk)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync snapshot: %v\n", err)
		return exitConfig
	}
	rc, err := snapshotMySQL(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync snapshot: %v\n", err)
		return exitConfig
	}
	log := scrubbedLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stats, err := runSnapshot(ctx, cfg, rc, fl, only, log, stderr)
	printSnapshotSummary(stdout, stats)
	if err != nil {
		log.Error("snapshot failed", "err", err)
		return exitFail
	}
	return exitOK
}

// tableSelection checks the --tables and --chunk flags of snapshot and
// verify: the regex (nil when empty) and the chunk's bounds.
func tableSelection(tables string, chunk int) (*regexp.Regexp, error) {
	if chunk <= 0 || chunk > refetch.MaxChunkSize {
		return nil, fmt.Errorf("--chunk: must be between 1 and %d, got %d", refetch.MaxChunkSize, chunk)
	}
	if tables == "" {
		return nil, nil
	}
	re, err := cdc.CompileMatch(tables)
	if err != nil {
		return nil, fmt.Errorf("--tables: %w", err)
	}
	return re, nil
}

// snapshotMySQL is where snapshot reads rows: mysql:, else the binlog
// source's server.
func snapshotMySQL(cfg *config.Config) (refetch.Config, error) {
	rc, ok := config.Block[refetch.Config](cfg, "mysql")
	if ok {
		return rc, nil
	}
	dc, err := mysqlConfig(cfg, "")
	if err != nil || dc == nil {
		return rc, errors.New("rows are read from MySQL: with a kafka or rabbitmq source set mysql: {dsn: ...}")
	}
	rc.DSN = dc.FormatDSN()
	return rc, nil
}

// snapshotTables selects the tables to copy: those the router sends to
// one of routes (the sinks snapshot feeds, routed exactly as under run),
// admitted by the binlog source's include/exclude and matched by --tables.
func snapshotTables(cfg *config.Config, routes []pipeline.Route, only *regexp.Regexp) (func(db, table string) bool, error) {
	include, err := sourceFilter(cfg)
	if err != nil {
		return nil, err
	}
	return func(db, table string) bool {
		if only != nil && !only.MatchString(db+"."+table) || !include.Match(db, table) {
			return false
		}
		for _, r := range routes {
			if r.Wants(db, table) {
				return true
			}
		}
		return false
	}, nil
}

// runSnapshot copies every selected table through the pipeline into the
// sinks, with a binlog source's start pinned first. It returns the
// per-table stats (also on failure, for the summary).
func runSnapshot(ctx context.Context, cfg *config.Config, rc refetch.Config, fl snapshotFlags, only *regexp.Regexp,
	log *slog.Logger, stderr io.Writer) ([]snapshot.TableStats, error) {
	base := log // the pipeline adds the pipeline attribute itself
	log = log.With("pipeline", cfg.Name)
	d, err := newDeps(cfg, log)
	if err != nil {
		return nil, err
	}
	defer d.close()
	routes, err := snapshotRoutes(ctx, d)
	if err != nil {
		return nil, err
	}
	defer closeRoutes(routes, log)
	match, err := snapshotTables(cfg, routes, only)
	if err != nil {
		return nil, err
	}
	dl, err := openDeadLetter(cfg)
	if err != nil {
		return nil, err
	}
	defer dl.Close()

	setMemoryLimit(cfg.Pipeline, log)
	job := snapshot.Copy{MySQL: rc, Tables: match, Routes: routes, Pipeline: pipelineOptions(d, dl, metrics.New(), base),
		Chunk: fl.chunk, Logger: log,
		Progress: func(ctx context.Context, stop <-chan struct{}, p snapshot.Progress) {
			showProgress(ctx, stop, p, log, stderr)
		}}
	if cfg.Source == binlog.Name {
		job.Pin = func(ctx context.Context) error {
			store, err := checkpointStore(d)
			if err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
			defer store.Close()
			return snapshot.PinStart(ctx, store, cfg.Name, fl.force, func(ctx context.Context) (cdc.Source, error) {
				bc, _ := config.Block[binlog.Config](cfg, "source.binlog")
				src, err := binlog.New(ctx, bc, store, log)
				if err != nil {
					return nil, fmt.Errorf("source.binlog: %w", err)
				}
				return src, nil
			}, log)
		}
	}
	return snapshot.Run(ctx, job)
}

// snapshotRoutes builds the sinks `run` would, routed alike, except the
// invalidator: nothing is cached from rows that were never synced.
func snapshotRoutes(ctx context.Context, d *deps) ([]pipeline.Route, error) {
	routes, err := buildRoutes(ctx, d, func(name string) bool { return name == invalidator.Name })
	if err != nil {
		return nil, err
	}
	if len(routes) == 0 {
		return nil, errors.New("no redis_hash or mongo table: nothing for a snapshot to write")
	}
	return routes, nil
}

// showProgress draws a progress bar on stderr when it is a terminal, and
// otherwise logs the progress every 5 seconds, until stop closes.
func showProgress(ctx context.Context, stop <-chan struct{}, p snapshot.Progress, log *slog.Logger, stderr io.Writer) {
	f, isFile := stderr.(*os.File)
	if !isFile || !term.IsTerminal(int(f.Fd())) {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				cur, applied, done := progressOf(p.Stats())
				log.Info("snapshot progress", "table", cur, "rows", applied, "tables_done", done, "tables", p.Tables)
			}
		}
	}
	bar := progressbar.NewOptions64(max(p.Estimate(ctx), 1),
		progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("snapshot"),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
		progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(), progressbar.OptionClearOnFinish())
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			bar.Finish()
			return
		case <-t.C:
			cur, applied, done := progressOf(p.Stats())
			if applied > bar.GetMax64() { // the estimate was low
				bar.ChangeMax64(applied + applied/10)
			}
			bar.Describe(fmt.Sprintf("[%d/%d] %s", done, p.Tables, cur))
			bar.Set64(applied)
		}
	}
}

// progressOf returns the table being read, the rows applied in all, and
// how many tables are done.
func progressOf(stats []snapshot.TableStats) (cur string, applied int64, done int) {
	for _, st := range stats {
		applied += st.Applied
		if st.Done() {
			done++
		} else if cur == "" && !st.Start.IsZero() {
			cur = st.DB + "." + st.Table
		}
	}
	return cur, applied, done
}

// printSnapshotSummary prints one line per table: rows, seconds, rows/s.
func printSnapshotSummary(w io.Writer, stats []snapshot.TableStats) {
	if len(stats) == 0 {
		return
	}
	width := len("table")
	for _, st := range stats {
		width = max(width, len(st.DB)+1+len(st.Table))
	}
	fmt.Fprintf(w, "%-*s  %10s  %9s  %10s  %s\n", width, "table", "rows", "seconds", "rows/s", "status")
	var rows int64
	var secs float64
	for _, st := range stats {
		d := st.Duration().Seconds()
		rate := 0.0
		if d > 0 {
			rate = float64(st.Applied) / d
		}
		status := "ok"
		switch {
		case st.Gone:
			status = "gone (dropped before it was read)"
		case st.Start.IsZero():
			status = "not started"
		case !st.Done():
			status = "incomplete"
		}
		if st.Bad > 0 {
			status += fmt.Sprintf(", %d row(s) to the dead letter", st.Bad)
		}
		if st.Keyless {
			status += ", no primary key: full scan"
		}
		fmt.Fprintf(w, "%-*s  %10d  %9.2f  %10.0f  %s\n", width, st.DB+"."+st.Table, st.Applied, d, rate, status)
		rows += st.Applied
		secs += d
	}
	rate := 0.0
	if secs > 0 {
		rate = float64(rows) / secs
	}
	fmt.Fprintf(w, "%-*s  %10d  %9.2f  %10.0f\n", width, "total", rows, secs, rate)
}
