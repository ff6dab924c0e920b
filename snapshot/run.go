package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/checkpoint"
	"github.com/rowsync/rowsync/pipeline"
	"github.com/rowsync/rowsync/refetch"
)

// Copy is one run of `rowsync snapshot`: which tables, read from where,
// written through which routes.
type Copy struct {
	// MySQL is where rows are read. Timeout and MaxOpenConns of zero mean
	// 1 minute per query (a chunk of wide rows on a busy server) and 2.
	MySQL refetch.Config
	// Tables selects the base tables to copy. Required.
	Tables func(db, table string) bool
	// Routes are the sinks, routed exactly as `run` routes them. Required.
	Routes []pipeline.Route
	// Pipeline tunes the pipeline the rows go through (dead letter
	// included), as under `run`.
	Pipeline pipeline.Options
	// Chunk is rows per query and per batch. Default: DefaultChunk
	Chunk int
	// Pin, when set, runs after the tables are listed and before any row
	// is read: a binlog source pins its start position (PinStart).
	Pin func(ctx context.Context) error
	// Progress, when set, runs beside the copy until stop is closed.
	Progress func(ctx context.Context, stop <-chan struct{}, p Progress)
	// Logger may be nil.
	Logger *slog.Logger
}

// Progress is what a progress display reads while a copy runs.
type Progress struct {
	// Tables is the number of tables being copied.
	Tables int
	// Stats returns the per-table stats so far.
	Stats func() []TableStats
	// Estimate returns the estimated rows of all tables
	// (information_schema's figure; 0 when unknown).
	Estimate func(ctx context.Context) int64
}

// Run copies every selected table through the pipeline into the routes'
// sinks. It returns the per-table stats, also on failure (for a summary).
func Run(ctx context.Context, c Copy) ([]TableStats, error) {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c.Chunk <= 0 {
		c.Chunk = DefaultChunk
	}
	rc := c.MySQL
	if rc.Timeout == 0 {
		rc.Timeout = time.Minute
	}
	if rc.MaxOpenConns == 0 {
		rc.MaxOpenConns = 2
	}
	rf, err := refetch.New(rc, log.With("stage", "snapshot"))
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	defer rf.Close()
	if err := rf.Ping(ctx); err != nil {
		return nil, err
	}
	tables, err := rf.ListTables(ctx, c.Tables)
	if err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		return nil, errors.New("no table to snapshot: no base table is routed to a sink snapshot writes (and matches --tables)")
	}
	if c.Pin != nil {
		if err := c.Pin(ctx); err != nil {
			return nil, err
		}
	}

	src := New(rf, tables, Options{Chunk: c.Chunk, Logger: log})
	defer src.Close(context.Background())
	p, err := pipeline.New(src, c.Routes, c.Pipeline)
	if err != nil {
		return nil, err
	}
	log.Info("snapshot starting", "tables", len(tables), "chunk", c.Chunk, "sinks", len(c.Routes))
	stop := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if c.Progress != nil {
			c.Progress(ctx, stop, Progress{Tables: len(tables), Stats: src.Stats, Estimate: func(ctx context.Context) int64 {
				var n int64
				for _, t := range tables {
					if e, err := rf.EstimateRows(ctx, t[0], t[1]); err == nil {
						n += e
					}
				}
				return n
			}})
		}
	}()
	runErr := p.Run(ctx)
	close(stop)
	<-progressDone

	stats := src.Stats()
	if runErr != nil {
		return stats, runErr
	}
	if !src.Done() {
		return stats, errors.New("snapshot interrupted before every table was copied; run it again (with --force: the checkpoint is already saved)")
	}
	return stats, nil
}

// PinStart makes sure a log source has a checkpoint before any row is
// read, so the log streams every change made during and after the copy:
// with none, start resolves the source's configured start and saves it in
// store (a binlog source does so when it is built, as on the first `run`).
// An existing checkpoint is an error unless force: a snapshot written while
// `run` streams can overwrite newer rows with older copies.
func PinStart(ctx context.Context, store checkpoint.Store, name string, force bool, start func(ctx context.Context) (cdc.Source, error), log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pos, ok, err := store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load checkpoint: %w", err)
	}
	if ok {
		if !force {
			return fmt.Errorf("pipeline %q already has a binlog checkpoint (%s): 'rowsync run' has streamed from it, "+
				"and a snapshot written while it runs can overwrite newer rows with older copies (snapshot writes carry no version). "+
				"Stop 'rowsync run' and pass --force to snapshot anyway ('run' then resumes from the checkpoint and the sinks converge), "+
				"or delete the checkpoint to start over", name, pos)
		}
		log.Warn("binlog checkpoint exists; snapshotting anyway (--force); 'rowsync run' resumes from it", "pos", pos.String())
		return nil
	}
	// The source saves the resolved start position before it streams
	// anything; the stream itself is not needed.
	src, err := start(ctx)
	if err != nil {
		return err
	}
	src.Close(context.WithoutCancel(ctx))
	pos, ok, err = store.Load(ctx)
	if err != nil || !ok {
		return fmt.Errorf("binlog start position was not saved: %v", err)
	}
	log.Info("binlog position saved as checkpoint before the snapshot; 'rowsync run' streams every change from here", "pos", pos.String())
	return nil
}
