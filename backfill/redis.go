package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store in one Redis hash per pipeline (RedisKey), beside the
// checkpoint. Its fields:
//
//	state:<db>.<table>   the table's State as JSON
//	cancel:<db>.<table>  the ID of the backfill asked to stop
//	owner                the newest beat: {"owner": "host/pid", "at": time}
//
// Request, Update and Cancel run as Lua scripts, so each check and its
// write are one atomic step for every client of the server. One key per
// pipeline keeps a Redis Cluster happy. The client is injected and not
// closed by Close.
type Redis struct {
	rdb redis.Cmdable
	key string
}

var _ Store = (*Redis)(nil)

// Field name prefixes and the owner field of the hash.
const (
	stateField  = "state:"
	cancelField = "cancel:"
	ownerField  = "owner"
)

// NewRedis returns a store in the hash key.
func NewRedis(rdb redis.Cmdable, key string) (*Redis, error) {
	if rdb == nil {
		return nil, errors.New("backfill: nil redis client")
	}
	if key == "" {
		return nil, errors.New("backfill: empty redis key")
	}
	return &Redis{rdb: rdb, key: key}, nil
}

// Key returns the hash the store lives in.
func (r *Redis) Key() string { return r.key }

// activeOf is the Lua expression "the state JSON in old is Requested or
// Running"; it reads only the status, so the rest of the JSON may evolve.
const activeOf = `local function active(old)
  if not old then return false end
  local st = cjson.decode(old).status
  return st == 'requested' or st == 'running'
end
`

// requestScript: KEYS[1] hash, ARGV[1] table name, ARGV[2] state JSON.
// 0 when the table's backfill is active; else stores it, drops an old
// cancel flag and returns 1.
var requestScript = redis.NewScript(activeOf + `
if active(redis.call('HGET', KEYS[1], 'state:' .. ARGV[1])) then return 0 end
redis.call('HSET', KEYS[1], 'state:' .. ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[1], 'cancel:' .. ARGV[1])
return 1
`)

// updateScript: KEYS[1] hash, ARGV[1] table name, ARGV[2] ID, ARGV[3]
// state JSON. 0 unless the stored state has the ID; else stores it.
var updateScript = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], 'state:' .. ARGV[1])
if not old or cjson.decode(old).id ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state:' .. ARGV[1], ARGV[3])
return 1
`)

// cancelScript: KEYS[1] hash, ARGV[1] table name. 0 when the table has no
// active backfill; else flags its ID and returns 1.
var cancelScript = redis.NewScript(activeOf + `
local old = redis.call('HGET', KEYS[1], 'state:' .. ARGV[1])
if not active(old) then return 0 end
redis.call('HSET', KEYS[1], 'cancel:' .. ARGV[1], cjson.decode(old).id)
return 1
`)

// List returns every state, ordered by Requested (then name).
func (r *Redis) List(ctx context.Context) ([]State, error) {
	all, err := r.rdb.HGetAll(ctx, r.key).Result()
	if err != nil {
		return nil, fmt.Errorf("hgetall %s: %w", r.key, err)
	}
	var out []State
	for field, v := range all {
		if !strings.HasPrefix(field, stateField) {
			continue
		}
		var st State
		if err := json.Unmarshal([]byte(v), &st); err != nil {
			return nil, fmt.Errorf("%s field %s: %w", r.key, field, err)
		}
		out = append(out, st)
	}
	sortStates(out)
	return out, nil
}

// Request stores st unless the table has an active backfill.
func (r *Redis) Request(ctx context.Context, st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode backfill state: %w", err)
	}
	ok, err := requestScript.Run(ctx, r.rdb, []string{r.key}, st.Name(), b).Int()
	if err != nil {
		return fmt.Errorf("request backfill of %s in %s: %w", st.Name(), r.key, err)
	}
	if ok == 0 {
		return ErrActive
	}
	return nil
}

// Update replaces the state if the stored one has st.ID.
func (r *Redis) Update(ctx context.Context, st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode backfill state: %w", err)
	}
	ok, err := updateScript.Run(ctx, r.rdb, []string{r.key}, st.Name(), st.ID, b).Int()
	if err != nil {
		return fmt.Errorf("update backfill of %s in %s: %w", st.Name(), r.key, err)
	}
	if ok == 0 {
		return ErrReplaced
	}
	return nil
}

// Cancel flags the table's active backfill.
func (r *Redis) Cancel(ctx context.Context, db, table string) (bool, error) {
	ok, err := cancelScript.Run(ctx, r.rdb, []string{r.key}, db+"."+table).Int()
	if err != nil {
		return false, fmt.Errorf("cancel backfill of %s.%s in %s: %w", db, table, r.key, err)
	}
	return ok == 1, nil
}

// Cancelled reports whether the backfill with id was asked to stop.
func (r *Redis) Cancelled(ctx context.Context, db, table, id string) (bool, error) {
	v, err := r.rdb.HGet(ctx, r.key, cancelField+db+"."+table).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("hget %s: %w", r.key, err)
	}
	return v == id, nil
}

// Beat records owner as running now (this process's clock).
func (r *Redis) Beat(ctx context.Context, owner string) error {
	b, err := json.Marshal(beat{Owner: owner, At: time.Now()})
	if err != nil {
		return fmt.Errorf("encode beat: %w", err)
	}
	if err := r.rdb.HSet(ctx, r.key, ownerField, b).Err(); err != nil {
		return fmt.Errorf("hset %s: %w", r.key, err)
	}
	return nil
}

// Owner returns the newest beat; "" and the zero time when none was made.
func (r *Redis) Owner(ctx context.Context) (string, time.Time, error) {
	v, err := r.rdb.HGet(ctx, r.key, ownerField).Bytes()
	if errors.Is(err, redis.Nil) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("hget %s: %w", r.key, err)
	}
	var b beat
	if err := json.Unmarshal(v, &b); err != nil {
		return "", time.Time{}, fmt.Errorf("%s field %s: %w", r.key, ownerField, err)
	}
	return b.Owner, b.At, nil
}

// Close does nothing: the client belongs to the caller.
func (r *Redis) Close() error { return nil }
