package backfill

import (
	"errors"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/checkpoint"
)

// Open returns the Store of the pipeline called name beside its
// checkpoint, chosen as checkpoint.Open chooses: with checkpoint.file set,
// the file <file>.backfill.json (File); otherwise the Redis hash
// <prefix><name>:backfill on rdb (Redis), where <prefix> is the
// checkpoint's (default rowsync:checkpoint:). rdb may be nil for a file
// store.
func Open(c checkpoint.Config, name string, rdb redis.Cmdable) (Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errors.New("backfill: empty pipeline name")
	}
	if !c.UsesRedis() {
		return NewFile(FilePath(c.File))
	}
	prefix := checkpoint.DefaultPrefix
	if c.Redis != nil && c.Redis.Prefix != "" {
		prefix = c.Redis.Prefix
	}
	return NewRedis(rdb, RedisKey(prefix, name))
}

// FilePath is where the file store of a pipeline whose checkpoint file is
// checkpointFile keeps its backfills.
func FilePath(checkpointFile string) string { return checkpointFile + ".backfill.json" }

// RedisKey is the hash the Redis store of pipeline name keeps its
// backfills in, under the checkpoint's key prefix.
func RedisKey(prefix, name string) string { return prefix + name + ":backfill" }

// sortStates orders states as List returns them: by Requested, then name.
func sortStates(states []State) {
	slices.SortFunc(states, func(a, b State) int {
		if c := a.Requested.Compare(b.Requested); c != 0 {
			return c
		}
		return compareNames(a, b)
	})
}

// beat is the owner's heartbeat as the persistent stores keep it.
type beat struct {
	Owner string    `json:"owner"`
	At    time.Time `json:"at"`
}
