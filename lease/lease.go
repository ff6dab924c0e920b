// Package lease lets several rowsync processes run the same binlog
// pipeline with one active at a time: the holder of a Redis lease streams,
// the others wait as standbys and take over when the holder stops renewing
// (crash, network partition). A holder that fails to renew before the
// lease expires stops streaming at once (Keep returns ErrLost), so two
// holders overlap by at most one renew interval.
//
// The lease does not fence writes: a holder frozen longer than the TTL
// (a VM pause) may still apply the batch it had in flight after a standby
// took over. Use the version guard (version_field) with HA so such a late,
// older write is skipped.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ErrLost is returned by Keep when the lease was taken over or could not
// be renewed before it expired.
var ErrLost = errors.New("lease lost")

// Config configures a lease.
type Config struct {
	// TTL is how long a lease lives without renewal; a standby takes over
	// at most this long after the holder died. Default: 15s
	TTL time.Duration `yaml:"ttl"`
	// Key is the Redis key. Default: rowsync:lease:<pipeline name>
	Key string `yaml:"key"`
}

// Validate reports every problem, each prefixed by its key.
func (c Config) Validate() error {
	if c.TTL < 0 || (c.TTL > 0 && c.TTL < time.Second) {
		return fmt.Errorf("ttl: %v must be at least 1s", c.TTL)
	}
	return nil
}

// Lease is one process's claim.
type Lease struct {
	rdb   goredis.UniversalClient
	key   string
	owner string
	ttl   time.Duration
	log   *slog.Logger
}

// New returns a lease for the pipeline called name; it does no I/O.
func New(rdb goredis.UniversalClient, c Config, name string, log *slog.Logger) *Lease {
	if c.TTL == 0 {
		c.TTL = 15 * time.Second
	}
	if c.Key == "" {
		c.Key = "rowsync:lease:" + name
	}
	host, _ := os.Hostname()
	owner := fmt.Sprintf("%s/%d/%x", host, os.Getpid(), rand.Uint64())
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lease{rdb: rdb, key: c.Key, owner: owner, ttl: c.TTL, log: log}
}

// Owner identifies this process in the lease value.
func (l *Lease) Owner() string { return l.owner }

// renew extends the lease only if this process still holds it.
var renew = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)

// release deletes the lease only if this process holds it.
var release = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// Acquire blocks until this process holds the lease or ctx ends. Redis
// errors are retried; they only delay the acquisition.
func (l *Lease) Acquire(ctx context.Context) error {
	logged := false
	for {
		ok, err := l.rdb.SetNX(ctx, l.key, l.owner, l.ttl).Result()
		switch {
		case err == nil && ok:
			l.log.Info("lease acquired", "key", l.key, "owner", l.owner, "ttl", l.ttl)
			return nil
		case err != nil && ctx.Err() == nil:
			l.log.Warn("lease: redis error, retrying", "key", l.key, "err", err)
		case err == nil && !logged:
			holder, _ := l.rdb.Get(ctx, l.key).Result()
			l.log.Info("standby: waiting for the lease", "key", l.key, "holder", holder)
			logged = true
		}
		t := time.NewTimer(l.ttl / 3)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Keep renews the lease every TTL/3 until ctx ends (then it releases it
// and returns nil) or the lease is lost (ErrLost). Transient Redis errors
// are tolerated until the lease would have expired.
func (l *Lease) Keep(ctx context.Context) error {
	every := l.ttl / 3
	valid := time.Now().Add(l.ttl)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := release.Run(rctx, l.rdb, []string{l.key}, l.owner).Err(); err != nil {
				l.log.Warn("lease: release failed; it expires by itself", "key", l.key, "err", err)
			}
			return nil
		case <-t.C:
		}
		start := time.Now()
		n, err := renew.Run(ctx, l.rdb, []string{l.key}, l.owner, strconv.FormatInt(l.ttl.Milliseconds(), 10)).Int()
		switch {
		case err == nil && n == 1:
			valid = start.Add(l.ttl)
		case err == nil:
			return fmt.Errorf("%w: %s is held by another process", ErrLost, l.key)
		case ctx.Err() != nil:
		default:
			// Stop early enough that a standby cannot start before we do.
			if time.Until(valid) < every {
				return fmt.Errorf("%w: could not renew %s: %v", ErrLost, l.key, err)
			}
			l.log.Warn("lease: renew failed, retrying", "key", l.key, "err", err)
		}
	}
}
