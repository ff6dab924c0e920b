package checkpoint

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/filecheck"
)

// Config is the checkpoint: block: where a binlog source keeps its
// position. Set redis or file, not both.
// Default: Redis (the top-level redis: connection), key
// rowsync:checkpoint:<name>.
type Config struct {
	// Redis keeps the position in Redis, the default store.
	Redis *RedisConfig `yaml:"redis"`
	// File keeps the position in a JSON file instead, written atomically.
	// Default: none (Redis).
	File string `yaml:"file"`
}

// RedisConfig tunes the Redis store.
type RedisConfig struct {
	// Prefix of the key; the key is <prefix><name>. Default: rowsync:checkpoint:
	Prefix string `yaml:"prefix"`
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	if c.Redis != nil && c.File != "" {
		return errors.New("set redis or file, not both")
	}
	return nil
}

// UsesRedis reports whether the store is Redis (the default).
func (c Config) UsesRedis() bool { return c.File == "" }

// Open builds the configured store for the pipeline called name. rdb is
// used by the Redis store only and may be nil for a file store.
func Open(c Config, name string, rdb redis.Cmdable) (Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.UsesRedis() {
		return NewFile(c.File)
	}
	var prefix string
	if c.Redis != nil {
		prefix = c.Redis.Prefix
	}
	return NewRedis(rdb, prefix, name)
}

// Check is the store's connection test for `rowsync check`: the file's
// directory is writable. The Redis store makes none of its own (the redis:
// block's check tries that connection).
func (c Config) Check(key string) (string, cdc.Pinger) {
	if c.UsesRedis() {
		return key, nil
	}
	return key + ".file " + c.File, cdc.PingFunc(func(context.Context) error {
		return filecheck.WritableDir(filepath.Dir(c.File))
	})
}
