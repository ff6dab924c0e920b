package invalidator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/internal/backoff"
)

// leaseFor is how long a Cluster/Ring scheduler pass owns the keys it
// claimed; after that another pass (this process's or another's) requeues
// them.
const leaseFor = 30 * time.Second

// popScript pops up to ARGV[2] keys due by ARGV[1] from KEYS[1], deletes
// them with ARGV[3] (unlink or del), removes them from the queue,
// publishes them on ARGV[4] if set, and returns {count, next due score or
// -1}. It touches keys it does not declare, so it runs on a single server
// only.
var popScript = goredis.NewScript(`
local ks = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ks > 0 then
  redis.call(ARGV[3], unpack(ks))
  redis.call('ZREM', KEYS[1], unpack(ks))
  if ARGV[4] ~= '' then
    redis.call('PUBLISH', ARGV[4], cjson.encode(ks)) -- a JSON array, as the first delete publishes
  end
end
local nx = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#ks, nx[2] or '-1'}
`)

// claimScript requeues expired leases of KEYS[2] into KEYS[1], then moves
// up to ARGV[2] keys due by ARGV[1] from KEYS[1] to KEYS[2] with lease
// score ARGV[3], and returns {next due score or -1, key...}. Both sets
// carry the same hash tag, so they share a slot.
var claimScript = goredis.NewScript(`
local exp = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, k in ipairs(exp) do
  redis.call('ZADD', KEYS[1], 'GT', ARGV[1], k)
end
if #exp > 0 then redis.call('ZREM', KEYS[2], unpack(exp)) end
local ks = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ks > 0 then
  redis.call('ZREM', KEYS[1], unpack(ks))
  for _, k in ipairs(ks) do
    redis.call('ZADD', KEYS[2], ARGV[3], k)
  end
end
local nx = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local out = {nx[2] or '-1'}
for i = 1, #ks do out[i + 1] = ks[i] end
return out
`)

// ackScript removes from KEYS[1] the keys ARGV[2..] whose lease is still
// ARGV[1] (a key requeued and claimed again keeps its newer lease).
var ackScript = goredis.NewScript(`
local n = 0
for i = 2, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) == tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
`)

// Run drains the delayed-delete queue until ctx ends or Close is called,
// then returns nil. Redis errors are logged and retried with capped
// backoff and jitter; they never end Run. Without any table Delay, Run only
// waits. Call it once, typically in the run loop's errgroup.
func (v *Invalidator) Run(ctx context.Context) error {
	v.runMu.Lock()
	if v.running != nil {
		v.runMu.Unlock()
		return errors.New("invalidator: Run called twice")
	}
	done := make(chan struct{})
	v.running = done
	v.runMu.Unlock()
	defer close(done)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-v.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if !v.delayed {
		<-ctx.Done()
		return nil
	}

	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	var counted time.Time // last backlog refresh
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		wait, err := v.pass(ctx)
		if err == nil && v.backlog != nil && time.Since(counted) >= time.Second {
			var n int64
			if n, err = v.Pending(ctx); err == nil {
				v.backlog.Set(float64(n))
				counted = time.Now()
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			wait = passRetry.Delay(failures)
			v.log.Warn("delayed delete pass", "err", err, "retry_in", wait)
		} else {
			failures = 0
		}
		timer.Reset(wait)
	}
}

// passRetry spaces failed delayed-delete passes: 50ms doubling to 5s, with
// jitter.
var passRetry = backoff.Policy{Min: 50 * time.Millisecond, Max: 5 * time.Second}

// pass pops one batch of due keys and returns how long to wait before the
// next pass: zero when the batch was full, else until the next entry is
// due, at most Poll.
func (v *Invalidator) pass(ctx context.Context) (time.Duration, error) {
	now := time.Now()
	batch := v.cfg.BatchSize
	var n int
	var next int64
	var err error
	if v.mode == single {
		n, next, err = v.popSingle(ctx, now)
	} else {
		n, next, err = v.popSharded(ctx, now)
	}
	if err != nil {
		return 0, err
	}
	if n >= batch {
		return 0, nil
	}
	wait := v.cfg.Poll
	if next >= 0 {
		if d := time.Until(time.UnixMilli(next)); d < wait {
			wait = max(d, time.Millisecond)
		}
	}
	return wait, nil
}

func (v *Invalidator) popSingle(ctx context.Context, now time.Time) (int, int64, error) {
	res, err := popScript.Run(ctx, v.client, []string{v.queue},
		now.UnixMilli(), v.cfg.BatchSize, v.cfg.Command, v.cfg.Broadcast.Channel).Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("pop delayed deletes: %w", err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("pop delayed deletes: unexpected reply %v", res)
	}
	n, _ := res[0].(int64)
	return int(n), parseScore(res[1]), nil
}

// popSharded claims due keys, deletes them grouped as the client mode
// requires, then releases the claim. A crash between the steps leaves the
// keys leased; they are requeued when the lease expires.
func (v *Invalidator) popSharded(ctx context.Context, now time.Time) (int, int64, error) {
	lease := now.Add(leaseFor).UnixMilli()
	res, err := claimScript.Run(ctx, v.client, []string{v.queue, v.leases},
		now.UnixMilli(), v.cfg.BatchSize, lease).Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("claim delayed deletes: %w", err)
	}
	if len(res) == 0 {
		return 0, 0, fmt.Errorf("claim delayed deletes: empty reply")
	}
	next := parseScore(res[0])
	keys := make([]string, 0, len(res)-1)
	for _, r := range res[1:] {
		if s, ok := r.(string); ok {
			keys = append(keys, s)
		}
	}
	if len(keys) == 0 {
		return 0, next, nil
	}
	pipe := v.client.Pipeline()
	v.queueDeletes(ctx, pipe, keys)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, 0, fmt.Errorf("delayed %s %d key(s): %w", v.cfg.Command, len(keys), err)
	}
	args := make([]any, 0, len(keys)+1)
	args = append(args, lease)
	for _, k := range keys {
		args = append(args, k)
	}
	if err := ackScript.Run(ctx, v.client, []string{v.leases}, args...).Err(); err != nil {
		return 0, 0, fmt.Errorf("release delayed deletes: %w", err)
	}
	return len(keys), next, nil
}

// parseScore reads a score reply ("1712345678901", "-1"); -1 if none.
func parseScore(r any) int64 {
	s, ok := r.(string)
	if !ok {
		return -1
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return -1
	}
	return int64(f)
}

// Pending returns the number of keys waiting for their second delete
// (queued plus leased), for metrics and tests.
func (v *Invalidator) Pending(ctx context.Context) (int64, error) {
	pipe := v.client.Pipeline()
	q := pipe.ZCard(ctx, v.queue)
	l := pipe.ZCard(ctx, v.leases)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("count delayed deletes: %w", err)
	}
	return q.Val() + l.Val(), nil
}
