package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/rowsync/rowsync/backfill"
	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/metrics"
	"github.com/rowsync/rowsync/pipeline"
	"github.com/rowsync/rowsync/source/binlog"
)

// runBackfills wraps run's stream in the backfill engine: it returns the
// wrapped source and the engine that runs `rowsync backfill` requests
// inside this process, or src and nil (logged) when the pipeline cannot
// backfill (no MySQL to read rows from, no store beside the checkpoint).
// closeAll releases what it opened.
func runBackfills(d *deps, src cdc.Source, routes []pipeline.Route, owner string, m *metrics.Metrics,
	log *slog.Logger) (out cdc.Source, eng *backfill.Engine, closeAll func(), err error) {
	noop := func() {}
	rc, err := snapshotMySQL(d.cfg)
	if err != nil {
		log.Info("backfill off: no MySQL to read rows from (set mysql: {dsn: ...})")
		return src, nil, noop, nil
	}
	store, err := backfillStore(d)
	if err != nil {
		log.Info("backfill off: no store for backfill requests", "err", err)
		return src, nil, noop, nil
	}
	rf, err := backfill.OpenMySQL(rc, log.With("stage", "backfill"))
	if err != nil {
		store.Close()
		return src, nil, noop, err
	}
	tables, err := snapshotTables(d.cfg, routes, nil)
	if err != nil {
		store.Close()
		rf.Close()
		return src, nil, noop, err
	}
	bc, _ := config.Block[backfill.Config](d.cfg, "backfill")
	if owner == "" {
		host, _ := os.Hostname()
		owner = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	// Only the binlog source says how far it has delivered (Batch.Through);
	// chunks of a queue source go at once (see backfill.Source).
	wrapped := backfill.NewSource(src, d.cfg.Source == binlog.Name)
	eng = &backfill.Engine{Store: store, Source: wrapped, MySQL: rf, Tables: tables, Owner: owner,
		Config: bc, Metrics: m, Logger: log}
	if bs, ok := src.(*binlog.Source); ok {
		eng.StreamServer = bs.StreamServerID
	}
	return wrapped, eng, func() { rf.Close(); store.Close() }, nil
}
