package main

import (
	"context"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
	mongoproj "github.com/rowsync/rowsync/projector/mongo"
)

// newMongoSink connects to mongo: and builds the projector for the tables
// with a mongo block; nil when no table has one.
func newMongoSink(ctx context.Context, d *deps) (cdc.Sink, error) {
	rs := config.Rules(d.router, func(t config.Table) *mongoproj.TableConfig { return t.Mongo })
	if len(rs) == 0 {
		return nil, nil
	}
	return mongoproj.Open(ctx, *d.cfg.Mongo, rs, d.log.With("sink", "mongo"))
}
