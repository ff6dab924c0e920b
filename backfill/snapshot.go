package backfill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/checkpoint"
	"github.com/rowsync/rowsync/metrics"
	"github.com/rowsync/rowsync/pipeline"
	"github.com/rowsync/rowsync/refetch"
)

// OpenMySQL opens the connection pool a backfill reads rows with: rc, with
// a query timeout of 1 minute (a chunk of wide rows on a busy server) and
// 2 connections where rc leaves them at zero.
func OpenMySQL(rc refetch.Config, log *slog.Logger) (*refetch.Refetcher, error) {
	if rc.Timeout == 0 {
		rc.Timeout = time.Minute
	}
	if rc.MaxOpenConns == 0 {
		rc.MaxOpenConns = 2
	}
	rf, err := refetch.New(rc, log)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	return rf, nil
}

// Snapshot is one run of `rowsync snapshot`: the backfill of every
// selected table of a pipeline that is not running, by the same Engine,
// Reader and Source as a backfill inside `rowsync run`, over a Source with
// no stream (NewStill). Its requests and progress are stored in Store
// like any backfill's, so `rowsync backfill --status` shows them, and a
// snapshot that was interrupted resumes each table from its last applied
// chunk when it is run again.
type Snapshot struct {
	// MySQL reads the rows. Required.
	MySQL *refetch.Refetcher
	// Store holds the requests and progress. Required.
	Store Store
	// Tables selects the base tables to copy. Required.
	Tables func(db, table string) bool
	// Routes are the sinks, routed exactly as `run` routes them. Required.
	Routes []pipeline.Route
	// Pipeline tunes the pipeline the rows go through, as under `run`.
	Pipeline pipeline.Options
	// Chunk is the rows per chunk of these requests; 0: Config.Chunk.
	Chunk int
	// Config is the pipeline's backfill: block (chunk, method).
	Config Config
	// Owner names this process in the states and the heartbeat.
	Owner string
	// Pin, when set, runs after the tables are listed and before any
	// request is stored: a binlog source pins its start (PinStart).
	Pin func(ctx context.Context) error
	// Poll is how often the states are read for Progress and the end.
	// Default: 1s
	Poll time.Duration
	// Progress, when set, gets the snapshot's states after each read of
	// the store, or the read's error.
	Progress func(states []State, err error)
	// Metrics and Logger may be nil.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// ErrOwnerRunning is a snapshot refused because an owner of the pipeline
// (a `rowsync run`, or another snapshot) beats.
var ErrOwnerRunning = errors.New("the pipeline is running")

// Run copies every selected table and returns their last states once each
// has ended (an error when one did not end Done). It refuses with
// ErrOwnerRunning while an owner of the pipeline beats: beside a running
// stream, `rowsync backfill` is the way. It also returns the states when
// ctx ends first or the pipeline fails (the tables are left Running, and
// the next snapshot or `rowsync run` resumes them).
func (s Snapshot) Run(ctx context.Context) ([]State, error) {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if s.Poll <= 0 {
		s.Poll = time.Second
	}
	owner, at, err := s.Store.Owner(ctx)
	if err != nil {
		return nil, err
	}
	if now := time.Now(); OwnerRunning(owner, at, now) {
		return nil, fmt.Errorf("%w: it is run by %s (last beat %s ago); a snapshot needs the stream stopped: "+
			"use 'rowsync backfill TABLE...' beside a running pipeline (or stop it and run the snapshot again)",
			ErrOwnerRunning, owner, now.Sub(at).Round(time.Second))
	}
	if err := s.MySQL.Ping(ctx); err != nil {
		return nil, err
	}
	tables, err := s.MySQL.ListTables(ctx, s.Tables)
	if err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		return nil, errors.New("no table to snapshot: no base table is routed to a sink snapshot writes (and matches --tables)")
	}
	if err := s.keyListsActive(ctx, tables); err != nil {
		return nil, err
	}
	if s.Pin != nil {
		if err := s.Pin(ctx); err != nil {
			return nil, err
		}
	}
	subs, err := RequestTables(ctx, s.Store, tables, s.Chunk, time.Now().UTC())
	if err != nil {
		return nil, err
	}
	follow := make([]State, len(subs))
	ids := make(map[string]string, len(subs))
	for i, sub := range subs {
		follow[i] = sub.State
		ids[sub.State.Name()] = sub.State.ID
		if sub.Already {
			log.Info("snapshot resumes the table's active backfill", "table", sub.State.Name(), "id", sub.State.ID,
				"status", sub.State.Status, "rows_done", sub.State.Rows)
		}
	}

	src := NewStill()
	p, err := pipeline.New(src, s.Routes, s.Pipeline)
	if err != nil {
		src.Close(context.WithoutCancel(ctx))
		return follow, err
	}
	eng := &Engine{Store: s.Store, Source: src, MySQL: s.MySQL, Tables: s.Tables, Owner: s.Owner,
		Only:   func(st State) bool { return ids[st.Name()] == st.ID },
		Config: s.Config, Metrics: s.Metrics, Logger: log}
	log.Info("snapshot starting", "tables", len(tables), "sinks", len(s.Routes))

	pctx, stopPipeline := context.WithCancel(ctx)
	defer stopPipeline()
	pipeDone := make(chan error, 1)
	go func() { pipeDone <- p.Run(pctx) }()
	ectx, stopEngine := context.WithCancel(ctx)
	engDone := make(chan struct{})
	go func() {
		defer close(engDone)
		eng.Run(ectx)
	}()
	// The wait ends when every table has ended, ctx ends, or the
	// pipeline stops on its own (a fatal sink error).
	wctx, stopWait := context.WithCancel(ctx)
	var pipeErr error
	pipeEnded := false
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case pipeErr = <-pipeDone:
			pipeEnded = true
			stopWait()
		case <-wctx.Done():
		}
	}()
	final, waitErr := Wait(wctx, s.Store, follow, s.Poll, s.Progress)
	stopWait()
	<-watchDone
	stopEngine()
	<-engDone
	if !pipeEnded {
		// every chunk is acked (or ctx ended): end the stream
		src.Finish()
		pipeErr = <-pipeDone
	}
	if err := src.Close(context.WithoutCancel(ctx)); err != nil && pipeErr == nil {
		pipeErr = err
	}
	switch {
	case pipeErr != nil:
		return final, fmt.Errorf("snapshot stopped: %w (run it again: each table resumes from its last applied chunk)", pipeErr)
	case waitErr != nil && ctx.Err() != nil:
		return final, fmt.Errorf("snapshot interrupted: %w (run it again: each table resumes from its last applied chunk)", ctx.Err())
	case waitErr != nil:
		return final, fmt.Errorf("snapshot stopped: the pipeline ended before every table was copied (run it again)")
	}
	var failed []error
	for _, st := range final {
		if st.Status != Done {
			failed = append(failed, fmt.Errorf("%s: %s: %s", st.Name(), st.Status, st.Error))
		}
	}
	if len(failed) > 0 {
		return final, fmt.Errorf("snapshot incomplete: %w", errors.Join(failed...))
	}
	return final, nil
}

// keyListsActive refuses tables whose active backfill is a key list
// (`rowsync verify --repair`): the snapshot would follow it instead of
// copying the whole table.
func (s Snapshot) keyListsActive(ctx context.Context, tables [][2]string) error {
	states, err := s.Store.List(ctx)
	if err != nil {
		return err
	}
	want := make(map[string]bool, len(tables))
	for _, t := range tables {
		want[t[0]+"."+t[1]] = true
	}
	var errs []error
	for _, st := range states {
		if want[st.Name()] && st.Status.Active() && st.Keys != nil {
			errs = append(errs, fmt.Errorf("%s: a backfill of %d listed keys (id %s) is %s: start 'rowsync run' to finish it, "+
				"or cancel it ('rowsync backfill --cancel %s'), then snapshot", st.Name(), len(st.Keys), st.ID, st.Status, st.Name()))
		}
	}
	return errors.Join(errs...)
}

// PinStart makes sure a log source has a checkpoint before any row is
// read, so the log streams every change made during and after the copy:
// with none, start resolves the source's configured start and saves it in
// store (a binlog source does so when it is built, as on the first `run`).
// An existing checkpoint is an error unless force: the pipeline has
// streamed from it, and a snapshot is for a stopped one.
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
			return fmt.Errorf("pipeline %q already has a binlog checkpoint (%s): 'rowsync run' has streamed from it. "+
				"To copy tables into a running pipeline use 'rowsync backfill TABLE...'; with 'rowsync run' stopped, "+
				"pass --force to snapshot anyway ('run' then resumes from the checkpoint and the sinks converge), "+
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
