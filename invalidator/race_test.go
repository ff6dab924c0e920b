package invalidator

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/cdc"
)

var long = flag.Bool("long", os.Getenv("ROWSYNC_LONG") == "1", "run the long soak")

// Race test parameters. The guarantee is: no stale value survives when the
// delay exceeds every reader's read→SET window. Readers here sleep up to
// readerPause between SELECT and SET, and a Redis-side guard drops any SET
// that reaches Redis more than readerBound after the reader started its
// SELECT (an application with a load deadline) — on a loaded 2-core box a
// goroutine can stall far beyond the pause, and the guard makes the
// precondition hold instead of hoping. raceDelay > readerBound, with margin.
const (
	raceRows    = 50
	raceReaders = 8
	raceWriters = 4
	readerPause = 3 * time.Millisecond
	readerBound = 200 * time.Millisecond
	raceDelay   = 500 * time.Millisecond
	minLag      = 2 * time.Millisecond // stream lag: commit → Apply
	maxLagExtra = 3 * time.Millisecond
	raceRounds  = 10 // stale values are counted after each round
)

// guardedSet SETs KEYS[1] to ARGV[1] unless more than ARGV[3] µs passed
// since ARGV[2] (Unix µs, the reader's start), by Redis's clock.
var guardedSet = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if now - tonumber(ARGV[2]) > tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`)

type raceVariant int

const (
	variantDelay     raceVariant = iota // invalidator with the delayed second delete
	variantNoDelay                      // invalidator, first delete only
	variantAppDelete                    // no invalidator: writer DELs after COMMIT
)

func (v raceVariant) String() string {
	return [...]string{"invalidator+delay", "invalidator, no delay", "app delete-after-write"}[v]
}

type raceResult struct {
	reads, writes, misses, dropped int64
	stale                          int
	elapsed                        time.Duration
}

func openRaceDB(t *testing.T) (*sql.DB, string) {
	t.Helper()
	root, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	schema := fmt.Sprintf("rowsync_inv_race_%d", time.Now().UnixNano())
	if _, err := root.Exec("CREATE DATABASE " + schema); err != nil {
		t.Fatalf("mariadb on 127.0.0.1:3306: %v", err)
	}
	t.Cleanup(func() {
		r, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
		if err == nil {
			if _, err := r.Exec("DROP DATABASE " + schema); err != nil {
				t.Errorf("drop %s: %v", schema, err)
			}
			r.Close()
		}
	})
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/"+schema)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(raceReaders + raceWriters + 2)
	db.SetMaxIdleConns(raceReaders + raceWriters + 2)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(64) NOT NULL,
		name VARCHAR(64) NOT NULL, v INT NOT NULL) ENGINE=InnoDB`); err != nil {
		t.Fatal(err)
	}
	for i := range raceRows {
		if _, err := db.Exec("INSERT INTO users VALUES (?, ?, ?, 0)", i, fmt.Sprintf("u%d@x", i), "n"); err != nil {
			t.Fatal(err)
		}
	}
	return db, schema
}

func cacheValue(email, name string, v int64) string {
	return email + "|" + name + "|" + strconv.FormatInt(v, 10)
}

// TestCacheAsideRace runs read-through readers against writers on the same
// rows, feeds the writers' committed changes to the invalidator in commit
// order with a stream lag, and counts cached values that differ from MySQL
// once everything has settled. With the delayed delete the count must be 0;
// without it, and with in-app delete-after-write, it is measured and logged.
func TestCacheAsideRace(t *testing.T) {
	ops := int64(20_000)
	if *long {
		ops = 100_000
	}
	db, schema := openRaceDB(t)
	c, prefix := newRedis(t)
	results := map[raceVariant]raceResult{}
	for _, variant := range []raceVariant{variantDelay, variantNoDelay, variantAppDelete} {
		r := runRace(t, db, c, schema, fmt.Sprintf("%sv%d:", prefix, variant), variant, ops)
		results[variant] = r
		t.Logf("%-24s ops=%d (reads %d, misses %d, writes %d) in %s: stale=%d (guard-dropped SETs: %d)",
			variant, r.reads+r.writes, r.reads, r.misses, r.writes, r.elapsed.Round(time.Millisecond), r.stale, r.dropped)
	}
	if s := results[variantDelay].stale; s != 0 {
		t.Errorf("%d stale cached value(s) with the delayed delete on", s)
	}
}

func runRace(t *testing.T, db *sql.DB, c *goredis.Client, schema, prefix string, variant raceVariant, ops int64) raceResult {
	t.Helper()
	key := func(id int) string { return prefix + "user:" + strconv.Itoa(id) }
	delay := time.Duration(0)
	if variant == variantDelay {
		delay = raceDelay
	}
	rules := []cdc.TableRule[TableConfig]{{
		Match:  regexp.MustCompile("^" + regexp.QuoteMeta(schema) + `\.users$`),
		PK:     []string{"id"},
		Config: TableConfig{Delay: delay, Keys: []KeySpec{{Key: prefix + "user:{id}"}}},
	}}
	inv, err := New(c, Config{Name: prefix + "q"}, rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	runCtx, stopRun := context.WithCancel(bg)
	defer stopRun()
	runDone := make(chan error, 1)
	go func() { runDone <- inv.Run(runCtx) }()

	var res raceResult
	for r := range raceRounds {
		n := ops / raceRounds
		if r == raceRounds-1 {
			n = ops - n*(raceRounds-1)
		}
		runRound(t, db, c, inv, schema, key, variant, n, &res)
		if t.Failed() {
			break
		}
	}
	stopRun()
	if err := <-runDone; err != nil {
		t.Error(err)
	}
	if err := inv.Close(bg); err != nil {
		t.Error(err)
	}
	return res
}

// runRound runs readers and writers for ops operations, lets the stream
// and the delayed deletes drain, then counts stale cached values (and
// deletes them, so the next round starts clean).
func runRound(t *testing.T, db *sql.DB, c *goredis.Client, inv *Invalidator, schema string, key func(int) string,
	variant raceVariant, ops int64, res *raceResult) {
	bg := context.Background()
	var count atomic.Int64 // reads + writes
	workCtx, stopWork := context.WithCancel(bg)
	defer stopWork()
	fail := func(err error) {
		if workCtx.Err() == nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
			stopWork()
		}
	}

	// The change stream: events in commit order, applied after a lag.
	events := make(chan cdc.Event, 4096)
	var commitMu sync.Mutex // COMMIT + enqueue in one critical section = commit order
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		batch := make([]cdc.Event, 0, 256)
		for ev := range events {
			lag := minLag + rand.N(maxLagExtra)
			time.Sleep(time.Until(ev.Commit.Add(lag)))
			batch = append(batch[:0], ev)
		drain:
			for len(batch) < cap(batch) {
				select {
				case e, ok := <-events:
					if !ok {
						break drain
					}
					batch = append(batch, e)
				default:
					break drain
				}
			}
			if variant != variantAppDelete {
				if err := inv.Apply(bg, batch); err != nil {
					t.Error(err)
				}
			}
		}
	}()

	start := time.Now()
	var wg sync.WaitGroup
	for range raceReaders {
		wg.Go(func() {
			for workCtx.Err() == nil && count.Load() < ops {
				id := rand.N(raceRows)
				_, err := c.Get(workCtx, key(id)).Result()
				if err == nil {
					atomic.AddInt64(&res.reads, 1)
					count.Add(1)
					continue
				}
				if err != goredis.Nil {
					fail(err)
					return
				}
				atomic.AddInt64(&res.misses, 1)
				t0 := time.Now().UnixMicro()
				var email, name string
				var v int64
				if err := db.QueryRowContext(workCtx, "SELECT email, name, v FROM users WHERE id = ?", id).Scan(&email, &name, &v); err != nil {
					fail(err)
					return
				}
				time.Sleep(rand.N(readerPause + 1))
				ok, err := guardedSet.Run(workCtx, c, []string{key(id)}, cacheValue(email, name, v), t0, readerBound.Microseconds()).Int()
				if err != nil {
					fail(err)
					return
				}
				if ok == 0 {
					atomic.AddInt64(&res.dropped, 1)
				}
				atomic.AddInt64(&res.reads, 1)
				count.Add(1)
			}
		})
	}
	for w := range raceWriters {
		wg.Go(func() {
			for n := 0; workCtx.Err() == nil && count.Load() < ops; n++ {
				id := rand.N(raceRows)
				if err := raceWrite(workCtx, db, c, schema, id, fmt.Sprintf("w%d-%d", w, n), key(id), variant, &commitMu, events); err != nil {
					fail(err)
					return
				}
				atomic.AddInt64(&res.writes, 1)
				count.Add(1)
			}
		})
	}
	wg.Wait()
	res.elapsed += time.Since(start)
	close(events)
	<-consumerDone

	if variant == variantDelay {
		waitFor(t, "delayed deletes to fire", func() bool {
			n, err := inv.Pending(bg)
			return err == nil && n == 0
		})
	}

	// Count cached values that differ from MySQL.
	rows, err := db.Query("SELECT id, email, name, v FROM users")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int
		var email, name string
		var v int64
		if err := rows.Scan(&id, &email, &name, &v); err != nil {
			t.Fatal(err)
		}
		got, err := c.Get(bg, key(id)).Result()
		if err == goredis.Nil {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got != cacheValue(email, name, v) {
			res.stale++
			c.Del(bg, key(id))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// raceWrite updates one row in a transaction, reading the before image
// with SELECT ... FOR UPDATE, and after COMMIT either hands the change to
// the stream (in commit order) or deletes the key itself.
func raceWrite(ctx context.Context, db *sql.DB, c *goredis.Client, schema string, id int, name, key string,
	variant raceVariant, commitMu *sync.Mutex, events chan<- cdc.Event) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var email, oldName string
	var v int64
	if err := tx.QueryRowContext(ctx, "SELECT email, name, v FROM users WHERE id = ? FOR UPDATE", id).Scan(&email, &oldName, &v); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE users SET name = ?, v = v + 1 WHERE id = ?", name, id); err != nil {
		return err
	}
	ev := cdc.Event{DB: schema, Table: "users", Op: cdc.Update, PK: []string{"id"},
		Before: cdc.RowOf("id", int64(id), "email", email, "name", oldName, "v", v),
		After:  cdc.RowOf("id", int64(id), "email", email, "name", name, "v", v+1)}
	commitMu.Lock()
	err = tx.Commit()
	if err == nil && variant != variantAppDelete {
		ev.Commit = time.Now()
		events <- ev
	}
	commitMu.Unlock()
	if err != nil {
		return err
	}
	if variant == variantAppDelete {
		return c.Del(ctx, key).Err()
	}
	return nil
}
