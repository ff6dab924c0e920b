package e2e

// Issue 6: ordering chaos.
//
// One change sequence (internal/changegen) is encoded, shuffled within a
// sliding window with 10% of the messages duplicated later in the window
// (changegen.Shuffled: what one consumer sees from a multi-partition topic
// written without canal's partitionHash, with producer retries), and put
// on ONE kfake partition, so rowsync reads exactly the shuffled order. The
// rowsync binary then runs in each mode until the consumer group has
// committed the partition's end, and the Redis state is compared with the
// sequence's final state:
//
//   - refetch (canal-json, refetch: true, MariaDB on 3306 holding the
//     final rows): exact.
//   - version guard (version_field: _v) with Maxwell `position` and with
//     the canal-protobuf header: exact (ignoring _v), and every row deleted
//     at the end has its tombstone at the version of its last change.
//   - plain (canal-json, neither): measured, not asserted; the counts of
//     missing, stale and resurrected rows are logged for the README.

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/changegen"
)

const (
	// chaosRedisDB is this file's Redis DB (FLUSHDB allowed there only).
	chaosRedisDB = 7
	chaosDSN     = "root@tcp(127.0.0.1:3306)/"
	chaosWindow  = 64
	chaosDupPct  = 10
	versionField = "_v"
)

type chaosMode struct {
	name     string
	encoding string
	refetch  bool
	guard    bool
	// version is the Pos.Version the encoding gives c, for tombstones.
	version func(c *changegen.Change) uint64
}

// chaosResult is one mode's outcome, for the summary line.
type chaosResult struct {
	mode                          string
	keys, missing, stale, revived int
	drain                         time.Duration
}

func (r chaosResult) String() string {
	if r.missing+r.stale+r.revived == 0 {
		return fmt.Sprintf("%s exact (%d rows) in %v", r.mode, r.keys, r.drain)
	}
	return fmt.Sprintf("%s WRONG: %d missing, %d stale, %d resurrected of %d rows (%.1f%%) in %v",
		r.mode, r.missing, r.stale, r.revived, r.keys,
		100*float64(r.missing+r.stale+r.revived)/float64(r.keys), r.drain)
}

var chaosKeys = flag.Int("chaos.keys", 0, "TestChaosOrdering: run one key density, changegen Config.Keys")

// TestChaosOrdering runs every mode on two key densities: "hot" (few rows,
// so one row's changes often fall within one window of each other) and
// "wide" (issue 3's density, where more rows end deleted, so the
// tombstones are put to the test).
func TestChaosOrdering(t *testing.T) {
	n := size(20000, 100000)
	densities := []struct {
		name string
		keys int
	}{{"hot", max(50, n/400)}, {"wide", n / 4}}
	if *chaosKeys > 0 {
		densities = densities[:1]
		densities[0].name, densities[0].keys = fmt.Sprintf("keys%d", *chaosKeys), *chaosKeys
	}
	modes := []chaosMode{
		{name: "refetch", encoding: changegen.EncCanalJSON, refetch: true},
		{name: "version/maxwell", encoding: changegen.EncMaxwellPosition, guard: true,
			version: func(c *changegen.Change) uint64 {
				return cdc.BinlogPosVersion(changegen.BinlogFile, c.Offset())
			}},
		{name: "version/canal-protobuf", encoding: changegen.EncCanalProtobuf, guard: true,
			version: func(c *changegen.Change) uint64 {
				return cdc.BinlogPosVersion(changegen.BinlogFile, c.Offset()+40) // the row entry's header
			}},
		{name: "plain", encoding: changegen.EncCanalJSON},
	}
	var summary []string
	for i, d := range densities {
		t.Run(d.name, func(t *testing.T) {
			db := fmt.Sprintf("rs_chaos_%s_%d", d.name, time.Now().UnixNano()%1e9)
			set := changegen.Generate(changegen.Config{Seed: 600 + uint64(i), Changes: n, Keys: d.keys, DB: db})
			sh := changegen.Shuffle{Seed: 700 + uint64(i), Window: chaosWindow, DupPercent: chaosDupPct}
			loadMySQL(t, set)
			var results []string
			for _, m := range modes {
				t.Run(strings.ReplaceAll(m.name, "/", "-"), func(t *testing.T) {
					results = append(results, runChaos(t, set, sh, m).String())
				})
			}
			summary = append(summary, fmt.Sprintf("chaos summary %s (%d changes, Keys %d, %d rows at the end, window %d, %d%% duplicated, one partition): %s",
				d.name, n, d.keys, len(set.Expected("")), chaosWindow, chaosDupPct, strings.Join(results, "; ")))
		})
	}
	for _, l := range summary {
		t.Log(l)
	}
}

// loadMySQL creates set's database on the MariaDB at 3306 with the final
// rows, and drops it when the test ends.
func loadMySQL(t *testing.T, set *changegen.Set) {
	t.Helper()
	sdb, err := sql.Open("mysql", chaosDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := set.Config.DB
	if _, err := sdb.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := sdb.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	if err := set.LoadFinal(ctx, sdb); err != nil {
		t.Fatal(err)
	}
}

func runChaos(t *testing.T, set *changegen.Set, sh changegen.Shuffle, m chaosMode) chaosResult {
	rdb := redisDB(t, chaosRedisDB)
	s := newSetup(t, "chaos-"+strings.ReplaceAll(m.name, "/", "-"))
	msgs, seqs, err := set.Shuffled(m.encoding, sh)
	if err != nil {
		t.Fatal(err)
	}
	k := startKafka(t, s.name, 1)
	k.produce(t, [][]changegen.Message{msgs})
	late, revive := disorder(set, seqs)
	t.Logf("%d changes → %d messages, %d rows at the end; %d messages arrive after a newer change of their row, "+
		"%d of them write a row a newer change deleted", len(set.Changes), len(msgs), len(set.Expected("")), late, revive)

	p := rowsync(t, s.chaosConfig(k, set, m), s.log)
	start := time.Now()
	waitDrained(t, k, s.name, len(msgs), p)
	drain := time.Since(start).Round(time.Millisecond)
	p.stop(t)

	want := set.Expected(s.prefix)
	r := measure(t, rdb, s.prefix, want, m.guard)
	r.mode, r.drain = m.name, drain
	dl := readDeadLetters(t, s.dl)
	if len(dl) > 0 {
		t.Errorf("%d dead letters, first: %+v", len(dl), dl[0])
	}
	if m.name == "plain" {
		t.Logf("plain mode (measured, not asserted): %s", r)
		// What the README promises instead: last writer by arrival.
		if d, err := diffState(context.Background(), rdb, s.prefix, byArrival(set, seqs, s.prefix)); err != nil {
			t.Fatal(err)
		} else if d != "" {
			t.Errorf("plain mode is not last-writer-wins by arrival: %s", d)
		}
		return r
	}
	if r.missing+r.stale+r.revived > 0 {
		t.Errorf("end state not exact: %s", r)
	}
	if m.guard {
		checkTombstones(t, rdb, s.prefix, set, m)
	}
	t.Logf("%s", r)
	return r
}

// chaosConfig writes the mode's rowsync config: the set's tables (in its
// own database) to hashes under the prefix, one Kafka partition.
func (s *setup) chaosConfig(k *kafkaEnv, set *changegen.Set, m chaosMode) string {
	var b strings.Builder
	b.WriteString(s.kafkaHeadYAML(k, changegen.Decoder(m.encoding)))
	fmt.Fprintf(&b, `redis:
  addr: 127.0.0.1:6379
  db: %d
deadletter:
  file: %s
admin:
  addr: "off"
log:
  level: info
`, chaosRedisDB, s.dl)
	if m.refetch {
		fmt.Fprintf(&b, "mysql:\n  dsn: %q\n", chaosDSN)
	}
	b.WriteString("tables:\n")
	for _, tb := range set.Tables {
		fmt.Fprintf(&b, "  - match: '%s\\.%s'\n    pk: [%s]\n", tb.DB, tb.Name, strings.Join(tb.PK, ", "))
		if m.refetch {
			b.WriteString("    refetch: true\n")
		}
		fmt.Fprintf(&b, "    redis_hash:\n      key: '%s{db}_{table}_{pk}'\n", s.prefix)
		if m.guard {
			fmt.Fprintf(&b, "      version_field: %s\n", versionField)
		}
	}
	return writeFile(s.t, s.dir, "rowsync.yaml", b.String())
}

// waitDrained waits until the group has committed offset end on the one
// partition: every message before it has been applied.
func waitDrained(t *testing.T, k *kafkaEnv, group string, end int, p *proc) {
	t.Helper()
	waitFor(t, "committed offset reaches the end", time.Duration(size(3, 10))*time.Minute, func() (bool, string) {
		if p.exited() {
			t.Fatalf("rowsync exited: %v", p.err)
		}
		c, err := k.committed(group)
		if err != nil {
			return false, err.Error()
		}
		return c[0] == int64(end), fmt.Sprintf("committed %d of %d", c[0], end)
	})
}

// measure compares Redis under prefix with want, classifying each wrong
// row: missing (should exist, does not), stale (exists with other
// fields) and resurrected (exists, should have been deleted). With
// guard, the version field is left out of the comparison.
func measure(t *testing.T, rdb *goredis.Client, prefix string, want map[string]map[string]string, guard bool) chaosResult {
	t.Helper()
	ctx := context.Background()
	keys, err := scanKeys(ctx, rdb, prefix)
	if err != nil {
		t.Fatal(err)
	}
	r := chaosResult{keys: len(want)}
	var examples []string
	note := func(f string, args ...any) {
		if len(examples) < 5 {
			examples = append(examples, fmt.Sprintf(f, args...))
		}
	}
	present := map[string]bool{}
	for _, k := range keys {
		present[k] = true
		if _, ok := want[k]; !ok {
			r.revived++
			note("resurrected %s", k)
		}
	}
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	for len(names) > 0 {
		chunk := names[:min(len(names), 1000)]
		names = names[len(chunk):]
		pipe := rdb.Pipeline()
		cmds := make([]*goredis.MapStringStringCmd, len(chunk))
		for i, k := range chunk {
			cmds[i] = pipe.HGetAll(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for i, k := range chunk {
			got := cmds[i].Val()
			if len(got) == 0 {
				r.missing++
				note("missing %s", k)
				continue
			}
			if guard {
				if _, ok := got[versionField]; !ok {
					r.stale++
					note("%s has no %s field", k, versionField)
					continue
				}
				delete(got, versionField)
			}
			if !mapsEqual(got, want[k]) {
				r.stale++
				note("stale %s: got %q, want %q", k, got, want[k])
			}
		}
	}
	if len(examples) > 0 {
		t.Logf("examples: %s", strings.Join(examples, "; "))
	}
	return r
}

// checkTombstones checks that every row touched by the sequence and
// absent at the end has its tombstone holding the version of the row's
// last change (its delete): so no older, late insert can resurrect it.
func checkTombstones(t *testing.T, rdb *goredis.Client, prefix string, set *changegen.Set, m chaosMode) {
	t.Helper()
	last := map[string]*changegen.Change{} // redis key → last change that removed it
	for i := range set.Changes {
		c := &set.Changes[i]
		switch {
		case c.Op == cdc.Delete:
			last[changegen.RedisKey(prefix, c.Table, c.Before)] = c
		case c.PKChange():
			last[changegen.RedisKey(prefix, c.Table, c.Before)] = c
			delete(last, changegen.RedisKey(prefix, c.Table, c.After))
		default:
			delete(last, changegen.RedisKey(prefix, c.Table, c.After))
		}
	}
	ctx := context.Background()
	pipe := rdb.Pipeline()
	cmds := map[string]*goredis.StringCmd{}
	for k := range last {
		cmds[k] = pipe.Get(ctx, "{"+k+"}:rowsync-tomb")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != goredis.Nil {
		t.Fatal(err)
	}
	bad := 0
	for k, cmd := range cmds {
		want := fmt.Sprint(m.version(last[k]))
		if got, err := cmd.Result(); err != nil || got != want {
			if bad++; bad <= 5 {
				t.Errorf("tombstone of %s: %q %v, want version %s", k, got, err, want)
			}
		}
	}
	t.Logf("%d rows deleted at the end, %d without their tombstone", len(last), bad)
}

// disorder counts, over the shuffled stream (seqs: the change Seq of each
// message, -1 for none), the messages that arrive after a newer change of
// a row they touch, and among those the writes to a row whose newest
// change so far deleted it (what a tombstone must stop).
func disorder(set *changegen.Set, seqs []int) (late, revive int) {
	type seen struct {
		seq     int
		deleted bool
	}
	newest := map[string]seen{}
	for _, seq := range seqs {
		if seq < 0 {
			continue
		}
		c := &set.Changes[seq]
		isLate := false
		touch := func(row *cdc.Row, deletes bool) {
			k := changegen.RedisKey("", c.Table, row)
			n, ok := newest[k]
			switch {
			case ok && n.seq > seq:
				isLate = true
				if !deletes && n.deleted {
					revive++
				}
			case !ok || n.seq < seq:
				newest[k] = seen{seq: seq, deleted: deletes}
			}
		}
		switch {
		case c.Op == cdc.Delete:
			touch(c.Before, true)
		case c.PKChange():
			touch(c.Before, true)
			touch(c.After, false)
		default:
			touch(c.Image(), false)
		}
		if isLate {
			late++
		}
	}
	return late, revive
}

// byArrival is the state plain mode promises: every message applied in
// arrival order, last writer wins (a pk change deletes the old key and
// writes the new one).
func byArrival(set *changegen.Set, seqs []int, prefix string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, seq := range seqs {
		if seq < 0 {
			continue
		}
		c := &set.Changes[seq]
		if c.Op != cdc.Insert {
			delete(out, changegen.RedisKey(prefix, c.Table, c.Before))
		}
		if c.Op != cdc.Delete {
			out[changegen.RedisKey(prefix, c.Table, c.After)] = changegen.Hash(c.Table, c.After)
		}
	}
	return out
}
