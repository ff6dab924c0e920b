package checkpoint

import (
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Config chooses and configures a checkpoint store.
type Config struct {
	// Type is "file" or "redis". Default: file.
	Type string `yaml:"type"`
	// Path is the file store's path. Default: rowsync-checkpoint-<name>.json
	// in the working directory.
	Path string `yaml:"path"`
	// Prefix is the Redis key prefix; the key is <prefix><name>.
	// Default: rowsync:checkpoint:
	Prefix string `yaml:"prefix"`
}

// Validate reports every problem at once, each prefixed by its key.
func (c *Config) Validate() error {
	var errs []error
	switch c.Type {
	case "", "file", "redis":
	default:
		errs = append(errs, fmt.Errorf("type: unknown store %q (want file or redis)", c.Type))
	}
	if c.Type == "redis" && c.Path != "" {
		errs = append(errs, errors.New("path: only for type file"))
	}
	if c.Type != "redis" && c.Prefix != "" {
		errs = append(errs, errors.New("prefix: only for type redis"))
	}
	return errors.Join(errs...)
}

// Open builds the configured store for the pipeline called name. rdb is
// used by the Redis store only and may be nil otherwise.
func Open(c Config, name string, rdb redis.Cmdable) (Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Type == "redis" {
		return NewRedis(rdb, c.Prefix, name)
	}
	path := c.Path
	if path == "" {
		if name == "" {
			return nil, errors.New("checkpoint: empty pipeline name")
		}
		path = "rowsync-checkpoint-" + name + ".json"
	}
	return NewFile(path)
}
