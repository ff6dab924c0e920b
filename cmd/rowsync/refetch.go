package main

import (
	"log/slog"

	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/pipeline"
	"github.com/rowsync/rowsync/refetch"
)

// newRefetcher opens the mysql: pool that refetch tables read from.
func newRefetcher(cfg *config.Config, log *slog.Logger) (pipeline.Refetcher, func(), error) {
	r, err := refetch.New(*cfg.MySQL, log.With("stage", "refetch"))
	if err != nil {
		return nil, nil, err
	}
	return r, func() { r.Close() }, nil
}
