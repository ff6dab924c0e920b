package checkpoint

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the Redis key prefix of checkpoints.
const DefaultPrefix = "rowsync:checkpoint:"

// Redis stores a checkpoint as JSON under one key per pipeline
// (<prefix><name>). The client is injected and not closed by Close.
type Redis struct {
	rdb redis.Cmdable
	key string
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store under key prefix+name; an empty prefix means
// DefaultPrefix.
func NewRedis(rdb redis.Cmdable, prefix, name string) (*Redis, error) {
	if rdb == nil {
		return nil, errors.New("checkpoint: nil redis client")
	}
	if name == "" {
		return nil, errors.New("checkpoint: empty pipeline name")
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Redis{rdb: rdb, key: prefix + name}, nil
}

// Key returns the Redis key the checkpoint lives under.
func (r *Redis) Key() string { return r.key }

// Load reads the checkpoint; a missing key gives false.
func (r *Redis) Load(ctx context.Context) (Position, bool, error) {
	b, err := r.rdb.Get(ctx, r.key).Bytes()
	if errors.Is(err, redis.Nil) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, fmt.Errorf("get %s: %w", r.key, err)
	}
	p, err := Unmarshal(b)
	if err != nil {
		return Position{}, false, fmt.Errorf("key %s: %w", r.key, err)
	}
	return p, true, nil
}

// Save writes p; it is durable as far as the Redis server's persistence is.
func (r *Redis) Save(ctx context.Context, p Position) error {
	b, err := p.Marshal()
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	if err := r.rdb.Set(ctx, r.key, b, 0).Err(); err != nil {
		return fmt.Errorf("set %s: %w", r.key, err)
	}
	return nil
}

// Close does nothing: the client belongs to the caller.
func (r *Redis) Close() error { return nil }
