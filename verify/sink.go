package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/rowsync/rowsync/cdc"
	mongoproj "github.com/rowsync/rowsync/projector/mongo"
	redisproj "github.com/rowsync/rowsync/projector/redis"
	"github.com/rowsync/rowsync/refetch"
)

// ErrUnsupported is returned by Sink for a sink verify cannot compare.
var ErrUnsupported = errors.New("verify cannot compare this sink")

// Sink compares db.table with sink, as its rule for the table renders
// the rows: a Redis or a MongoDB projector (Redis, Mongo); an error
// wrapping ErrUnsupported for any other sink. A new sink that holds rows
// gets its comparison here.
func Sink(ctx context.Context, rf *refetch.Refetcher, sink cdc.Sink, db, table string, opt Options) (Stats, error) {
	switch s := sink.(type) {
	case *redisproj.Projector:
		im, ok := s.Image(db, table)
		if !ok {
			return Stats{}, fmt.Errorf("no %s rule matches %s.%s", redisproj.RuleKey, db, table)
		}
		return Redis(ctx, rf, s.Client(), im, db, table, opt)
	case *mongoproj.Projector:
		im, ok := s.Image(db, table)
		if !ok {
			return Stats{}, fmt.Errorf("no %s rule matches %s.%s", mongoproj.RuleKey, db, table)
		}
		return Mongo(ctx, rf, im, db, table, opt)
	}
	return Stats{}, fmt.Errorf("%T: %w", sink, ErrUnsupported)
}
