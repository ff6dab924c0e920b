package main

import (
	"errors"
	"log/slog"

	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/pipeline"
)

// newRefetcher is replaced when the refetch package lands.
func newRefetcher(cfg *config.Config, log *slog.Logger) (pipeline.Refetcher, func(), error) {
	return nil, nil, errors.New("mysql: refetch not built yet")
}
