package redis

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/sinktest"
	"github.com/rowsync/rowsync/internal/testlock"
)

// Tests use Redis DB 1 (assigned to this package) and a unique db name per
// test, which prefixes every key. ROWSYNC_REDIS_TEST_ADDR points them (and
// the benchmarks) at another server, e.g. a private redis-server so that
// redis-cpu-µs/row counts only the benchmark's own commands.
const testDB = 1

var testAddr = cmp.Or(os.Getenv("ROWSYNC_REDIS_TEST_ADDR"), "127.0.0.1:6379")

func TestMain(m *testing.M) {
	if slices.ContainsFunc(os.Args, func(a string) bool { return strings.HasPrefix(a, "-test.fuzzworker") }) {
		// A fuzzing worker runs only the fuzz target (no Redis), while
		// the coordinator process holds the lock below.
		os.Exit(m.Run())
	}
	// This package flushes its DB: a second test run beside this one waits.
	release, err := testlock.Acquire(fmt.Sprintf("redis-db-%d", testDB), func() {
		fmt.Fprintf(os.Stderr, "waiting for another test process to finish with Redis DB %d\n", testDB)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c := goredis.NewClient(&goredis.Options{Addr: testAddr, DB: testDB})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := c.FlushDB(ctx).Err(); err != nil {
		fmt.Fprintln(os.Stderr, "redis DB 1 not reachable:", err)
		os.Exit(1)
	}
	cancel()
	code := m.Run()
	_ = c.FlushDB(context.Background()).Err()
	_ = c.Close()
	release()
	os.Exit(code)
}

func newClient(t testing.TB) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: testAddr, DB: testDB, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// uniqueDB returns a db name no other test uses and removes its keys (row
// keys "db_…" and tombstones "{db_…}…") when the test ends.
func uniqueDB(t testing.TB, c *goredis.Client) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	db := "t" + hex.EncodeToString(b)
	t.Cleanup(func() { dropKeys(c, db+"*", "{"+db+"*") })
	return db
}

func rules(t testing.TB, match string, tc TableConfig, pk ...string) []cdc.TableRule[TableConfig] {
	t.Helper()
	re, err := cdc.CompileMatch(match)
	if err != nil {
		t.Fatal(err)
	}
	return []cdc.TableRule[TableConfig]{{Match: re, PK: pk, Config: tc}}
}

func newProjector(t testing.TB, c goredis.UniversalClient, rs []cdc.TableRule[TableConfig]) *Projector {
	t.Helper()
	p, err := New(c, rs, nil)
	must(t, err)
	return closeAtEnd(t, p)
}

// closeAtEnd closes p when the test ends and fails the test if one of the
// projector's own connections is left open.
func closeAtEnd(t testing.TB, p *Projector) *Projector {
	t.Cleanup(func() {
		must(t, p.Close(context.Background()))
		if p.conns != nil {
			if n := p.conns.open.Load(); n != 0 {
				t.Errorf("%d connections open after Close", n)
			}
		}
	})
	return p
}

func TestConformance(t *testing.T) {
	for _, mode := range []string{"unguarded", "type_check", "guarded"} {
		t.Run(mode, func(t *testing.T) {
			c := newClient(t)
			guarded := mode == "guarded"
			tc := TableConfig{TypeCheck: mode == "type_check"}
			if guarded {
				tc.VersionField = "_v"
			}
			sinktest.Run(t, sinktest.Harness{
				Guarded: guarded,
				New: func(t *testing.T, db string) cdc.Sink {
					uniqueDBCleanup(t, c, db)
					return newProjector(t, c, rules(t, regexp.QuoteMeta(db)+`\..*`, tc))
				},
				Read: func(t *testing.T, db, table string, pk []string) (map[string]string, bool) {
					m, err := c.HGetAll(t.Context(), db+"_"+table+"_"+strings.Join(pk, ":")).Result()
					if err != nil {
						t.Fatal(err)
					}
					delete(m, "_v")
					return m, len(m) > 0
				},
			})
		})
	}
}

func uniqueDBCleanup(t *testing.T, c *goredis.Client, db string) {
	t.Cleanup(func() { dropKeys(c, db+"_*", "{"+db+"_*") })
}

// dropKeys unlinks the keys matching the patterns, in batches.
func dropKeys(c *goredis.Client, patterns ...string) {
	ctx := context.Background()
	for _, pat := range patterns {
		var batch []string
		iter := c.Scan(ctx, 0, pat, 1000).Iterator()
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == 500 {
				c.Unlink(ctx, batch...)
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			c.Unlink(ctx, batch...)
		}
	}
}

func TestApplyTextForms(t *testing.T) {
	c := newClient(t)
	db := uniqueDB(t, c)
	p := newProjector(t, c, rules(t, db+`\.t`, TableConfig{}))
	cols := []cdc.Column{
		cdc.ParseColumnType("id", "bigint(20) unsigned"),
		cdc.ParseColumnType("amount", "decimal(20,4)"),
		cdc.ParseColumnType("at", "datetime(6)"),
		cdc.ParseColumnType("day", "date"),
		cdc.ParseColumnType("ts0", "timestamp"),
		cdc.ParseColumnType("blob", "blob"),
		cdc.ParseColumnType("name", "varchar(40)"),
		cdc.ParseColumnType("f", "float"),
		cdc.ParseColumnType("d", "double"),
		cdc.ParseColumnType("doc", "json"),
		cdc.ParseColumnType("tags", "set('a','b','c')"),
		cdc.ParseColumnType("dur", "time(3)"),
		cdc.ParseColumnType("gone", "int"),
	}
	row := cdc.RowOf("id", uint64(18446744073709551615), "amount", cdc.Decimal("-12345678901234.5000"), "at", time.Date(2024, 1, 2, 3, 4, 5, 120000000, time.UTC), "day", time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), "ts0", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "blob", []byte{0, 1, 0xfe, 0xff}, "name", "Grüße, 世界 🚀", "f", float64(float32(0.1)), "d", 0.1, "doc", cdc.JSON(`{"a": [1, 2]}`), "tags", cdc.Set{"a", "c"}, "dur", -(25*time.Hour + 500*time.Millisecond), "gone", nil, "extra", "no column info")
	ev := cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: row, Columns: cols}
	if err := p.Apply(t.Context(), []cdc.Event{ev}); err != nil {
		t.Fatal(err)
	}
	got, err := c.HGetAll(t.Context(), db+"_t_18446744073709551615").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"id":     "18446744073709551615",
		"amount": "-12345678901234.5000",
		"at":     "2024-01-02 03:04:05.120000",
		"day":    "2024-01-02",
		"ts0":    "2024-01-02 03:04:05",
		"blob":   "\x00\x01\xfe\xff",
		"name":   "Grüße, 世界 🚀",
		"f":      "0.1",
		"d":      "0.1",
		"doc":    `{"a": [1, 2]}`,
		"tags":   "a,c",
		"dur":    "-25:00:00.500",
		"extra":  "no column info",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hash:\n got  %q\n want %q", got, want)
	}
}

func TestKeyColumnChangeMovesHash(t *testing.T) {
	c := newClient(t)
	db := uniqueDB(t, c)
	p := newProjector(t, c, rules(t, db+`\.users`, TableConfig{Key: db + ":user:{email|lower}", Exclude: []string{"secret"}}, "id"))
	before := cdc.RowOf("id", int64(1), "email", "A@x.io", "secret", "pw")
	after := cdc.RowOf("id", int64(1), "email", "b@x.io", "secret", "pw")
	must(t, p.Apply(t.Context(), []cdc.Event{{DB: db, Table: "users", Op: cdc.Insert, After: before}}))
	if n := c.Exists(t.Context(), db+":user:a@x.io").Val(); n != 1 {
		t.Fatalf("old key missing before update")
	}
	must(t, p.Apply(t.Context(), []cdc.Event{{DB: db, Table: "users", Op: cdc.Update, Before: before, After: after}}))
	if n := c.Exists(t.Context(), db+":user:a@x.io").Val(); n != 0 {
		t.Errorf("old key still present after email change")
	}
	got := c.HGetAll(t.Context(), db+":user:b@x.io").Val()
	if fmt.Sprint(got) != "map[email:b@x.io id:1]" {
		t.Errorf("new hash = %v", got)
	}
	// A partial before-image (only changed columns, as Maxwell's "old")
	// still finds the old key.
	after2 := cdc.RowOf("id", int64(1), "email", "c@x.io", "secret", "pw")
	must(t, p.Apply(t.Context(), []cdc.Event{{DB: db, Table: "users", Op: cdc.Update, Before: cdc.RowOf("email", "b@x.io"), After: after2}}))
	if n := c.Exists(t.Context(), db+":user:b@x.io", db+":user:c@x.io").Val(); n != 1 {
		t.Errorf("after partial before-image: %d of old+new keys exist, want only the new", n)
	}
}

func TestIncludeAndTTL(t *testing.T) {
	c := newClient(t)
	db := uniqueDB(t, c)
	p := newProjector(t, c, rules(t, db+`\..*`, TableConfig{Include: []string{"id", "name"}, TTL: time.Hour}))
	ev := cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"a", "b"},
		After: cdc.RowOf("a", int64(1), "b", "x", "id", int64(7), "name", "n", "other", "o")}
	must(t, p.Apply(t.Context(), []cdc.Event{ev}))
	key := db + "_t_1:x"
	if got := fmt.Sprint(c.HGetAll(t.Context(), key).Val()); got != "map[id:7 name:n]" {
		t.Errorf("hash = %s", got)
	}
	if ttl := c.PTTL(t.Context(), key).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("PTTL = %s, want (0, 1h]", ttl)
	}
}

func TestTombstone(t *testing.T) {
	c := newClient(t)
	db := uniqueDB(t, c)
	p := newProjector(t, c, rules(t, db+`\..*`, TableConfig{VersionField: "_v", TombstoneTTL: time.Minute}))
	row := cdc.RowOf("id", int64(1), "n", "a")
	big := uint64(1)<<60 + 5 // beyond float precision: compared as text
	ins := cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: row, Pos: cdc.Position{Version: big}}
	must(t, p.Apply(t.Context(), []cdc.Event{ins}))
	key := db + "_t_1"
	if v := c.HGet(t.Context(), key, "_v").Val(); v != fmt.Sprint(big) {
		t.Errorf("_v = %q, want %d", v, big)
	}
	older := ins
	older.Pos.Version = big - 1
	older.After = cdc.RowOf("id", int64(1), "n", "older")
	must(t, p.Apply(t.Context(), []cdc.Event{older}))
	if v := c.HGet(t.Context(), key, "n").Val(); v != "a" {
		t.Errorf("older version (differs only past 2^53) applied: n = %q", v)
	}
	del := cdc.Event{DB: db, Table: "t", Op: cdc.Delete, PK: []string{"id"}, Before: row, Pos: cdc.Position{Version: big + 1}}
	must(t, p.Apply(t.Context(), []cdc.Event{del}))
	tomb := "{" + key + "}" + DefaultTombstoneSuffix
	if v := c.Get(t.Context(), tomb).Val(); v != fmt.Sprint(big+1) {
		t.Errorf("tombstone %s = %q, want %d", tomb, v, big+1)
	}
	if ttl := c.PTTL(t.Context(), tomb).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("tombstone PTTL = %s", ttl)
	}
	// Version 0 is unguarded: it applies even after the tombstone.
	zero := ins
	zero.Pos.Version = 0
	must(t, p.Apply(t.Context(), []cdc.Event{zero}))
	if got := fmt.Sprint(c.HGetAll(t.Context(), key).Val()); got != "map[id:1 n:a]" {
		t.Errorf("unguarded write: %s", got)
	}
	// A newer guarded write clears the tombstone it passed.
	newer := ins
	newer.Pos.Version = big + 2
	must(t, p.Apply(t.Context(), []cdc.Event{newer}))
	if n := c.Exists(t.Context(), tomb).Val(); n != 0 {
		t.Errorf("tombstone survived a newer write")
	}
	noStaging(t, c, db)
}

func TestWrongType(t *testing.T) {
	// A checked table (version_field or type_check) leaves a non-hash at a
	// row key alone and fails that key's changes; the fast path owns the
	// key namespace and replaces it.
	cases := []struct {
		name    string
		tc      TableConfig
		failed  string
		replace bool
	}{
		{"type_check", TableConfig{TypeCheck: true}, "[1 2 3 4]", false},
		{"guarded", TableConfig{VersionField: "_v"}, "[1 2 3 4]", false},
		{"fast path", TableConfig{}, "[3 4]", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t)
			db := uniqueDB(t, c)
			p := newProjector(t, c, rules(t, db+`\..*`, tc.tc))
			must(t, c.Set(t.Context(), db+"_t_2", "not a hash", 0).Err())
			evs := []cdc.Event{
				{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))},
				{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(2))},
				{DB: db, Table: "t", Op: cdc.Update, PK: []string{"id"}, Before: cdc.RowOf("id", int64(2)), After: cdc.RowOf("id", int64(2), "x", "y")},
				{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", nil)},
				{DB: db, Table: "t", Op: cdc.Insert, After: cdc.RowOf("id", int64(5))}, // no PK anywhere
				{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(3))},
			}
			err := p.Apply(t.Context(), evs)
			var be *cdc.BatchError
			if !errors.As(err, &be) {
				t.Fatalf("Apply = %v, want *cdc.BatchError", err)
			}
			var failed []int
			for i := range evs {
				if e := be.Failed[i]; e != nil {
					failed = append(failed, i)
					if !errors.Is(e, cdc.ErrPermanent) {
						t.Errorf("Failed[%d] = %v, not ErrPermanent", i, e)
					}
				}
			}
			if fmt.Sprint(failed) != tc.failed {
				t.Errorf("failed = %v (%v), want %s", failed, be.Failed, tc.failed)
			}
			if tc.replace {
				got := c.HGetAll(t.Context(), db+"_t_2").Val()
				if fmt.Sprint(got) != "map[id:2 x:y]" {
					t.Errorf("non-hash key not replaced: %v", got)
				}
			} else {
				if !errors.Is(be.Failed[1], ErrWrongType) {
					t.Errorf("Failed[1] = %v, want ErrWrongType", be.Failed[1])
				}
				if v := c.Get(t.Context(), db+"_t_2").Val(); v != "not a hash" {
					t.Errorf("non-hash key was touched: %q", v)
				}
			}
			if n := c.Exists(t.Context(), db+"_t_1", db+"_t_3").Val(); n != 2 {
				t.Errorf("healthy rows written: %d of 2", n)
			}
			noStaging(t, c, db)
		})
	}
}

func TestRulePKFallback(t *testing.T) {
	c := newClient(t)
	db := uniqueDB(t, c)
	p := newProjector(t, c, rules(t, db+`\..*`, TableConfig{}, "k1", "k2"))
	must(t, p.Apply(t.Context(), []cdc.Event{{DB: db, Table: "t", Op: cdc.Insert, After: cdc.RowOf("k1", "a", "k2", int64(2))}}))
	if n := c.Exists(t.Context(), db+"_t_a:2").Val(); n != 1 {
		t.Errorf("key from configured pk missing")
	}
}

func TestNoScriptReloads(t *testing.T) {
	c := newClient(t)
	db := uniqueDB(t, c)
	p := newProjector(t, c, rules(t, db+`\..*`, TableConfig{TypeCheck: true}))
	// A script body never loaded on the server gets NOSCRIPT first, as
	// after a restart or failover; SCRIPT FLUSH would disturb other tests.
	p.script = newLuaScript(commitScript + "\n-- " + db)
	must(t, p.Apply(t.Context(), []cdc.Event{{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))}}))
	if n := c.Exists(t.Context(), db+"_t_1").Val(); n != 1 {
		t.Errorf("row not written after NOSCRIPT")
	}
}

func TestTransientErrors(t *testing.T) {
	ev := []cdc.Event{{DB: "d", Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: cdc.RowOf("id", int64(1))}}
	down := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: time.Second, MaxRetries: -1})
	defer down.Close()
	p := newProjector(t, down, rules(t, ".*", TableConfig{}))
	err := p.Apply(t.Context(), ev)
	var be *cdc.BatchError
	if err == nil || errors.As(err, &be) {
		t.Errorf("Apply to a closed port = %v, want a transient error", err)
	}
	if err := p.Ping(t.Context()); err == nil {
		t.Errorf("Ping to a closed port = nil")
	}
	up := newProjector(t, newClient(t), rules(t, ".*", TableConfig{}))
	if err := up.Ping(t.Context()); err != nil {
		t.Errorf("Ping = %v", err)
	}
}

func TestCoalescedBatchRoundTrips(t *testing.T) {
	// Many events for few keys still land in their final state, and a
	// batch spanning several script calls (ScriptKeys 3) stays in order.
	c := newClient(t)
	db := uniqueDB(t, c)
	p, err := NewWithConfig(Config{ScriptKeys: 3}, c, rules(t, db+`\..*`, TableConfig{VersionField: "_v"}), nil)
	must(t, err)
	closeAtEnd(t, p)
	var evs []cdc.Event
	for i := range 50 {
		id := int64(i % 7)
		evs = append(evs, cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"},
			After: cdc.RowOf("id", id, "n", int64(i)), Pos: cdc.Position{Version: uint64(100 + i)}})
	}
	evs = append(evs, cdc.Event{DB: db, Table: "t", Op: cdc.Delete, PK: []string{"id"}, Before: cdc.RowOf("id", int64(0)), Pos: cdc.Position{Version: 1000}})
	must(t, p.Apply(t.Context(), evs))
	for id := range int64(7) {
		got := c.HGetAll(t.Context(), fmt.Sprintf("%s_t_%d", db, id)).Val()
		if id == 0 {
			if len(got) != 0 {
				t.Errorf("row 0 = %v, want deleted", got)
			}
			continue
		}
		last := 49 - (49-id)%7
		if got["n"] != fmt.Sprint(last) || got["_v"] != fmt.Sprint(100+last) {
			t.Errorf("row %d = %v, want n=%d", id, got, last)
		}
	}
	// Replaying the batch skips nothing (equal versions apply) and a
	// stale replay drops its staged images.
	must(t, p.Apply(t.Context(), evs))
	for i := range evs {
		evs[i].Pos.Version -= 99
	}
	must(t, p.Apply(t.Context(), evs))
	if got := c.HGet(t.Context(), db+"_t_1", "_v").Val(); got != "143" {
		t.Errorf("after stale replay _v = %q, want 143", got)
	}
	noStaging(t, c, db)
}

func TestConcurrentApply(t *testing.T) {
	// Shards call Apply at once; keys shared between calls (a template on
	// a non-unique column) must still end as one of the written images.
	for _, check := range []bool{false, true} {
		t.Run(map[bool]string{false: "fast", true: "type_check"}[check], func(t *testing.T) {
			testConcurrentApply(t, TableConfig{TypeCheck: check})
		})
	}
}

func testConcurrentApply(t *testing.T, tc TableConfig) {
	c := newClient(t)
	db := uniqueDB(t, c)
	tc.Key = db + ":{grp}"
	p, err := NewWithConfig(Config{ScriptKeys: 16, Parallel: 2}, c, rules(t, db+`\..*`, tc), nil)
	must(t, err)
	closeAtEnd(t, p)
	g, ctx := errgroup.WithContext(t.Context())
	for w := range 4 {
		g.Go(func() error {
			for b := range 20 {
				var evs []cdc.Event
				for i := range 50 {
					evs = append(evs, cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"},
						After: cdc.RowOf("id", int64(w*100000+b*100+i), "grp", int64(i), "w", int64(w), "b", int64(b))})
				}
				if err := p.Apply(ctx, evs); err != nil {
					return err
				}
			}
			return nil
		})
	}
	must(t, g.Wait())
	for i := range 50 {
		got := c.HGetAll(t.Context(), fmt.Sprintf("%s:%d", db, i)).Val()
		if len(got) != 4 || got["grp"] != fmt.Sprint(i) || got["b"] != "19" {
			t.Errorf("key %d = %v, want one whole last image", i, got)
		}
	}
	noStaging(t, c, db)
}

// noStaging fails if a staging key of db outlived an Apply call.
func noStaging(t *testing.T, c *goredis.Client, db string) {
	t.Helper()
	keys, _, err := c.Scan(t.Context(), 0, "*"+db+"*"+stageSuffix, 10000).Result()
	must(t, err)
	if len(keys) > 0 {
		t.Errorf("staging keys left: %v", keys)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
