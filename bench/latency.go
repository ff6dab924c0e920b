package main

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

const latDDL = `CREATE TABLE rs_bench.lat (id BIGINT PRIMARY KEY, v INT NOT NULL, note VARCHAR(64))`

// latRows inserts rows 0..n-1 of rs_bench.lat and sets their cache keys.
func latRows(ctx context.Context, db *sql.DB, cache *goredis.Client, n int) error {
	e := &execBatched{ctx: ctx, db: db}
	for i := 0; i < n; i += 1000 {
		e.buf.WriteString("INSERT INTO rs_bench.lat VALUES ")
		for j := i; j < min(i+1000, n); j++ {
			if j > i {
				e.buf.WriteByte(',')
			}
			fmt.Fprintf(&e.buf, "(%d,0,'row %d')", j, j)
		}
		e.add(";")
	}
	e.flush()
	if e.err != nil {
		return e.err
	}
	return setLatKeys(ctx, cache, 0, n)
}

func setLatKeys(ctx context.Context, cache *goredis.Client, lo, hi int) error {
	pipe := cache.Pipeline()
	for i := lo; i < hi; i++ {
		pipe.Set(ctx, "lat:"+strconv.Itoa(i), "cached", 0)
		if pipe.Len() == 1000 || i == hi-1 {
			if _, err := pipe.Exec(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func invalidateTableYAML(extra string) string {
	return "    invalidate:\n      keys: [\"lat:{id}\"]\n" + extra
}

// runInvalidateDrain times invalidations/s: 200k single-row updates of
// 20k cached rows (statements of 100 rows) drained from the binlog into
// UNLINKs, beside a syncer loop sending one DEL per row.
func runInvalidateDrain(ctx context.Context, o *options, t *table) error {
	n := o.n(200_000)
	rows := max(1000, n/10)
	db, err := openMySQL(o)
	if err != nil {
		return err
	}
	defer db.Close()
	drop, err := freshSchema(ctx, db, latDDL)
	if err != nil {
		return err
	}
	defer drop()
	cache := redisDB(cacheDB)
	defer cache.Close()
	defer flush(context.Background(), cacheDB)
	if err := flush(ctx, cacheDB); err != nil {
		return err
	}
	if err := latRows(ctx, db, cache, rows); err != nil {
		return err
	}
	file, pos, err := masterPos(ctx, db)
	if err != nil {
		return err
	}
	e := &execBatched{ctx: ctx, db: db}
	for i := 0; i < n; i += 100 {
		lo := i % rows
		e.add("UPDATE rs_bench.lat SET v=v+1 WHERE id >= %d AND id < %d;", lo, lo+min(100, n-i))
	}
	e.flush()
	if e.err != nil {
		return e.err
	}

	cfg := strings.Replace(binlogConfig("bench-invalidate", file, pos, "lat", 1<<29+103, invalidateTableYAML(""), o.work),
		fmt.Sprintf("db: %d", sinkDB), fmt.Sprintf("db: %d", cacheDB), 1)
	res, redisCPU, err := timedDrain(ctx, o, "bench-invalidate", cfg, n)
	if err != nil {
		return err
	}
	if err := waitDBSize(ctx, cache, 0, 30*time.Second); err != nil {
		return fmt.Errorf("cache keys left after the rowsync drain: %w", err)
	}

	if err := setLatKeys(ctx, cache, 0, rows); err != nil {
		return err
	}
	naive, err := naiveBinlog(ctx, o, cache, file, pos, n, "lat", func(ctx context.Context, key string, _ []any) error {
		return cache.Del(ctx, "lat:"+key[strings.LastIndexByte(key, '_')+1:]).Err()
	})
	if err != nil {
		return fmt.Errorf("naive: %w", err)
	}
	if err := waitDBSize(ctx, cache, 0, 30*time.Second); err != nil {
		return fmt.Errorf("cache keys left after the naive drain: %w", err)
	}
	t.note("%s: %s (includes startup; the syncer/consumer baselines are single-threaded).", "invalidation drain", cpuNote(res.cpu, redisCPU, n))
	rps, nrps := res.rps(), float64(n)/naive.Seconds()
	t.add(row{bench: fmt.Sprintf("binlog → invalidation, drain of %dk updates", n/1000),
		figure: rate(rps, "rows/s"), baseline: rate(nrps, "rows/s") + " (syncer, DEL/row)",
		ratio: ratio(rps, nrps), target: "", pass: ""})
	t.note("invalidation drain: %d updates over %d cached rows, one key each; rowsync %.0f rows/s from process start, %.0f rows/s after the first ack.",
		n, rows, rps, res.steadyRPS)
	return nil
}

// runLatency measures COMMIT → cache key gone at a fixed update rate,
// once with the binlog source's default max_wait and once with 1ms.
func runLatency(ctx context.Context, o *options, t *table) error {
	total := int(float64(o.latRate) * o.latDur.Seconds())
	db, err := openMySQL(o)
	if err != nil {
		return err
	}
	defer db.Close()
	drop, err := freshSchema(ctx, db, latDDL)
	if err != nil {
		return err
	}
	defer drop()
	cache := redisDB(cacheDB)
	defer cache.Close()
	defer flush(context.Background(), cacheDB)

	// Keyspace notifications of generic commands (DEL/UNLINK) on every DB;
	// the previous setting is restored on the way out.
	old, err := cache.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		return err
	}
	prev := old["notify-keyspace-events"]
	flags := prev
	if !strings.ContainsRune(flags, 'K') {
		flags += "K"
	}
	if !strings.ContainsRune(flags, 'g') && !strings.ContainsRune(flags, 'A') {
		flags += "g"
	}
	if err := cache.ConfigSet(ctx, "notify-keyspace-events", flags).Err(); err != nil {
		return err
	}
	defer cache.ConfigSet(context.Background(), "notify-keyspace-events", prev)
	t.note("latency: notify-keyspace-events was %q, set to %q for the run and restored.", prev, flags)

	for _, variant := range []struct{ name, label, extra string }{
		{"bench-latency-default", "default max_wait (20ms), checkpoint.file", ""},
		{"bench-latency-redis-cp", "default max_wait (20ms), checkpoint.redis", checkpointRedis},
		{"bench-latency-1ms", "max_wait: 1ms, checkpoint.file", "    max_wait: 1ms\n"},
	} {
		if err := flush(ctx, cacheDB); err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, "DELETE FROM rs_bench.lat"); err != nil {
			return err
		}
		if err := latRows(ctx, db, cache, total+1); err != nil {
			return err
		}
		lat, err := latencyRun(ctx, o, variant.name, db, cache, total, variant.extra)
		if err != nil {
			return fmt.Errorf("%s: %w", variant.label, err)
		}
		slices.Sort(lat)
		pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
		p99 := pct(0.99)
		t.add(row{bench: fmt.Sprintf("COMMIT → key gone, %d upd/s for %s, %s", o.latRate, o.latDur, variant.label),
			figure:   fmt.Sprintf("p50 %s · p99 %s · max %s", ms(pct(0.5)), ms(p99), ms(lat[len(lat)-1])),
			baseline: "", ratio: "", target: "p99 < 10 ms", pass: verdict(p99 < 10*time.Millisecond)})
	}
	return nil
}

// checkpointRedis as a latency variant's extra config keeps the
// checkpoint in Redis instead of the default file.
const checkpointRedis = "checkpoint: redis"

// latencyRun starts rowsync with an invalidate table, then updates rows
// 0..total-1 at o.latRate, each after setting its key, and returns, per
// update, the time from the commit's return to the key's deletion.
func latencyRun(ctx context.Context, o *options, name string, db *sql.DB, cache *goredis.Client, total int, extra string) ([]time.Duration, error) {
	file, pos, err := masterPos(ctx, db)
	if err != nil {
		return nil, err
	}
	// A fresh name: no checkpoint, so it starts at start: (now).
	cfg := binlogConfig(name, file, pos, "lat", 1<<29+104, invalidateTableYAML(""), o.work)
	cfg = strings.Replace(cfg, fmt.Sprintf("db: %d", sinkDB), fmt.Sprintf("db: %d", cacheDB), 1)
	if extra == checkpointRedis {
		// the checkpoint key lands in the cache DB, flushed between runs
		cfg = strings.Replace(cfg, fmt.Sprintf("checkpoint:\n  file: %s/%s.checkpoint.json\n", o.work, name), "checkpoint:\n  redis: {}\n", 1)
		if !strings.Contains(cfg, "  redis: {}\n") {
			return nil, fmt.Errorf("latency: could not switch %s to a Redis checkpoint", name)
		}
	} else {
		cfg = strings.Replace(cfg, "    include:", extra+"    include:", 1)
	}

	sub := cache.PSubscribe(ctx, fmt.Sprintf("__keyspace@%d__:lat:*", cacheDB))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		return nil, err
	}
	gone := make([]atomic.Int64, total+1)
	var early atomic.Int64
	go func() {
		prefix := fmt.Sprintf("__keyspace@%d__:lat:", cacheDB)
		for m := range sub.Channel(goredis.WithChannelSize(1 << 16)) {
			if m.Payload != "del" && m.Payload != "unlink" {
				continue
			}
			id, err := strconv.Atoi(strings.TrimPrefix(m.Channel, prefix))
			if err != nil || id < 0 || id > total {
				continue
			}
			gone[id].CompareAndSwap(0, time.Now().UnixNano())
		}
	}()

	p, err := startRowsync(ctx, o, name, cfg)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	// Warm up: row `total` must be invalidated before the timed run.
	warm := time.Now()
	if _, err := db.ExecContext(ctx, "UPDATE rs_bench.lat SET v=v+1 WHERE id=?", total); err != nil {
		return nil, err
	}
	for gone[total].Load() == 0 {
		if time.Since(warm) > time.Minute || p.exited() {
			return nil, fmt.Errorf("rowsync did not invalidate the warm-up key: %s", p.tail())
		}
		time.Sleep(5 * time.Millisecond)
	}

	committed := make([]int64, total)
	interval := time.Second / time.Duration(o.latRate)
	start := time.Now()
	behind := 0
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		} else if d < -50*time.Millisecond {
			behind++
		}
		if _, err := db.ExecContext(ctx, "UPDATE rs_bench.lat SET v=v+1 WHERE id=?", i); err != nil {
			return nil, err
		}
		committed[i] = time.Now().UnixNano()
	}
	achieved := float64(total) / time.Since(start).Seconds()
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := 0
		for i := range total {
			if gone[i].Load() == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d keys never invalidated", missing, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	lat := make([]time.Duration, total)
	for i := range total {
		d := time.Duration(gone[i].Load() - committed[i])
		if d < 0 {
			early.Add(1)
			d = 0
		}
		lat[i] = d
	}
	o.log.Info("latency run", "updates", total, "achieved_rate", int(achieved), "late_writes", behind, "deleted_before_commit_returned", early.Load())
	if achieved < 0.9*float64(o.latRate) {
		return nil, fmt.Errorf("writer reached only %.0f updates/s of %d", achieved, o.latRate)
	}
	return lat, nil
}
