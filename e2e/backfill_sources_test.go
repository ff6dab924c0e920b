package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/backfill"
	"github.com/rowsync/rowsync/internal/changegen"
)

// The online backfill with every source `run` can have (issue 14): a
// queue source (Kafka, RabbitMQ) with `mysql:` configured, rows read by
// rowsync and ordered against the queue's messages by the version guard;
// and the binlog source under a lease, the backfill handed to the standby
// when the leader dies.

// srcMySQL is the project MariaDB with binlog (the Kafka/RabbitMQ tests
// publish the changes they make there, with their real binlog positions).
const srcMySQL = "127.0.0.1:3307"

// srcTable is one test's schema with table t (id, v, n) on srcMySQL.
type srcTable struct {
	t      *testing.T
	db     *sql.DB
	schema string
	nextID int64
	rng    *rand.Rand
	// touched is every id a change named
	touched map[int64]bool
	// ahead is the backfill's cursor as last seen (0: none); chunk its
	// rows per chunk
	ahead, chunk int64
	// method is the backfill's watermark method (backfill.method)
	method string
}

func newSrcTable(t *testing.T, name string, rows int) *srcTable {
	t.Helper()
	db, err := sql.Open("mysql", "root@tcp("+srcMySQL+")/?interpolateParams=true")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(2)
	b := &srcTable{t: t, db: db, schema: strings.ReplaceAll(name, "-", "_"), nextID: int64(rows) + 1,
		rng:     rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)),
		touched: map[int64]bool{}, chunk: 50, method: "auto"}
	b.exec("DROP DATABASE IF EXISTS " + b.schema)
	b.exec("CREATE DATABASE " + b.schema)
	t.Cleanup(func() {
		db.Exec("DROP DATABASE IF EXISTS " + b.schema)
		db.Close()
	})
	b.exec("CREATE TABLE " + b.schema + ".t (id BIGINT PRIMARY KEY, v VARCHAR(64) NOT NULL, n INT NOT NULL)")
	for from := 1; from <= rows; from += 1000 {
		var q strings.Builder
		q.WriteString("INSERT INTO " + b.schema + ".t VALUES ")
		for id := from; id < from+1000 && id <= rows; id++ {
			if id > from {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "(%d,'row-%d',0)", id, id)
		}
		b.exec(q.String())
	}
	return b
}

func (b *srcTable) exec(q string, args ...any) sql.Result {
	b.t.Helper()
	r, err := b.db.Exec(q, args...)
	if err != nil {
		b.t.Fatalf("%s: %v", q, err)
	}
	return r
}

// srcRow is a row of t.
type srcRow struct {
	ID int64
	V  string
	N  int64
}

// change makes one random change in MySQL (update, delete, insert of a new
// key or re-insert of a deleted one) and returns it as a Maxwell message
// with output_binlog_position: the binlog end read right after the commit,
// so the messages' positions order them as MySQL did (one writer) and
// against a chunk's watermark. It returns nil when the statement matched
// no row.
func (b *srcTable) change(seq int) []byte {
	b.t.Helper()
	// some ids not there yet or deleted; a third of the changes on every
	// 40th id, so those keys change many times, in every chunk's range; a
	// third just ahead of the backfill's cursor (when set), so they change
	// while their chunk is read
	id := 1 + b.rng.Int64N(b.nextID+10)
	switch b.rng.IntN(3) {
	case 0:
		id = 40 * (1 + b.rng.Int64N(b.nextID/40))
	case 1:
		if b.ahead > 0 {
			// 5 keys 3 chunks past the saved cursor: not read yet (at
			// most 3 chunks are in flight), read a few rounds later
			id = b.ahead + 3*b.chunk + 1 + b.rng.Int64N(5)
		}
	}
	b.touched[id] = true
	var typ string
	var before *srcRow
	row := srcRow{ID: id}
	err := b.db.QueryRow("SELECT v, n FROM "+b.schema+".t WHERE id = ?", id).Scan(&row.V, &row.N)
	switch {
	case err == sql.ErrNoRows:
		typ = "insert"
		row.V, row.N = fmt.Sprintf("ins-%d", seq), int64(seq)
		b.exec("INSERT INTO "+b.schema+".t VALUES (?, ?, ?)", row.ID, row.V, row.N)
		if id >= b.nextID {
			b.nextID = id + 1
		}
	case err != nil:
		b.t.Fatal(err)
	case b.rng.IntN(5) == 0:
		typ = "delete"
		b.exec("DELETE FROM "+b.schema+".t WHERE id = ?", id)
	default:
		typ = "update"
		old := row
		before = &old
		row.V, row.N = fmt.Sprintf("upd-%d", seq), int64(seq)
		b.exec("UPDATE "+b.schema+".t SET v = ?, n = ? WHERE id = ?", row.V, row.N, id)
	}
	file, pos := b.binlogEnd()
	msg := map[string]any{"database": b.schema, "table": "t", "type": typ, "ts": time.Now().Unix(),
		"xid": 1000 + seq, "commit": true, "position": fmt.Sprintf("%s:%d", file, pos),
		"primary_key_columns": []string{"id"},
		"data":                map[string]any{"id": row.ID, "v": row.V, "n": row.N}}
	if before != nil {
		msg["old"] = map[string]any{"v": before.V, "n": before.N}
	}
	out, err := json.Marshal(msg)
	if err != nil {
		b.t.Fatal(err)
	}
	return out
}

func (b *srcTable) binlogEnd() (string, uint64) {
	b.t.Helper()
	var file, doDB, ignoreDB string
	var pos uint64
	if err := b.db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &doDB, &ignoreDB); err != nil {
		b.t.Fatalf("show master status: %v", err)
	}
	return file, pos
}

// rows returns the table as the Redis hashes rowsync must leave, by key.
func (b *srcTable) want(prefix string) map[string]map[string]string {
	b.t.Helper()
	rs, err := b.db.Query("SELECT id, v, n FROM " + b.schema + ".t")
	if err != nil {
		b.t.Fatal(err)
	}
	defer rs.Close()
	out := map[string]map[string]string{}
	for rs.Next() {
		var r srcRow
		if err := rs.Scan(&r.ID, &r.V, &r.N); err != nil {
			b.t.Fatal(err)
		}
		out[prefix+strconv.FormatInt(r.ID, 10)] = map[string]string{
			"id": strconv.FormatInt(r.ID, 10), "v": r.V, "n": strconv.FormatInt(r.N, 10)}
	}
	if err := rs.Err(); err != nil {
		b.t.Fatal(err)
	}
	return out
}

// srcYAML is the mysql:, backfill: and tables: blocks of a test config:
// table t into Redis hashes prefix{id}, with the version guard when
// versionField is set.
func srcYAML(schema, prefix, versionField string, chunk int, method string) string {
	y := fmt.Sprintf(`mysql:
  dsn: 'root@tcp(%s)/'
backfill:
  chunk: %d
  poll: 50ms
  method: %s
tables:
  - match: '%s\.t'
    pk: [id]
    redis_hash:
      key: '%s{id}'
`, srcMySQL, chunk, method, schema, prefix)
	if versionField != "" {
		y += "      version_field: " + versionField + "\n"
	}
	return y
}

// waitRows waits until Redis under prefix holds want exactly, the
// version field left out.
func waitRows(t *testing.T, rdb *goredis.Client, prefix, versionField string, want map[string]map[string]string, timeout time.Duration, p *proc) {
	t.Helper()
	var last string
	waitFor(t, "Redis equals MySQL", timeout, func() (bool, string) {
		if p != nil && p.exited() {
			t.Fatalf("rowsync exited (%v); last diff: %s", p.err, last)
		}
		d, err := diffRows(rdb, prefix, versionField, want)
		if err != nil {
			last = err.Error()
		} else {
			last = d
		}
		return err == nil && d == "", last
	})
}

// diffRows is diffState without the version field; "" when equal.
func diffRows(rdb *goredis.Client, prefix, versionField string, want map[string]map[string]string) (string, error) {
	if versionField == "" {
		return diffState(context.Background(), rdb, prefix, want)
	}
	ctx := context.Background()
	keys, err := scanKeys(ctx, rdb, prefix)
	if err != nil {
		return "", err
	}
	var diffs []string
	n := 0
	note := func(f string, args ...any) {
		n++
		if len(diffs) < 8 {
			diffs = append(diffs, fmt.Sprintf(f, args...))
		}
	}
	seen := map[string]bool{}
	for _, k := range keys {
		seen[k] = true
		w, ok := want[k]
		if !ok {
			note("extra key %s", k)
			continue
		}
		got, err := rdb.HGetAll(ctx, k).Result()
		if err != nil {
			return "", err
		}
		if got[versionField] == "" {
			note("key %s: no %s", k, versionField)
		}
		delete(got, versionField)
		if !mapsEqual(got, w) {
			note("key %s: got %q, want %q", k, got, w)
		}
	}
	for k := range want {
		if !seen[k] {
			note("missing key %s", k)
		}
	}
	if n == 0 {
		return "", nil
	}
	return fmt.Sprintf("%d differences:\n  %s", n, strings.Join(diffs, "\n  ")), nil
}

// backfillCmd runs `rowsync backfill -c cfg args...` and returns its
// combined output and exit code.
func backfillCmd(t *testing.T, cfg string, args ...string) (string, int) {
	t.Helper()
	out, code := backfillCmdErr(cfg, args...)
	if code < 0 {
		t.Fatalf("rowsync backfill: %s", out)
	}
	return out, code
}

// backfillCmdErr is backfillCmd for any goroutine: code -1 (and the error
// in the output) when the command did not run or exit.
func backfillCmdErr(cfg string, args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := cli(ctx, append([]string{"backfill", "-c", cfg}, args...)...)
	if err == nil {
		return out, 0
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() >= 0 {
		return out, ee.ExitCode()
	}
	return fmt.Sprintf("%v\n%s", err, out), -1
}

// backfillStates reads the pipeline's backfill states.
func backfillStates(t *testing.T, st backfill.Store) []backfill.State {
	t.Helper()
	states, err := st.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return states
}

// queueRun is a queue-source backfill run: the table, the process, the
// `backfill --wait` outcome and how the workload went.
type queueRun struct {
	changes int
	// setBack counts times a changed key's n (the seq of the change that wrote
	// it) was seen lower than before, sampled after each round
	setBack int
	waitOut string
}

// backfillUnderQueue starts `rowsync backfill --wait` on the running
// pipeline and, until it ends, makes changes in MySQL and publishes them
// with publish, each message held back a random number of rounds and the
// held ones published shuffled (so many arrive after the chunk that
// already holds their change, and out of order per key). It then
// publishes what is left.
func backfillUnderQueue(t *testing.T, tb *srcTable, rdb *goredis.Client, store backfill.Store, s *setup, cfg string, shuffle bool, publish func([][]byte)) queueRun {
	t.Helper()
	var r queueRun
	var wg sync.WaitGroup
	done := make(chan struct{})
	var code int
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		r.waitOut, code = backfillCmdErr(cfg, "--wait", tb.schema+".t")
	}()
	var held [][]byte
	seq := 0
	last := map[string]int64{}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if st := backfillStates(t, store); len(st) == 1 && len(st[0].Cursor) == 1 {
			tb.ahead, _ = strconv.ParseInt(st[0].Cursor[0], 10, 64)
		}
		for range 10 {
			held = append(held, tb.change(seq))
			seq++
		}
		// publish about half of what is held, shuffled; or, in order, all
		// but the newest 60
		if shuffle {
			tb.rng.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
		}
		n := len(held) / 2
		if !shuffle {
			n = max(0, len(held)-60) // a steady lag of 60 changes
		}
		publish(held[:n])
		held = append(held[:0], held[n:]...)
		r.setBack += sampleTouched(t, rdb, s.prefix, tb.touched, last)
	}
	wg.Wait()
	publish(held)
	r.changes = seq
	if code != 0 {
		t.Fatalf("rowsync backfill --wait: exit %d\n%s", code, r.waitOut)
	}
	return r
}

// queueBackfill runs the pipeline (head: its name and source block) on
// tb with Redis DB db, backfills tb under the workload (changes shuffled
// when versionField is set, else in order), waits for drain and for Redis
// to equal MySQL, and returns the workload's figures and the finished
// backfill's state.
func queueBackfill(t *testing.T, s *setup, db int, tb *srcTable, head, versionField string,
	publish func([]changegen.Message), drain func()) (queueRun, backfill.State) {
	t.Helper()
	rdb := redisDB(t, db)
	store := openBackfillStore(t, rdb, s.name)
	cfg := writeFile(t, s.dir, "rowsync.yaml", head+
		fmt.Sprintf("redis:\n  addr: 127.0.0.1:6379\n  db: %d\n", db)+processYAML(s.dl)+
		srcYAML(tb.schema, s.prefix, versionField, int(tb.chunk), tb.method))
	p := rowsync(t, cfg, s.log)
	r := backfillUnderQueue(t, tb, rdb, store, s, cfg, versionField != "", func(msgs [][]byte) {
		ms := make([]changegen.Message, len(msgs))
		for i, m := range msgs {
			ms[i] = changegen.Message{Value: m}
		}
		publish(ms)
	})
	if versionField != "" && r.setBack != 0 {
		t.Errorf("with version_field a key was set back to an older change %d times", r.setBack)
	}
	drain()
	waitRows(t, rdb, s.prefix, versionField, tb.want(s.prefix), 2*time.Minute, p)
	states := backfillStates(t, store)
	if len(states) != 1 || states[0].Status != backfill.Done {
		t.Fatalf("states: %+v", states)
	}
	if dl := readDeadLetters(t, s.dl); len(dl) != 0 {
		t.Fatalf("dead letters: %+v", dl)
	}
	p.stop(t)
	return r, states[0]
}

// kafkaBackfill is queueBackfill with a one-partition kfake topic of
// Maxwell messages, 4,000 rows.
func kafkaBackfill(t *testing.T, name, versionField, method string) {
	start := time.Now()
	s := newSetup(t, name)
	tb := newSrcTable(t, s.name, 4000)
	tb.method = method
	k := startKafka(t, s.name, 1)
	produced := 0
	r, st := queueBackfill(t, s, kafkaDB, tb, s.kafkaHeadYAML(k, "maxwell"), versionField,
		func(ms []changegen.Message) {
			k.produce(t, [][]changegen.Message{ms})
			produced += len(ms)
		},
		func() { k.waitCommittedEnd(t, s.name, []int{produced}) })
	t.Logf("%d changes of %d keys; changed keys seen set back %d times while the backfill ran; backfill %d rows, %d dropped, %d chunks; %v in all",
		r.changes, len(tb.touched), r.setBack, st.Rows, st.Dropped, st.Chunks, time.Since(start).Round(time.Millisecond))
}

// TestBackfillKafkaVersionGuard: a table of 4,000 rows that the Kafka
// topic never carried is backfilled by the running Kafka pipeline (Maxwell
// with binlog positions, mysql: configured) while changes of the same
// table are made in MySQL and published late and out of order; with
// version_field no key ever goes back to an older change and the end state
// is exact: Redis equals MySQL.
func TestBackfillKafkaVersionGuard(t *testing.T) { kafkaBackfill(t, "bfkafka", "_v", "auto") }

// TestBackfillKafkaLockingRead: TestBackfillKafkaVersionGuard with the
// watermark method MySQL uses (locking_read: L is the binlog end before
// the read, so the chunk may hold changes logged after L; their messages
// are newer than the chunk's version and win).
func TestBackfillKafkaLockingRead(t *testing.T) {
	kafkaBackfill(t, "bfklock", "_v", "locking_read")
}

// TestBackfillKafkaPlain: the same without version_field, every key's
// messages in order but delivered 60 changes behind MySQL, so many arrive
// after the chunk that already holds their change. The README's caveat: such
// an older message sets its key back until the key's newer changes arrive
// (counted, logged). A queue that keeps per-key order delivers them all
// after it, so once the topic is drained Redis equals MySQL; the test
// asserts that.
func TestBackfillKafkaPlain(t *testing.T) { kafkaBackfill(t, "bfkplain", "", "auto") }

// TestBackfillRabbitVersionGuard: TestBackfillKafkaVersionGuard with a
// RabbitMQ queue, smaller: 2,000 rows.
func TestBackfillRabbitVersionGuard(t *testing.T) {
	start := time.Now()
	s := newSetup(t, "bfrabbit")
	tb := newSrcTable(t, s.name, 2000)
	q := startRabbit(t, s.name)
	r, st := queueBackfill(t, s, rabbitDB, tb, s.rabbitHeadYAML(s.name, "maxwell"), "_v",
		func(ms []changegen.Message) { q.publish(t, ms) }, func() { q.waitEmpty(t) })
	t.Logf("%d changes of %d keys; backfill %d rows, %d dropped, %d chunks; %v in all",
		r.changes, len(tb.touched), st.Rows, st.Dropped, st.Chunks, time.Since(start).Round(time.Millisecond))
}

// TestBackfillLeaseFailover: two `rowsync run` of one binlog pipeline with
// a lease; a backfill of a 20,000-row table is requested, the leader is
// killed (SIGKILL) once it has applied some chunks, and the standby takes
// the lease and finishes the backfill from the saved cursor while changes
// go on; --status shows it done, run by the new owner; Redis equals MySQL.
func TestBackfillLeaseFailover(t *testing.T) {
	start := time.Now()
	s := newSetup(t, "bflease")
	rdb := redisDB(t, kafkaDB)
	store := openBackfillStore(t, rdb, s.name)
	tb := newSrcTable(t, s.name, 20000)
	cfg := writeFile(t, s.dir, "rowsync.yaml", fmt.Sprintf(`name: %s
source:
  binlog:
    addr: %s
    user: root
    flavor: mariadb
    server_id: %d
    include: ['%s\..*']
checkpoint:
  redis: {}
lease:
  ttl: 2s
redis:
  addr: 127.0.0.1:6379
  db: %d
`, s.name, srcMySQL, 3000+rand.IntN(100000), tb.schema, kafkaDB)+processYAML(s.dl)+
		strings.Replace(srcYAML(tb.schema, s.prefix, "", 50, "auto"), "mysql:\n  dsn: 'root@tcp("+srcMySQL+")/'\n", "", 1))
	leaseKey := "rowsync:lease:" + s.name
	holder := func() string { v, _ := rdb.Get(context.Background(), leaseKey).Result(); return v }
	pidOf := func(p *proc) string { return "/" + strconv.Itoa(p.cmd.Process.Pid) + "/" }

	a := rowsync(t, cfg, s.log)
	waitFor(t, "the first process holds the lease", time.Minute, func() (bool, string) {
		return strings.Contains(holder(), pidOf(a)), "holder " + holder()
	})
	logB := s.log + ".b"
	showLogOnFailure(t, logB)
	b := rowsync(t, cfg, logB)
	// --wait follows the backfill across the owner change
	var waitOut string
	waitCode := -1
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		waitOut, waitCode = backfillCmdErr(cfg, "--wait", tb.schema+".t")
	}()
	waitFor(t, "the backfill requested", time.Minute, func() (bool, string) {
		return len(backfillStates(t, store)) == 1, "no state yet"
	})
	seq := 0
	work := func(n int) {
		for range n {
			tb.change(seq)
			seq++
		}
	}
	state := func() backfill.State {
		states := backfillStates(t, store)
		if len(states) != 1 {
			t.Fatalf("states: %+v", states)
		}
		return states[0]
	}
	var atKill backfill.State
	waitFor(t, "the leader applies chunks", 2*time.Minute, func() (bool, string) {
		work(5)
		atKill = state()
		if !atKill.Status.Active() {
			t.Fatalf("backfill ended before the leader was killed: %+v", atKill)
		}
		return atKill.Chunks >= 5, fmt.Sprintf("%+v", atKill)
	})
	a.kill()
	if !strings.Contains(atKill.Owner, pidOf(a)) {
		t.Fatalf("backfill owner %q, leader pid %s", atKill.Owner, pidOf(a))
	}
	var end backfill.State
	waitFor(t, "the standby finishes the backfill", 3*time.Minute, func() (bool, string) {
		work(5)
		if b.exited() {
			t.Fatalf("standby exited: %v", b.err)
		}
		end = state()
		if end.Status == backfill.Failed || end.Status == backfill.Cancelled {
			t.Fatalf("backfill %s: %s", end.Status, end.Error)
		}
		return end.Status == backfill.Done, fmt.Sprintf("%+v", end)
	})
	if !strings.Contains(end.Owner, pidOf(b)) {
		t.Fatalf("done by %q, standby pid %s", end.Owner, pidOf(b))
	}
	if !resumedLogged(readLog(t, logB), tb.schema+".t") {
		t.Fatalf("the standby did not resume the backfill:\n%s", readLog(t, logB))
	}
	select {
	case <-waited:
	case <-time.After(time.Minute):
		t.Fatal("backfill --wait still running a minute after the backfill was done")
	}
	if waitCode != 0 || !strings.Contains(waitOut, ": done, ") {
		t.Fatalf("backfill --wait: exit %d\n%s", waitCode, waitOut)
	}
	status, code := backfillCmd(t, cfg, "--status")
	if code != 0 || !strings.Contains(status, " done ") || !strings.Contains(status, "run by "+end.Owner) {
		t.Fatalf("--status (exit %d):\n%s", code, status)
	}
	work(50)
	waitRows(t, rdb, s.prefix, "", tb.want(s.prefix), 2*time.Minute, b)
	b.stop(t)
	t.Logf("leader killed after %d chunks (%d rows); standby finished: %d rows, %d dropped, %d chunks; %d changes; %v in all\n%s",
		atKill.Chunks, atKill.Rows, end.Rows, end.Dropped, end.Chunks, seq, time.Since(start).Round(time.Millisecond), status)
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sampleTouched reads n of the keys the workload changed and counts those
// lower than last seen: a key set back to an older change. n only grows in
// MySQL's order (each change writes its seq), so with the version guard a
// key never goes back; a key gone (deleted) is forgotten.
func sampleTouched(t *testing.T, rdb *goredis.Client, prefix string, touched map[int64]bool, last map[string]int64) int {
	t.Helper()
	ctx := context.Background()
	pipe := rdb.Pipeline()
	var keys []string
	var cmds []*goredis.StringCmd
	for id := range touched {
		k := prefix + strconv.FormatInt(id, 10)
		keys = append(keys, k)
		cmds = append(cmds, pipe.HGet(ctx, k, "n"))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != goredis.Nil {
		t.Fatalf("sample hot keys: %v", err)
	}
	back := 0
	for i, k := range keys {
		v, err := cmds[i].Int64()
		if err != nil {
			delete(last, k)
			continue
		}
		if prev, ok := last[k]; ok && v < prev {
			back++
		}
		last[k] = v
	}
	return back
}
