package main

// End-to-end tests of the binary against the real services: MariaDB with
// binlog on 127.0.0.1:3307 (scripts/mariadb-binlog.sh) and Redis. They run
// the built rowsync as a subprocess so they can SIGKILL it.

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/cdc"
	redisproj "github.com/rowsync/rowsync/projector/redis"
	"github.com/rowsync/rowsync/refetch"
	"github.com/rowsync/rowsync/verify"
)

var long = flag.Bool("long", os.Getenv("ROWSYNC_LONG") == "1", "run the long soak versions")

var rowsyncBin string

const e2eRedisDB = 10

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(mainWithServices(m))
}

func mainWithServices(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	svc := exec.Command("bash", filepath.Join(root, "scripts", "services.sh"))
	svc.Env = append(os.Environ(), "ROWSYNC_SKIP_FERRETDB=1")
	if out, err := svc.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "services: %v\n%s", err, out)
		return 1
	}
	dir, err := os.MkdirTemp("", "rowsync-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	rowsyncBin = filepath.Join(dir, "rowsync")
	build := exec.Command("go", "build", "-race", "-o", rowsyncBin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// proc is a running rowsync.
type proc struct {
	cmd   *exec.Cmd
	log   string
	admin string
	done  chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startRowsync(t *testing.T, cfgPath, admin, logPath string) *proc {
	t.Helper()
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rowsyncBin, "run", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: logPath, admin: admin, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); lf.Close() }()
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + admin + "/healthz"); err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("rowsync exited early: %v\n%s", err, readFile(logPath))
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("rowsync did not come up\n%s", readFile(logPath))
	return nil
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	}
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("rowsync exit after SIGTERM: %v\n%s", err, readFile(p.log))
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("rowsync did not stop after SIGTERM\n%s", readFile(p.log))
	}
}

// waitLog waits, with a deadline generous enough for a loaded machine,
// until the log file at path contains want past its first from bytes.
func waitLog(t *testing.T, path string, from int, want, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		b, _ := os.ReadFile(path)
		if len(b) > from && strings.Contains(string(b[from:]), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%q in the log):\n%s", what, want, readFile(path))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logSize is the current length of the log at path.
func logSize(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return int(fi.Size())
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	return string(b)
}

// fixture is one test's schema, Redis and config.
type fixture struct {
	t        *testing.T
	schema   string
	name     string
	db       *sql.DB
	rdb      *goredis.Client
	dir      string
	cfgPath  string
	admin    string
	deadFile string
}

func newFixture(t *testing.T, redisAddr string, redisDB int) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), admin: freeAddr(t)}
	f.schema = fmt.Sprintf("rs_e2e_%s_%d", strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name())), os.Getpid())
	f.name = strings.ReplaceAll(f.schema, "_", "-")
	var err error
	f.db, err = sql.Open("mysql", "root@tcp(127.0.0.1:3307)/?interpolateParams=true&time_zone=%27%2B00%3A00%27&multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	f.db.SetMaxOpenConns(4)
	f.exec("DROP DATABASE IF EXISTS " + f.schema)
	f.exec("CREATE DATABASE " + f.schema + " CHARACTER SET utf8mb4")
	f.exec(`CREATE TABLE ` + f.schema + `.users (
		id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(64), email VARCHAR(128), balance DECIMAL(12,2),
		score DOUBLE, created DATETIME(3), birthday DATE, avatar BLOB, prefs JSON,
		status ENUM('active','banned','gone'), tags SET('x','y','z'), flags BIT(8), t TIME, y YEAR,
		ts TIMESTAMP(6) NULL DEFAULT NULL)`)
	f.exec(`CREATE TABLE ` + f.schema + `.orders (user_id BIGINT, order_no INT, amount DECIMAL(10,3),
		note TEXT, PRIMARY KEY (user_id, order_no))`)
	f.rdb = goredis.NewClient(&goredis.Options{Addr: redisAddr, DB: redisDB})
	f.deadFile = filepath.Join(f.dir, "deadletter.jsonl")
	f.cfgPath = filepath.Join(f.dir, "rowsync.yaml")
	cfg := fmt.Sprintf(`name: %s
source:
  binlog:
    addr: 127.0.0.1:3307
    user: root
    flavor: mariadb
    server_id: %d
    include: ["%s\\..*"]
checkpoint:
  redis: {}
redis:
  addr: %s
  db: %d
deadletter:
  file: %s
admin:
  addr: %s
pipeline:
  retry_max: 1s
tables:
  - match: %s.users
    redis_hash: {}
  - match: %s.orders
    redis_hash:
      key: "ord:%s:{user_id}:{order_no}"
`, f.name, 2000+rand.IntN(100000), f.schema, redisAddr, redisDB, f.deadFile, f.admin, f.schema, f.schema, f.schema)
	if err := os.WriteFile(f.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		f.db.Exec("DROP DATABASE IF EXISTS " + f.schema)
		f.db.Close()
		for _, pat := range []string{f.schema + "_*", "ord:" + f.schema + ":*", "rowsync:checkpoint:" + f.name, "rowsync:checkpoint:" + f.name + ":*"} {
			iter := f.rdb.Scan(ctx, 0, pat, 1000).Iterator()
			for iter.Next(ctx) {
				f.rdb.Del(ctx, iter.Val())
			}
		}
		f.rdb.Close()
	})
	return f
}

func (f *fixture) exec(q string, args ...any) {
	f.t.Helper()
	if _, err := f.db.Exec(q, args...); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

func (f *fixture) start() *proc {
	return startRowsync(f.t, f.cfgPath, f.admin, filepath.Join(f.dir, "rowsync.log"))
}

// check compares Redis with MySQL once, through the projector's own
// rendering of the config's two rules.
func (f *fixture) check() (verify.Stats, []verify.Mismatch, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rf, err := refetch.New(refetch.Config{DSN: "root@tcp(127.0.0.1:3307)/", Timeout: time.Minute}, nil)
	if err != nil {
		return verify.Stats{}, nil, err
	}
	defer rf.Close()
	var rules []cdc.TableRule[redisproj.TableConfig]
	for _, r := range []struct{ table, key string }{
		{"users", "{db}_{table}_{pk}"}, {"orders", "ord:" + f.schema + ":{user_id}:{order_no}"},
	} {
		rules = append(rules, cdc.TableRule[redisproj.TableConfig]{Match: regexp.MustCompile("^" + regexp.QuoteMeta(f.schema+"."+r.table) + "$"),
			Config: redisproj.TableConfig{Key: r.key}})
	}
	proj, err := redisproj.New(f.rdb, rules, nil)
	if err != nil {
		return verify.Stats{}, nil, err
	}
	var total verify.Stats
	var mism []verify.Mismatch
	for _, table := range []string{"users", "orders"} {
		im, _ := proj.Image(f.schema, table)
		st, err := verify.Redis(ctx, rf, f.rdb, im, f.schema, table, verify.Options{Report: func(m verify.Mismatch) {
			if len(mism) < 10 {
				mism = append(mism, m)
			}
		}})
		if err != nil {
			return total, nil, err
		}
		total.Add(st)
	}
	return total, mism, nil
}

// converge polls until Redis equals MySQL (the pipeline has drained) and
// fails with the differences if it never does.
func (f *fixture) converge(p *proc) verify.Stats {
	f.t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for {
		st, mism, err := f.check()
		if err == nil && st.OK() {
			return st
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("Redis never matched MySQL: %v %v %+v\nrowsync log:\n%s", st, err, mism, readFile(p.log))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// workload writes mixed row changes: single and multi-row inserts,
// updates that set columns to new values or NULL (unicode, emoji, BLOB
// bytes, JSON), deletes, primary-key changes, composite keys.
type workload struct {
	f       *fixture
	rng     *rand.Rand
	users   map[uint64]bool
	orders  map[[2]int64]bool
	nextID  uint64
	changes int
}

func newWorkload(f *fixture, seed uint64) *workload {
	return &workload{f: f, rng: rand.New(rand.NewPCG(seed, 7)), users: map[uint64]bool{}, orders: map[[2]int64]bool{}, nextID: 1}
}

var names = []string{"Zoë 🚀", "名前テスト", `O'Brien "quoted" \ back`, "emoji 👩‍👩‍👧‍👦", "plain", "tab\tand\nnewline", ""}

func (w *workload) userValues() []any {
	r := w.rng
	null := func(v any) any {
		if r.IntN(6) == 0 {
			return nil
		}
		return v
	}
	blob := make([]byte, r.IntN(12))
	for i := range blob {
		blob[i] = byte(r.IntN(256))
	}
	return []any{
		null(names[r.IntN(len(names))]),
		null(fmt.Sprintf("user%d@example.com", r.IntN(100000))),
		null(fmt.Sprintf("%d.%02d", r.IntN(2000000)-1000000, r.IntN(100))),
		null(float64(r.IntN(100000)) / 8),
		null(fmt.Sprintf("2024-%02d-%02d %02d:%02d:%02d.%03d", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000))),
		null(fmt.Sprintf("19%02d-%02d-%02d", r.IntN(100), 1+r.IntN(12), 1+r.IntN(28))),
		null(blob),
		null(fmt.Sprintf(`{"lang": "%s", "n": %d, "nested": {"ok": true}}`, []string{"de", "en", "ja"}[r.IntN(3)], r.IntN(100))),
		null([]string{"active", "banned", "gone"}[r.IntN(3)]),
		null([]string{"", "x", "x,y", "y,z", "x,y,z"}[r.IntN(5)]),
		null(r.IntN(256)),
		null(fmt.Sprintf("%s%d:%02d:%02d", []string{"", "-"}[r.IntN(2)], r.IntN(839), r.IntN(60), r.IntN(60))),
		null(1901 + r.IntN(254)),
		null(fmt.Sprintf("2020-%02d-%02d 10:00:00.%06d", 1+r.IntN(12), 1+r.IntN(28), r.IntN(1000000))),
	}
}

const userCols = "id,name,email,balance,score,created,birthday,avatar,prefs,status,tags,flags,t,y,ts"

func (w *workload) pickUser() (uint64, bool) {
	for id := range w.users { // map order is random enough
		return id, true
	}
	return 0, false
}

// step runs one transaction of a few statements.
func (w *workload) step(tx *sql.Tx) error {
	r := w.rng
	s := w.f.schema
	for n := 1 + r.IntN(5); n > 0; n-- {
		switch k := r.IntN(100); {
		case k < 30 || len(w.users) < 50: // multi-row insert
			rows := 1 + r.IntN(8)
			var ph []string
			var args []any
			for i := 0; i < rows; i++ {
				id := w.nextID
				w.nextID++
				w.users[id] = true
				ph = append(ph, "(?"+strings.Repeat(",?", 14)+")")
				args = append(append(args, id), w.userValues()...)
			}
			if _, err := tx.Exec("INSERT INTO "+s+".users ("+userCols+") VALUES "+strings.Join(ph, ","), args...); err != nil {
				return err
			}
			w.changes += rows
		case k < 65: // update some columns of one or several rows
			id, _ := w.pickUser()
			vals := w.userValues()
			cols := strings.Split(userCols, ",")[1:]
			var set []string
			var args []any
			for i, c := range cols {
				if r.IntN(3) == 0 {
					set = append(set, c+"=?")
					args = append(args, vals[i])
				}
			}
			if len(set) == 0 {
				set, args = []string{"name=?"}, []any{"touched"}
			}
			ids := []any{id}
			if r.IntN(4) == 0 {
				if id2, ok := w.pickUser(); ok && id2 != id {
					ids = append(ids, id2)
				}
			}
			res, err := tx.Exec("UPDATE "+s+".users SET "+strings.Join(set, ",")+" WHERE id IN (?"+strings.Repeat(",?", len(ids)-1)+")", append(args, ids...)...)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			w.changes += int(n)
		case k < 80: // delete
			id, _ := w.pickUser()
			if _, err := tx.Exec("DELETE FROM "+s+".users WHERE id=?", id); err != nil {
				return err
			}
			delete(w.users, id)
			w.changes++
		case k < 85: // primary-key change
			id, _ := w.pickUser()
			nid := w.nextID
			w.nextID++
			if _, err := tx.Exec("UPDATE "+s+".users SET id=? WHERE id=?", nid, id); err != nil {
				return err
			}
			delete(w.users, id)
			w.users[nid] = true
			w.changes++
		default: // composite-key table
			key := [2]int64{int64(r.IntN(300)), int64(r.IntN(10))}
			if w.orders[key] && r.IntN(3) == 0 {
				if _, err := tx.Exec("DELETE FROM "+s+".orders WHERE user_id=? AND order_no=?", key[0], key[1]); err != nil {
					return err
				}
				delete(w.orders, key)
			} else {
				if _, err := tx.Exec("INSERT INTO "+s+".orders VALUES (?,?,?,?) ON DUPLICATE KEY UPDATE amount=VALUES(amount), note=VALUES(note)",
					key[0], key[1], fmt.Sprintf("%d.%03d", r.IntN(10000), r.IntN(1000)), names[r.IntN(len(names))]); err != nil {
					return err
				}
				w.orders[key] = true
			}
			w.changes++
		}
	}
	return nil
}

// run writes until at least n more row changes are done.
func (w *workload) run(n int) {
	w.f.t.Helper()
	target := w.changes + n
	for w.changes < target {
		tx, err := w.f.db.Begin()
		if err != nil {
			w.f.t.Fatal(err)
		}
		if err := w.step(tx); err != nil {
			tx.Rollback()
			w.f.t.Fatalf("workload: %v", err)
		}
		if err := tx.Commit(); err != nil {
			w.f.t.Fatal(err)
		}
	}
}

// bigTransaction inserts rows rows in one transaction.
func (w *workload) bigTransaction(rows int) {
	w.f.t.Helper()
	tx, err := w.f.db.Begin()
	if err != nil {
		w.f.t.Fatal(err)
	}
	for done := 0; done < rows; done += 100 {
		var ph []string
		var args []any
		for i := 0; i < 100 && done+i < rows; i++ {
			id := w.nextID
			w.nextID++
			w.users[id] = true
			ph = append(ph, "(?"+strings.Repeat(",?", 14)+")")
			args = append(append(args, id), w.userValues()...)
		}
		if _, err := tx.Exec("INSERT INTO "+w.f.schema+".users ("+userCols+") VALUES "+strings.Join(ph, ","), args...); err != nil {
			tx.Rollback()
			w.f.t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		w.f.t.Fatal(err)
	}
	w.changes += rows
}

func (f *fixture) deadLetters() string {
	b, err := os.ReadFile(f.deadFile)
	if err != nil && !os.IsNotExist(err) {
		f.t.Fatal(err)
	}
	return string(b)
}

// TestBinlogToRedisExactAcrossKillAndRestart writes 50,000 mixed row
// changes while rowsync is SIGKILLed once mid-stream and stopped cleanly
// once (with changes written while it is down), and checks that every
// row's hash equals the row and deleted rows are gone.
func TestBinlogToRedisExactAcrossKillAndRestart(t *testing.T) {
	total := 50000
	if *long {
		total = 200000
	}
	f := newFixture(t, "127.0.0.1:6379", e2eRedisDB)
	p := f.start()
	w := newWorkload(f, 1)

	w.run(total * 3 / 10)
	w.bigTransaction(5000)
	// SIGKILL while the pipeline is busy with the big transaction.
	p.kill()
	w.run(total / 10)
	p = f.start()
	w.run(total * 2 / 10)

	// clean stop mid-stream, writes while stopped, start again
	p.stop(t)
	w.run(total * 2 / 10)
	p = f.start()
	w.run(total - w.changes)

	st := f.converge(p)
	t.Logf("%d row changes written; Redis equals MySQL: %v", w.changes, st)
	if dl := f.deadLetters(); dl != "" {
		t.Fatalf("unexpected dead letters:\n%s", dl)
	}
	p.stop(t)
}

// TestRedisRestartLosesNothing restarts a private, persistent Redis under
// a running rowsync: it retries without acking, then catches up.
func TestRedisRestartLosesNothing(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	startRedis := func() *exec.Cmd {
		cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", dir,
			"--appendonly", "yes", "--appendfsync", "always", "--save", "")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		defer c.Close()
		deadline := time.Now().Add(3 * time.Minute)
		for c.Ping(context.Background()).Err() != nil {
			if time.Now().After(deadline) {
				t.Fatal("private redis did not start")
			}
			time.Sleep(25 * time.Millisecond)
		}
		return cmd
	}
	rs := startRedis()
	t.Cleanup(func() { rs.Process.Kill(); rs.Wait() })

	f := newFixture(t, addr, 0)
	p := f.start()
	w := newWorkload(f, 2)
	w.run(4000)

	// Redis goes away while changes keep coming.
	before := logSize(p.log)
	goredis.NewClient(&goredis.Options{Addr: addr}).Shutdown(context.Background())
	rs.Wait()
	w.run(4000)
	// Restart Redis only once rowsync has hit the outage and is retrying.
	waitLog(t, p.log, before, "transient error, retrying", "rowsync to see the outage")
	rs = startRedis()
	w.run(2000)

	st := f.converge(p)
	t.Logf("Redis restarted mid-stream; after recovery: %v", st)
	p.stop(t)
}

// TestSchemaMistakesStopRunBeforeStreaming: a keyless table with a {pk}
// key, and a template naming a missing column, are refused at start with
// messages that name the rule, the table and the fix.
func TestSchemaMistakesStopRunBeforeStreaming(t *testing.T) {
	f := newFixture(t, "127.0.0.1:6379", e2eRedisDB)
	f.exec("CREATE TABLE " + f.schema + ".events (at DATETIME, what VARCHAR(10))")
	cfg := readFile(f.cfgPath) + "  - match: " + f.schema + ".events\n    redis_hash: {}\n"
	cfg = strings.Replace(cfg, `key: "ord:`+f.schema+`:{user_id}:{order_no}"`, `key: "ord:`+f.schema+`:{user_id}:{order_nr}"`, 1)
	if err := os.WriteFile(f.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(rowsyncBin, "run", "-c", f.cfgPath).CombinedOutput()
	if err == nil {
		t.Fatalf("run accepted the schema mistakes:\n%s", out)
	}
	for _, want := range []string{
		"tables[2] (" + f.schema + ".events): redis_hash.key \"{db}_{table}_{pk}\" needs {pk} but the table has no primary key",
		"tables[1] (" + f.schema + ".orders): redis_hash.key: unknown column \"order_nr\"",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, _ = exec.Command(rowsyncBin, "check", "-c", f.cfgPath).CombinedOutput()
	if !strings.Contains(string(out), "FAIL  schema of mapped tables") {
		t.Errorf("check did not report the schema:\n%s", out)
	}
}

// TestLeaseFailover runs two rowsync processes on one binlog pipeline:
// one streams, the other stands by; SIGKILL the active one mid-stream and
// the standby takes over from the checkpoint, ending exact.
func TestLeaseFailover(t *testing.T) {
	f := newFixture(t, "127.0.0.1:6379", e2eRedisDB)
	leaseKey := "rowsync:lease:" + f.name
	t.Cleanup(func() { f.rdb.Del(context.Background(), leaseKey) })
	base := readFile(f.cfgPath) + "lease:\n  ttl: 2s\n"
	if err := os.WriteFile(f.cfgPath, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	standbyAdmin := freeAddr(t)
	standbyCfg := filepath.Join(f.dir, "standby.yaml")
	if err := os.WriteFile(standbyCfg, []byte(strings.Replace(base, f.admin, standbyAdmin, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	active := f.start()
	standbyLog := filepath.Join(f.dir, "standby.log")
	lf, _ := os.Create(standbyLog)
	standby := exec.Command(rowsyncBin, "run", "-c", standbyCfg)
	standby.Stdout, standby.Stderr = lf, lf
	if err := standby.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { standby.Process.Kill(); standby.Wait(); lf.Close() })
	waitLog(t, standbyLog, 0, "standby: waiting for the lease", "the second process to stand by")

	w := newWorkload(f, 3)
	w.run(5000)
	active.kill()
	w.run(5000)
	st := f.converge(&proc{log: standbyLog})
	waitLog(t, standbyLog, 0, "lease acquired", "the standby to take the lease")
	t.Logf("after failover: %v", st)
	standby.Process.Signal(syscall.SIGTERM)
	if err := standby.Wait(); err != nil {
		t.Fatalf("standby exit: %v\n%s", err, readFile(standbyLog))
	}
	if v, _ := f.rdb.Exists(context.Background(), leaseKey).Result(); v != 0 {
		t.Fatal("a clean stop did not release the lease")
	}
}
