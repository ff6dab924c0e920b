// Package invalidator deletes Cache-Aside keys when the rows behind them
// change, for every writer of the database, from the change stream.
//
// Each table has key templates (package keymap) rendered against the
// before and the after image of a change: an update that changes email
// deletes the keys of the old and of the new email, an insert deletes the
// after keys (killing cached "not found" entries), a delete the before keys.
// A template whose column is NULL in an image yields no key for that image.
// Keys are deduplicated per Apply call and removed with UNLINK (or DEL) in
// one pipelined round trip, at most Config.BatchSize keys per command; with
// a Redis Cluster client the keys of one command share a slot, with a Ring
// client each key gets its own command.
//
// # Delayed second delete
//
// A reader that SELECTed the old row just before the commit may SET it
// after the first delete. With TableConfig.Delay set, Apply also adds each
// key to the sorted set "rowsync:invalidate:delayed:{<name>}" (score: due
// time in Unix ms; ZADD GT keeps the latest due time of a key), in the same
// pipeline and before the UNLINK, and Run pops due keys and deletes them
// again. A second delete removes every stale value whose read→SET window
// (from the start of the reader's SELECT to its SET reaching Redis) is
// shorter than Delay.
//
// On a single Redis (standalone, sentinel) one Lua script pops, deletes and
// ZREMs a batch atomically. On a Cluster or Ring, where a script cannot
// touch keys in other slots, a script moves due keys to the lease set
// "rowsync:invalidate:delayed:{<name>}:processing" (score: lease expiry),
// the keys are deleted grouped by slot, and a second script removes the
// lease; a lease that expires (the process died) goes back to the queue.
//
// What a crash can lose:
//
//   - rowsync crashes: nothing. The ZADD precedes the UNLINK on the same
//     connection, so Redis never applies the first delete without the
//     schedule; a batch whose Apply did not return nil is not acked, so the
//     source redelivers it and both are redone (both are idempotent).
//     Scheduled entries live in Redis; they fire when rowsync runs again,
//     late but not lost. Until then a stale value can be served, which is
//     the cost of a second delete that comes late.
//   - Redis restarts from RDB/AOF, or fails over to an async replica: the
//     surviving data is a prefix of the write history of that server, so a
//     stale SET that survives was written after the ZADD, which survives
//     too. On a Cluster this holds per shard only: the queue and a key live
//     on different shards, and a failover of the queue's shard can lose
//     entries whose stale values survive on another shard.
//   - The broadcast is pub/sub: a subscriber that is not connected misses
//     messages (see Broadcast).
//
// Kafka broadcast is left out: near caches listen on Redis pub/sub.
package invalidator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/keymap"
	"github.com/rowsync/rowsync/metrics"
)

// Invalidator is a cdc.Sink that deletes cache keys. It is safe for
// concurrent use by several shards.
type Invalidator struct {
	client  goredis.UniversalClient
	cfg     Config
	mode    mode
	tables  *cdc.Tables[compiled]
	log     *slog.Logger
	queue   string // delayed-delete sorted set
	leases  string // cluster/ring lease set
	delayed bool   // some table has a Delay

	bufs sync.Pool // *applyBuf

	stopOnce sync.Once
	stop     chan struct{}
	runMu    sync.Mutex
	running  chan struct{} // closed when Run returns; nil if Run never started

	backlog *metrics.Gauge // nil (no-op) unless Instrument was called
}

var (
	_ cdc.Sink             = (*Invalidator)(nil)
	_ cdc.Filter           = (*Invalidator)(nil)
	_ cdc.Pinger           = (*Invalidator)(nil)
	_ metrics.Instrumented = (*Invalidator)(nil)
	_ cdc.Runner           = (*Invalidator)(nil)
	_ cdc.SchemaChecker    = (*Invalidator)(nil)
)

// Instrument registers rowsync_invalidator_backlog on m: delayed second
// deletes queued or leased and not yet done, refreshed by Run at most once
// a second. Call it before Run.
func (v *Invalidator) Instrument(m *metrics.Metrics) {
	v.backlog = m.Gauge("rowsync_invalidator_backlog", "Delayed second deletes queued or leased, not yet done.",
		prometheus.Labels{"name": v.cfg.Name})
}

// mode says how keys are spread over servers.
type mode uint8

const (
	single  mode = iota // one server: multi-key commands, atomic scripts
	cluster             // Redis Cluster: one slot per command
	ring                // go-redis Ring: one key per command
)

// New returns an Invalidator that deletes keys through client (the cache
// Redis, which may differ from the one the projectors write). rules map
// tables to their TableConfig; tables without a rule are not wanted.
// logger may be nil; the caller names the sink in it (attribute sink, as
// the pipeline route). New does not contact Redis.
func New(client goredis.UniversalClient, cfg Config, rules []cdc.TableRule[TableConfig], logger *slog.Logger) (*Invalidator, error) {
	if client == nil {
		return nil, errors.New("invalidator: nil redis client")
	}
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	crules := make([]cdc.TableRule[compiled], len(rules))
	delayed := false
	for i, r := range rules {
		if r.Match == nil {
			errs = append(errs, fmt.Errorf("tables[%d]: no match pattern", i))
		}
		c, err := r.Config.compile()
		if err != nil {
			errs = append(errs, config.Prefix(fmt.Sprintf("tables[%d]", i), err))
		}
		if c.delay > 0 {
			delayed = true
		}
		crules[i] = cdc.TableRule[compiled]{Match: r.Match, PK: r.PK, Config: c}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalidator config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	v := &Invalidator{
		client:  client,
		cfg:     cfg,
		tables:  cdc.NewTables(crules),
		log:     logger,
		queue:   "rowsync:invalidate:delayed:{" + cfg.Name + "}",
		delayed: delayed,
		stop:    make(chan struct{}),
	}
	v.leases = v.queue + ":processing"
	switch client.(type) {
	case *goredis.ClusterClient:
		v.mode = cluster
	case *goredis.Ring:
		v.mode = ring
	}
	v.bufs.New = func() any { return &applyBuf{seen: map[string]int{}} }
	return v, nil
}

// Wants reports whether a rule matches db.table.
func (v *Invalidator) Wants(db, table string) bool {
	return v.tables.Lookup(db, table) != nil
}

// CheckSchema checks the rule for db.table against the table's columns
// and primary key (cdc.SchemaChecker): key templates and when_changed may
// name only known columns, a {pk} key needs a primary key or a configured
// pk, and so may the configured pk. It returns nil for a table no rule
// matches.
func (v *Invalidator) CheckSchema(db, table string, columns, pk []string) error {
	tr := v.tables.Lookup(db, table)
	if tr == nil {
		return nil
	}
	var errs []error
	for _, c := range tr.PK {
		if !slices.Contains(columns, c) {
			errs = append(errs, fmt.Errorf("pk: unknown column %q", c))
		}
	}
	for i, k := range tr.Config.keys {
		if err := k.tpl.CheckColumns(columns); err != nil {
			errs = append(errs, fmt.Errorf("keys[%d]: %w", i, err))
		}
		if k.tpl.UsesPK() && len(pk) == 0 && len(tr.PK) == 0 {
			errs = append(errs, fmt.Errorf("keys[%d] %q needs {pk} but the table has no primary key: set pk: [columns]", i, k.tpl))
		}
		for _, c := range k.when {
			if !slices.Contains(columns, c) {
				errs = append(errs, fmt.Errorf("keys[%d].when_changed: unknown column %q", i, c))
			}
		}
	}
	return errors.Join(errs...)
}

// Ping checks that the cache Redis answers.
func (v *Invalidator) Ping(ctx context.Context) error {
	if err := v.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping cache redis: %w", err)
	}
	return nil
}

// applyBuf holds one Apply's keys; pooled to keep Apply allocation-light.
type applyBuf struct {
	seen  map[string]int  // key -> index in keys
	keys  []string        // deduplicated, first-seen order
	delay []time.Duration // per key: longest delay asked for, 0 for none
}

func (b *applyBuf) reset() {
	clear(b.seen)
	b.keys = b.keys[:0]
	b.delay = b.delay[:0]
}

func (b *applyBuf) add(key string, d time.Duration) {
	if i, ok := b.seen[key]; ok {
		if d > b.delay[i] {
			b.delay[i] = d
		}
		return
	}
	b.seen[key] = len(b.keys)
	b.keys = append(b.keys, key)
	b.delay = append(b.delay, d)
}

// Apply deletes the keys of events' rows in one pipelined round trip. A Redis
// error is transient (the pipeline retries the slice; deletes are
// idempotent). An event whose template cannot render for a reason other
// than a NULL column is reported in a *cdc.BatchError; its other keys are
// still deleted.
func (v *Invalidator) Apply(ctx context.Context, events []cdc.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := v.bufs.Get().(*applyBuf)
	defer func() { b.reset(); v.bufs.Put(b) }()
	var berr cdc.BatchError
	for i := range events {
		ev := &events[i]
		rule := v.tables.Lookup(ev.DB, ev.Table)
		if rule == nil || ev.Read && !rule.Config.backfill {
			continue // a backfilled row changes nothing a cache holds
		}
		if err := collect(ev, rule, b.add); err != nil {
			berr.Fail(i, err)
		}
	}
	if len(b.keys) > 0 {
		if err := v.exec(ctx, b); err != nil {
			return err
		}
	}
	return berr.Err()
}

// collect renders the keys of one event and hands each to add with the
// table's delay. It returns the first render error other than ErrNull,
// after adding every key that did render.
func collect(ev *cdc.Event, rule *cdc.TableRule[compiled], add func(string, time.Duration)) error {
	pk := ev.PK
	if len(pk) == 0 {
		pk = rule.PK
	}
	var images [2]*cdc.Row
	switch ev.Op {
	case cdc.Insert:
		images[0] = ev.After
	case cdc.Delete:
		images[0] = ev.Before
	case cdc.Update:
		images[0], images[1] = ev.Before, ev.After
	default:
		return fmt.Errorf("unknown op %v: %w", ev.Op, cdc.ErrPermanent)
	}
	if images[0] == nil && images[1] == nil {
		// A source without images: the event names nothing we can key.
		return fmt.Errorf("%s event without a row image: %w", ev.Op, cdc.ErrPermanent)
	}
	var first error
	for ki := range rule.Config.keys {
		k := &rule.Config.keys[ki]
		if ev.Op == cdc.Update && len(k.when) > 0 && ev.Before != nil && ev.After != nil &&
			!changed(k.when, ev.Before, ev.After) {
			continue
		}
		for _, row := range images {
			if row == nil {
				continue
			}
			key, err := k.tpl.Render(keymap.Input{DB: ev.DB, Table: ev.Table, PK: pk, Row: row, Columns: ev.Columns})
			if err != nil {
				if !errors.Is(err, keymap.ErrNull) && first == nil {
					first = fmt.Errorf("key %q: %w", k.tpl.String(), err)
				}
				continue
			}
			add(key, rule.Config.delay)
		}
	}
	return first
}

// changed reports whether any of cols differs between before and after. A
// column missing from either image counts as changed (the source may send
// partial images; evicting is the safe answer).
func changed(cols []string, before, after *cdc.Row) bool {
	for _, c := range cols {
		i, ok := before.Layout().Index(c)
		if !ok {
			return true // missing
		}
		_, a, aok := before.At(i)
		b, bok := after.LookupAt(before.Layout(), i, c)
		if !aok || !bok || !sameValue(a, b) {
			return true
		}
	}
	return false
}

func sameValue(a, b cdc.Value) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case []byte:
		y, ok := b.([]byte)
		return ok && string(x) == string(y)
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	}
	return reflect.DeepEqual(a, b)
}

// exec sends the schedule, the deletes and the broadcast in one pipeline.
// The ZADD goes first: Redis runs one connection's commands in order, so it
// never applies a first delete whose second delete is not scheduled.
func (v *Invalidator) exec(ctx context.Context, b *applyBuf) error {
	pipe := v.client.Pipeline()
	n := v.cfg.BatchSize
	if v.delayed {
		now := time.Now()
		var zs []goredis.Z
		for i, k := range b.keys {
			if b.delay[i] <= 0 {
				continue
			}
			zs = append(zs, goredis.Z{Score: float64(dueMillis(now, b.delay[i])), Member: k})
			if len(zs) == n {
				pipe.ZAddGT(ctx, v.queue, zs...)
				zs = nil
			}
		}
		if len(zs) > 0 {
			pipe.ZAddGT(ctx, v.queue, zs...)
		}
	}
	v.queueDeletes(ctx, pipe, b.keys)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("%s %d key(s): %w", v.cfg.Command, len(b.keys), err)
	}
	return nil
}

// dueMillis is now+d in Unix milliseconds, rounded up so a delete never
// fires early.
func dueMillis(now time.Time, d time.Duration) int64 {
	return now.Add(d + time.Millisecond - 1).UnixMilli()
}

// queueDeletes adds the delete commands for keys (grouped as the client
// mode requires) and their broadcast to pipe.
func (v *Invalidator) queueDeletes(ctx context.Context, pipe goredis.Pipeliner, keys []string) {
	n := v.cfg.BatchSize
	del := func(ks []string) {
		if v.cfg.Command == "del" {
			pipe.Del(ctx, ks...)
		} else {
			pipe.Unlink(ctx, ks...)
		}
	}
	switch v.mode {
	case single:
		for i := 0; i < len(keys); i += n {
			del(keys[i:min(i+n, len(keys))])
		}
	case cluster:
		bySlot := map[uint16][]string{}
		for _, k := range keys {
			s := keySlot(k)
			bySlot[s] = append(bySlot[s], k)
		}
		for _, ks := range bySlot {
			for i := 0; i < len(ks); i += n {
				del(ks[i:min(i+n, len(ks))])
			}
		}
	case ring:
		for _, k := range keys {
			del([]string{k})
		}
	}
	if ch := v.cfg.Broadcast.Channel; ch != "" {
		for i := 0; i < len(keys); i += n {
			// a JSON array: a key holding "\n" (a column value can) must not
			// read as two keys
			msg, _ := json.Marshal(keys[i:min(i+n, len(keys))]) // []string always encodes
			pipe.Publish(ctx, ch, msg)
		}
	}
}

// Close stops Run and waits for it to return (or ctx to end). It does not
// close the Redis client, which the caller owns.
func (v *Invalidator) Close(ctx context.Context) error {
	v.stopOnce.Do(func() { close(v.stop) })
	v.runMu.Lock()
	done := v.running
	v.runMu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close invalidator: %w", ctx.Err())
	}
}
