package main

import (
	"context"
	"errors"

	"github.com/rowsync/rowsync/cdc"
)

// newMongoSink is replaced when projector/mongo lands.
func newMongoSink(_ context.Context, d *deps) (cdc.Sink, error) {
	for _, t := range d.cfg.Tables {
		if t.Mongo != nil {
			return nil, errors.New("mongo sink not built yet")
		}
	}
	return nil, nil
}
