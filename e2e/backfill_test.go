package e2e

// Issue 14: online backfill of a table a live pipeline has never seen.
//
// TestBackfillLive fills two tables on the binlog MariaDB (3307) before
// rowsync ever streams them: orders (100,000 rows → Redis hashes) and
// profiles (→ Redis hashes and MongoDB documents; 5,000 rows by default
// because the FerretDB stand-in takes about 1–2 ms per upsert on the loaded
// 2-core machine, 100,000 with -long). `rowsync run` first streams the
// schema with neither table in its rules; then the rules are added and
// `run` restarted, a workload starts updating, deleting and re-inserting
// rows of both tables (and keeps going through the whole backfill),
// `rowsync backfill --wait` asks for both tables, and `run` is SIGKILLed
// once the store shows chunks done but the backfill unfinished, then
// restarted. When the backfill is done, the workload stopped and the
// stream caught up, Redis and MongoDB must equal MySQL row by row, and
// `rowsync backfill --status` must show one finished backfill per table.
//
// The expected Redis hashes are built here from MySQL's own text form of
// every row (non-NULL columns), the expected documents from the rows as
// the refetch package types them and the README's value-type table
// (expectedDoc), so neither depends on the code under test.

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rowsync/rowsync/backfill"
	"github.com/rowsync/rowsync/checkpoint"
	"github.com/rowsync/rowsync/internal/changegen"
	"github.com/rowsync/rowsync/refetch"
)

// backfillDB is this file's Redis DB (FLUSHDB allowed there only): the
// sinks' hashes, the checkpoint and the backfill store.
const backfillDB = 15

// bfTable is one table of the backfill test.
type bfTable struct {
	name  string
	rows  int  // rows before the backfill
	rate  int  // workload statements a second
	mongo bool // also mapped to MongoDB
}

// bfColumns are the columns of every test table, in table order.
const bfColumns = `id BIGINT NOT NULL PRIMARY KEY,
	customer INT NOT NULL,
	sku VARCHAR(32) NOT NULL,
	qty SMALLINT NOT NULL,
	price DECIMAL(12,2) NOT NULL,
	status ENUM('new','paid','shipped') NOT NULL,
	note VARCHAR(255) NULL,
	created_at DATETIME(3) NOT NULL,
	rev INT NOT NULL DEFAULT 0`

// bfValues renders the columns of row n as a SELECT list over a column n
// (the rows of the numbers CTE and of the workload's re-inserts alike).
func bfValues(n string) string {
	return fmt.Sprintf(`%[1]s, %[1]s %% 997, CONCAT('SKU-', %[1]s %% 9973, '-XL'), %[1]s %% 50,
		(%[1]s %% 100000) / 100, ELT(1 + %[1]s %% 3, 'new', 'paid', 'shipped'),
		IF(%[1]s %% 7 = 0, NULL, CONCAT('note ', %[1]s, ' — ü')),
		TIMESTAMP('2026-01-01 00:00:00.000') + INTERVAL %[1]s SECOND + INTERVAL %[1]s %% 1000 * 1000 MICROSECOND, 0`, n)
}

// createBackfillTables creates schema on the binlog server with tables
// filled (and a small table "other" the first config maps), dropped when
// t ends.
func createBackfillTables(t *testing.T, db *sql.DB, schema string, tables []bfTable) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+schema+" CHARACTER SET utf8mb4"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+schema); err != nil {
			t.Errorf("drop %s: %v", schema, err)
		}
	})
	all := append([]bfTable{{name: "other", rows: 3}}, tables...)
	for _, tb := range all {
		start := time.Now()
		if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s.%s (%s)", schema, tb.name, bfColumns)); err != nil {
			t.Fatal(err)
		}
		q := fmt.Sprintf("INSERT INTO %s.%s %s SELECT %s FROM nums WHERE n <= %d", schema, tb.name, changegen.NumbersCTE(tb.rows), bfValues("n"), tb.rows)
		res, err := db.ExecContext(ctx, q)
		if err != nil {
			t.Fatalf("fill %s.%s: %v", schema, tb.name, err)
		}
		if n, _ := res.RowsAffected(); n != int64(tb.rows) {
			t.Fatalf("fill %s.%s: %d rows, want %d", schema, tb.name, n, tb.rows)
		}
		t.Logf("%s.%s: %d rows inserted in %v", schema, tb.name, tb.rows, time.Since(start).Round(time.Millisecond))
	}
}

// workload updates, deletes and re-inserts rows of the test tables until
// stopped, at each table's rate of statements a second, each statement
// its own transaction, with now and then a transaction of several rows.
type workload struct {
	db     *sql.DB
	schema string
	tables []bfTable

	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
	ops   atomic.Int64
}

func startWorkload(db *sql.DB, schema string, tables []bfTable) *workload {
	w := &workload{db: db, schema: schema, tables: tables, stopc: make(chan struct{})}
	for i, tb := range tables {
		w.wg.Add(1)
		go w.loop(tb, uint64(i)+1)
	}
	return w
}

func (w *workload) loop(tb bfTable, seed uint64) {
	defer w.wg.Done()
	rng := rand.New(rand.NewPCG(seed, 14))
	tick := time.NewTicker(time.Second / time.Duration(tb.rate))
	defer tick.Stop()
	var deleted []int
	name := w.schema + "." + tb.name
	// Statements are never cancelled: a statement cancelled on the client
	// may still commit on the server after stop returned, after the test
	// has read the rows it expects.
	ctx := context.Background()
	for {
		select {
		case <-w.stopc:
			return
		case <-tick.C:
		}
		id := 1 + rng.IntN(tb.rows)
		var err error
		switch op := rng.IntN(10); {
		case op < 5:
			_, err = w.db.ExecContext(ctx, fmt.Sprintf(
				"UPDATE %s SET qty = qty + 1, rev = rev + 1, status = 'paid', note = CONCAT('updated ', rev) WHERE id = %d", name, id))
		case op < 7:
			_, err = w.db.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE id = %d", name, id))
			deleted = append(deleted, id)
		case op < 9 && len(deleted) > 0:
			j := rng.IntN(len(deleted))
			id = deleted[j]
			deleted[j] = deleted[len(deleted)-1]
			deleted = deleted[:len(deleted)-1]
			_, err = w.db.ExecContext(ctx, fmt.Sprintf(
				"INSERT INTO %s SELECT %s FROM (SELECT %d AS n) AS one ON DUPLICATE KEY UPDATE rev = %s.rev + 1", name, bfValues("n"), id, tb.name))
		default:
			// one transaction over a run of neighbouring rows: it may
			// straddle a chunk boundary
			_, err = w.db.ExecContext(ctx, fmt.Sprintf(
				"UPDATE %s SET rev = rev + 1, note = NULL WHERE id BETWEEN %d AND %d", name, id, id+20))
		}
		if err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = fmt.Errorf("workload on %s: %w", name, err)
			}
			w.mu.Unlock()
			return
		}
		w.ops.Add(1)
	}
}

// stop ends the workload, after the statements under way, and returns its
// first error.
func (w *workload) stop() error {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// failed returns the workload's error so far.
func (w *workload) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// redisWant reads every row of schema.table in MySQL's text form and
// returns the hash each must have under keyPrefix+id: its non-NULL columns.
func redisWant(ctx context.Context, db *sql.DB, schema, table, keyPrefix string) (map[string]map[string]string, error) {
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT * FROM %s.%s", schema, table))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	out := map[string]map[string]string{}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		h := make(map[string]string, len(cols))
		for i, c := range cols {
			if vals[i] != nil {
				h[c] = string(vals[i])
			}
		}
		out[keyPrefix+h["id"]] = h
	}
	return out, rows.Err()
}

// freePort returns a TCP address on 127.0.0.1 nobody listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// cli runs a one-shot rowsync command (not `run`) and returns its
// combined output.
func cli(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, binary, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startCLI starts a rowsync command whose output goes to logPath; done is
// closed when it exits, with its error in *errp.
func startCLI(t *testing.T, logPath string, args ...string) (done chan struct{}, errp *error) {
	t.Helper()
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done, errp = make(chan struct{}), new(error)
	go func() {
		*errp = cmd.Wait()
		lf.Close()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return done, errp
}

// bfEnv is one backfill test's schema, sinks and config.
type bfEnv struct {
	t      *testing.T
	s      *setup
	m      *mongoServer
	rdb    *goredis.Client
	db     *sql.DB
	schema string // MySQL schema, also the MongoDB database
	admin  string // rowsync's admin address (/metrics)
	head   string // name and source block of the config
}

// newBFEnv creates the tables (filled) in a new schema and the sinks'
// places, all removed when t ends.
func newBFEnv(t *testing.T, name string, tables []bfTable) *bfEnv {
	t.Helper()
	e := &bfEnv{t: t, m: startMongo(t), rdb: redisDB(t, backfillDB), s: newSetup(t, name),
		schema: "rs_e2e_" + name + "_" + randomHex(4), admin: freePort(t)}
	e.head = binlogHeadYAML(e.s.name, e.schema)
	e.m.database(t, e.schema)
	db, err := sql.Open("mysql", binlogDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(8)
	e.db = db
	createBackfillTables(t, db, e.schema, tables)
	return e
}

// config writes the pipeline's config, mapping the table "other" and the
// tables in mapped, and returns its path.
func (e *bfEnv) config(mapped []bfTable) string {
	var b strings.Builder
	b.WriteString(e.head)
	fmt.Fprintf(&b, `redis:
  addr: 127.0.0.1:6379
  db: %d
mongo:
  uri: %q
  decimal: %s
`, backfillDB, e.m.uri, e.m.decimalMode())
	if e.m.ferret {
		b.WriteString("  bulk_size: 25\nworkers: 2\n")
	}
	b.WriteString(strings.Replace(processYAML(e.s.dl), `addr: "off"`, "addr: "+e.admin, 1))
	b.WriteString("tables:\n")
	for _, tb := range append([]bfTable{{name: "other"}}, mapped...) {
		fmt.Fprintf(&b, "  - match: '%s\\.%s'\n    redis_hash:\n      key: '%s'\n", e.schema, tb.name, e.keyPrefix(tb)+"{pk}")
		if tb.mongo {
			fmt.Fprintf(&b, "    mongo:\n      database: %s\n", e.schema)
		}
	}
	return writeFile(e.t, e.s.dir, "rowsync.yaml", b.String())
}

// keyPrefix is the Redis key of tb's rows without the primary key.
func (e *bfEnv) keyPrefix(tb bfTable) string { return e.s.prefix + tb.name + ":" }

// names returns the tables' db.table names.
func (e *bfEnv) names(tables []bfTable) []string {
	out := make([]string, len(tables))
	for i, tb := range tables {
		out[i] = e.schema + "." + tb.name
	}
	return out
}

// startStreaming starts `run` on cfg and waits until it streams the
// schema: a change of other:1 reaches Redis. The change is made again
// every few seconds, since one made before run has resolved its start
// position (current) is never streamed.
func (e *bfEnv) startStreaming(cfg string) *proc {
	e.t.Helper()
	p := rowsync(e.t, cfg, e.s.log)
	ctx := context.Background()
	var want string
	var bumped time.Time
	waitFor(e.t, "rowsync streaming the schema (other:1 in Redis)", 3*time.Minute, func() (bool, string) {
		if p.exited() {
			e.t.Fatalf("rowsync exited: %v", p.err)
		}
		if time.Since(bumped) > 3*time.Second {
			if _, err := e.db.ExecContext(ctx, fmt.Sprintf("UPDATE %s.other SET rev = rev + 1 WHERE id = 1", e.schema)); err != nil {
				e.t.Fatal(err)
			}
			if err := e.db.QueryRowContext(ctx, fmt.Sprintf("SELECT rev FROM %s.other WHERE id = 1", e.schema)).Scan(&want); err != nil {
				e.t.Fatal(err)
			}
			bumped = time.Now()
		}
		got, err := e.rdb.HGet(ctx, e.keyPrefix(bfTable{name: "other"})+"1", "rev").Result()
		return got == want, fmt.Sprintf("rev %q, want %s, %v", got, want, err)
	})
	return p
}

// waitEqual waits until every table's Redis hashes (and MongoDB
// documents, for a mongo table) equal its rows in MySQL exactly; p must
// keep running.
func (e *bfEnv) waitEqual(tables []bfTable, p *proc) {
	e.t.Helper()
	ctx := context.Background()
	r, err := refetch.New(refetch.Config{DSN: binlogDSN, Timeout: time.Minute}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Close()
	for _, tb := range tables {
		want, err := redisWant(ctx, e.db, e.schema, tb.name, e.keyPrefix(tb))
		if err != nil {
			e.t.Fatal(err)
		}
		waitState(e.t, e.rdb, e.keyPrefix(tb), want, 5*time.Minute, p)
		e.t.Logf("Redis: %s equals MySQL (%d rows)", tb.name, len(want))
		if !tb.mongo {
			continue
		}
		docs, err := tableDocs(ctx, r, e.schema, tb.name, []string{"id"}, !e.m.ferret)
		if err != nil {
			e.t.Fatal(err)
		}
		e.m.waitDocs(e.t, "MongoDB "+tb.name, e.schema, func() map[string]docSet { return map[string]docSet{tb.name: docs} }, 5*time.Minute, p, nil)
		e.t.Logf("MongoDB: %s equals MySQL (%d documents)", tb.name, len(docs))
	}
}

// TestBackfillLive: see the top of this file.
func TestBackfillLive(t *testing.T) {
	began := time.Now()
	tables := []bfTable{{name: "orders", rows: 100000, rate: 200}, {name: "profiles", rows: size(5000, 100000), rate: 20, mongo: true}}
	e := newBFEnv(t, "bf", tables)
	s, db, rdb := e.s, e.db, e.rdb
	ctx := context.Background()

	// The pipeline streams the schema with neither table in its rules.
	p := e.startStreaming(e.config(nil))

	// The workload starts while the tables are not mapped (the checkpoint
	// moves past its changes) and runs through the whole backfill.
	w := startWorkload(db, e.schema, tables)
	t.Cleanup(func() { _ = w.stop() })
	waitOps := func(what string, n int64) {
		t.Helper()
		waitFor(t, what, 3*time.Minute, func() (bool, string) {
			if err := w.failed(); err != nil {
				t.Fatal(err)
			}
			return w.ops.Load() >= n, fmt.Sprintf("%d statements", w.ops.Load())
		})
	}
	waitOps("workload statements while the tables are unmapped", 100)
	p.stop(t)

	// The rules are added and run restarted; backfill --wait asks for both.
	cfg := e.config(tables)
	p = rowsync(t, cfg, s.log)
	names := e.names(tables)
	waitLog := filepath.Join(s.dir, "backfill-wait.log")
	showLogOnFailure(t, waitLog)
	// chunks of 2,000 rows: 50 of orders, so the kill below lands in the middle
	waitDone, waitErr := startCLI(t, waitLog, append([]string{"backfill", "-c", cfg, "--wait", "--chunk", "2000"}, names...)...)
	store := openBackfillStore(t, rdb, s.name)

	// SIGKILL once a table has a fifth of its chunks applied (orders: 10 of
	// 50) and is not finished.
	killAt := map[string]int64{}
	for _, tb := range tables {
		killAt[e.schema+"."+tb.name] = int64(max(1, min(10, tb.rows/2000/5)))
	}
	var killed backfill.State
	waitFor(t, "a backfill with chunks applied, not finished", 5*time.Minute, func() (bool, string) {
		if p.exited() {
			t.Fatalf("rowsync exited: %v", p.err)
		}
		sts, err := store.List(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, st := range sts {
			if st.Status == backfill.Running && st.Chunks >= killAt[st.Name()] && st.Cursor != nil {
				killed = st
				return true, ""
			}
		}
		return false, describeStates(sts)
	})
	p.kill()
	t.Logf("SIGKILL of run while %s was at chunk %d, cursor %v, %d rows (%v after the start)",
		killed.Name(), killed.Chunks, killed.Cursor, killed.Rows, time.Since(began).Round(time.Millisecond))
	waitOps("workload statements while run is down", w.ops.Load()+100)

	// The restarted run resumes each table after its stored cursor.
	p = rowsync(t, cfg, s.log)
	deadline := time.Now().Add(15 * time.Minute)
	var resumedAt []string
	for waiting := true; waiting; {
		select {
		case <-waitDone:
			waiting = false
		case <-time.After(200 * time.Millisecond):
		}
		if p.exited() {
			t.Fatalf("rowsync exited during the backfill: %v", p.err)
		}
		if err := w.failed(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("backfill --wait did not end within 15 minutes")
		}
		sts, err := store.List(ctx)
		if err != nil {
			continue
		}
		for _, st := range sts {
			if st.Name() != killed.Name() || st.Owner == killed.Owner || st.Cursor == nil || resumedAt != nil {
				continue
			}
			resumedAt = st.Cursor
			if cursorLess(st.Cursor, killed.Cursor) {
				t.Errorf("%s: the restarted run is at cursor %v, before the cursor %v stored at the kill: not resumed",
					st.Name(), st.Cursor, killed.Cursor)
			}
		}
	}
	if *waitErr != nil {
		b, _ := os.ReadFile(waitLog)
		t.Fatalf("backfill --wait: %v\n%s", *waitErr, tail(string(b), 4000))
	}
	t.Logf("backfill --wait exited 0 %v after the start; first cursor seen after the restart %v",
		time.Since(began).Round(time.Millisecond), resumedAt)
	if b, err := os.ReadFile(s.log); err != nil || !resumedLogged(string(b), killed.Name()) {
		t.Errorf("the restarted run logged no resumed backfill of %s (%v)", killed.Name(), err)
	}

	// The workload stops; once the stream has caught up every sink equals MySQL.
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("workload: %d statements", w.ops.Load())
	e.waitEqual(tables, p)

	// --status shows one finished backfill per table.
	out, err := cli(ctx, "backfill", "-c", cfg, "--status")
	if err != nil {
		t.Fatalf("backfill --status: %v\n%s", err, out)
	}
	t.Logf("backfill --status:\n%s", out)
	sts, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != len(tables) {
		t.Errorf("%d backfill states, want one per table: %s", len(sts), describeStates(sts))
	}
	for _, name := range names {
		var lines []string
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == name {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 || strings.Fields(lines[0])[1] != string(backfill.Done) {
			t.Errorf("--status shows %s in %d lines %q, want one, done", name, len(lines), lines)
		}
		for _, st := range sts {
			if st.Name() == name && (st.Status != backfill.Done || st.Finished.IsZero() || st.Rows == 0) {
				t.Errorf("%s: %s, want done with rows and a finish time", name, describeStates([]backfill.State{st}))
			}
		}
	}
	// the restarted process counts the rows it applied (the table killed
	// mid-way has some; a table finished before the kill has none there)
	checkBackfillMetrics(t, e.admin, []string{killed.Name()})
	p.stop(t)
	if dl := readDeadLetters(t, s.dl); len(dl) > 0 {
		t.Errorf("%d dead letters, first: %+v", len(dl), dl[0])
	}
	t.Logf("TestBackfillLive took %v", time.Since(began).Round(time.Millisecond))
}

// resumedLogged reports whether log has a "backfill started" line of table
// with resumed=true.
func resumedLogged(log, table string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `msg="backfill started"`) && strings.Contains(l, "table="+table+" ") && strings.Contains(l, "resumed=true") {
			return true
		}
	}
	return false
}

// openBackfillStore opens the Redis backfill store of pipeline name, as
// `rowsync backfill` does for a config with the default checkpoint.
func openBackfillStore(t *testing.T, rdb *goredis.Client, name string) backfill.Store {
	t.Helper()
	st, err := backfill.Open(checkpoint.Config{}, name, rdb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func describeStates(sts []backfill.State) string {
	if len(sts) == 0 {
		return "no backfill stored"
	}
	var parts []string
	for _, st := range sts {
		parts = append(parts, fmt.Sprintf("%s %s chunks %d rows %d/%d cursor %v owner %s %s",
			st.Name(), st.Status, st.Chunks, st.Rows, st.Estimate, st.Cursor, st.Owner, st.Error))
	}
	return strings.Join(parts, "; ")
}

// cursorLess compares two single-column integer cursors.
func cursorLess(a, b []string) bool {
	if len(a) != 1 || len(b) != 1 {
		return false
	}
	x, errA := strconv.ParseInt(a[0], 10, 64)
	y, errB := strconv.ParseInt(b[0], 10, 64)
	return errA == nil && errB == nil && x < y
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// checkBackfillMetrics reads /metrics and checks that every table has a
// rowsync_backfill_rows_total series above zero.
func checkBackfillMetrics(t *testing.T, admin string, names []string) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Errorf("metrics: %v", err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("metrics: %v", err)
		return
	}
	for _, name := range names {
		found := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "rowsync_backfill_rows_total{") && strings.Contains(line, name[strings.IndexByte(name, '.')+1:]) {
				found = !strings.HasSuffix(line, " 0")
			}
		}
		if !found {
			t.Errorf("no rowsync_backfill_rows_total above 0 for %s in /metrics", name)
		}
	}
}

// TestVerifyRepair: with `run` streaming a table into Redis and MongoDB,
// a hash and a document are corrupted by hand (a field changed, one
// deleted, one that no row explains added, in each sink); `rowsync verify`
// must report them, `rowsync verify --repair` push the differing keys
// through the running pipeline, and `rowsync verify` report nothing after.
func TestVerifyRepair(t *testing.T) {
	tables := []bfTable{{name: "profiles", rows: 2000, mongo: true}}
	e := newBFEnv(t, "vr", tables)
	ctx := context.Background()
	cfg := e.config(tables)
	p := e.startStreaming(cfg)
	if out, err := cli(ctx, "backfill", "-c", cfg, "--wait", e.names(tables)[0]); err != nil {
		t.Fatalf("backfill --wait: %v\n%s", err, out)
	}
	e.waitEqual(tables, p)

	key := func(id int) string { return e.keyPrefix(tables[0]) + strconv.Itoa(id) }
	if err := e.rdb.HSet(ctx, key(5), "qty", "12345").Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Del(ctx, key(6)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.HSet(ctx, key(999999), "id", "999999", "sku", "ghost").Err(); err != nil {
		t.Fatal(err)
	}
	coll := e.m.client.Database(e.schema).Collection("profiles")
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: int64(7)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "note", Value: "corrupted"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: int64(8)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int64(999998)}, {Key: "id", Value: int64(999998)}}); err != nil {
		t.Fatal(err)
	}

	out, err := cli(ctx, "verify", "-c", cfg)
	t.Logf("verify before the repair (%v):\n%s", err, out)
	if err == nil {
		t.Fatalf("verify found nothing to report after the corruption")
	}
	for _, want := range []string{key(5), key(6), key(999999), "DIFF  redis", "DIFF  mongo"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify does not report %q", want)
		}
	}
	out, err = cli(ctx, "verify", "-c", cfg, "--repair")
	t.Logf("verify --repair (%v):\n%s", err, out)
	if p.exited() {
		t.Fatalf("rowsync exited: %v", p.err)
	}
	out, err = cli(ctx, "verify", "-c", cfg)
	t.Logf("verify after the repair (%v):\n%s", err, out)
	if err != nil || strings.Contains(out, "DIFF") {
		t.Fatalf("verify still reports differences after --repair: %v", err)
	}
	e.waitEqual(tables, p)
	p.stop(t)
	if dl := readDeadLetters(t, e.s.dl); len(dl) > 0 {
		t.Errorf("%d dead letters, first: %+v", len(dl), dl[0])
	}
}
