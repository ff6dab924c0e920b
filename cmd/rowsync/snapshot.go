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

	"github.com/rowsync/rowsync/backfill"
	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/invalidator"
	"github.com/rowsync/rowsync/metrics"
	"github.com/rowsync/rowsync/pipeline"
	"github.com/rowsync/rowsync/refetch"
	"github.com/rowsync/rowsync/source/binlog"
)

const snapshotHelp = `usage: rowsync snapshot -c FILE [--tables REGEX] [--chunk N] [--force]

Copies the rows that already exist in MySQL into the configured sinks of
a pipeline that is not running (redis_hash and mongo tables; invalidate
is skipped: there is nothing to invalidate yet), then exits. It is the
backfill of 'rowsync backfill' with no stream beside it: the same chunk
reader and pipeline as 'run' (sharding, retries, dead letter), each table
one backfill request stored beside the checkpoint, so 'rowsync backfill
--status' shows its progress, and an interrupted snapshot run again
resumes each table from its last applied chunk. Then start 'rowsync run'.

Tables: every base table matched by a tables[] entry with redis_hash or
mongo (and by source.binlog include/exclude), limited by --tables. Each is
read in primary-key order, --chunk rows per query (keyset pagination),
each chunk in its own consistent read with its binlog position as the
rows' version. A table without a primary key is read in one streaming
full scan (it cannot resume: it is read again from its first row).

Where rows are read: mysql.dsn if set, else the binlog source's server with
its credentials. A kafka or rabbitmq source needs mysql: {dsn: ...}.

Consistency: with a binlog source that has no checkpoint yet, snapshot
first saves the source's start position (default: the current binlog end)
as the checkpoint; 'rowsync run' then streams every change made during and
after the snapshot, and the sinks converge on the current rows. Snapshot
refuses while a 'rowsync run' of the pipeline is running (its heartbeat
beside the checkpoint is younger than 30s): use 'rowsync backfill TABLE...'
then, which copies tables into a running pipeline safely. If a checkpoint
exists, snapshot refuses unless --force: with 'run' stopped, --force keeps
the checkpoint and 'run' resumes from it. With kafka or rabbitmq, make
sure the consumer group's position (or the retained messages) covers
changes from before the snapshot started.

Exit 0 when every table is done, 1 when one failed (the summary says why).

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
		fs.IntVar(&fl.chunk, "chunk", backfill.DefaultChunk, fmt.Sprintf("rows per query and per batch (at most %d)", refetch.MaxChunkSize))
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
	states, err := runSnapshot(ctx, cfg, rc, fl, only, log, stdout, stderr)
	backfill.WriteSummary(stdout, states)
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

// runSnapshot runs the backfill of every selected table with no stream
// (backfill.Snapshot), a binlog source's start pinned first, and returns
// the tables' last states (also on failure, for the summary).
func runSnapshot(ctx context.Context, cfg *config.Config, rc refetch.Config, fl snapshotFlags, only *regexp.Regexp,
	log *slog.Logger, stdout, stderr io.Writer) ([]backfill.State, error) {
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
	var store backfill.Store
	if store, err = backfillStore(d); err != nil {
		// a queue source's config may name no place for a checkpoint
		log.Warn("no backfill store: the snapshot's progress is kept in memory only ('rowsync backfill --status' will not show it)", "err", err)
		store = backfill.NewMemory()
	}
	defer store.Close()
	dl, err := openDeadLetter(cfg)
	if err != nil {
		return nil, err
	}
	defer dl.Close()
	rf, err := backfill.OpenMySQL(rc, log.With("stage", "snapshot"))
	if err != nil {
		return nil, err
	}
	defer rf.Close()

	setGC(cfg.Pipeline, log)
	m := metrics.New()
	bc, _ := config.Block[backfill.Config](cfg, "backfill")
	host, _ := os.Hostname()
	show := backfillCmd{cfg: cfg, store: store, stdout: stdout, stderr: stderr}.display()
	job := backfill.Snapshot{MySQL: rf, Store: store, Tables: match, Routes: routes,
		Pipeline: pipelineOptions(d, dl, m, base), Chunk: fl.chunk, Config: bc,
		Owner: fmt.Sprintf("snapshot %s/%d", host, os.Getpid()), Poll: waitPoll,
		Progress: func(cur []backfill.State, err error) {
			if err != nil {
				log.Warn("backfill store not readable; retrying", "err", err)
				return
			}
			show(cur, false)
		},
		Metrics: m, Logger: log}
	if cfg.Source == binlog.Name {
		job.Pin = func(ctx context.Context) error {
			cp, err := checkpointStore(d)
			if err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
			defer cp.Close()
			return backfill.PinStart(ctx, cp, cfg.Name, fl.force, func(ctx context.Context) (cdc.Source, error) {
				bc, _ := config.Block[binlog.Config](cfg, "source.binlog")
				src, err := binlog.New(ctx, bc, cp, log)
				if err != nil {
					return nil, fmt.Errorf("source.binlog: %w", err)
				}
				return src, nil
			}, log)
		}
	}
	states, err := job.Run(ctx)
	if states != nil {
		show(states, true)
	}
	return states, err
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
