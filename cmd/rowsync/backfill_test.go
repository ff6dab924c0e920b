package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/backfill"
	"github.com/rowsync/rowsync/checkpoint"
)

// backfillFixture is one test's schema on the binlog MariaDB (3307), its
// config and its backfill store in Redis (e2eRedisDB, its own key).
type backfillFixture struct {
	t       *testing.T
	schema  string
	name    string
	cfgPath string
	rdb     *goredis.Client
	store   backfill.Store
}

func newBackfillFixture(t *testing.T) *backfillFixture {
	t.Helper()
	f := &backfillFixture{t: t}
	f.schema = fmt.Sprintf("rs_bfcli_%s_%d", strings.ToLower(t.Name()), os.Getpid())
	f.name = strings.ReplaceAll(f.schema, "_", "-")
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3307)/?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Exec("DROP DATABASE IF EXISTS " + f.schema)
		db.Close()
	})
	s := f.schema
	if _, err := db.Exec(strings.ReplaceAll(`DROP DATABASE IF EXISTS {S}; CREATE DATABASE {S};
		CREATE TABLE {S}.users (id INT PRIMARY KEY, name TEXT);
		CREATE TABLE {S}.orders (user_id INT, n INT, PRIMARY KEY (user_id, n));
		CREATE TABLE {S}.log (line TEXT);
		CREATE TABLE {S}.other (id INT PRIMARY KEY)`, "{S}", s)); err != nil {
		t.Fatal(err)
	}
	f.rdb = goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DB: e2eRedisDB})
	key := backfill.RedisKey(checkpoint.DefaultPrefix, f.name)
	t.Cleanup(func() {
		f.rdb.Del(context.Background(), key)
		f.rdb.Close()
	})
	f.store, err = backfill.NewRedis(f.rdb, key)
	if err != nil {
		t.Fatal(err)
	}
	f.cfgPath = writeConfig(t, fmt.Sprintf(`name: %s
source:
  binlog:
    addr: 127.0.0.1:3307
    user: root
    flavor: mariadb
    server_id: 4242
    include: ["%s\\..*"]
    exclude: ["%s\\.other"]
redis:
  addr: 127.0.0.1:6379
  db: %d
tables:
  - match: %s\.(users|orders|log|other)
    redis_hash: {}
`, f.name, s, s, e2eRedisDB, s))
	return f
}

func writeConfig(t *testing.T, body string) string {
	path := filepath.Join(t.TempDir(), "rowsync.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs `rowsync backfill -c CONFIG args...` in this process.
func (f *backfillFixture) run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := dispatch(append([]string{"backfill", "-c", f.cfgPath}, args...), nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

func (f *backfillFixture) states() map[string]backfill.State {
	l, err := f.store.List(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	m := map[string]backfill.State{}
	for _, st := range l {
		m[st.Table] = st
	}
	return m
}

func TestBackfillCommandLine(t *testing.T) {
	binlog := writeConfig(t, `name: p
source: {binlog: {addr: 127.0.0.1:1, user: root, server_id: 9}}
checkpoint: {file: `+filepath.Join(t.TempDir(), "cp.json")+`}
redis: {addr: 127.0.0.1:1}
tables: [{match: shop\.users, redis_hash: {}}]
`)
	kafka := writeConfig(t, `name: p
source: {kafka: {brokers: [127.0.0.1:1], topics: [t], group: g, format: canal-json}}
redis: {addr: 127.0.0.1:1}
tables: [{match: shop\.users, redis_hash: {}}]
`)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no config", []string{"backfill", "shop.users"}, "-c FILE is required"},
		{"no table", []string{"backfill", "-c", binlog}, "name the tables to backfill"},
		{"status and table", []string{"backfill", "-c", binlog, "--status", "shop.users"}, "--status takes no table"},
		{"cancel and table", []string{"backfill", "-c", binlog, "--cancel", "shop.users", "shop.orders"}, "--cancel takes one table"},
		{"chunk", []string{"backfill", "-c", binlog, "--chunk", "-5", "shop.users"}, "--chunk: must be between 1 and"},
		{"bad regex", []string{"backfill", "-c", binlog, "shop.(users"}, `table bad regex "shop.(users"`},
		{"kafka without mysql", []string{"backfill", "-c", kafka, "shop.users"}, "set mysql: {dsn: ...}"},
		{"help", []string{"backfill", "-h"}, "Ctrl-C stops the waiting"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := dispatch(c.args, nil, &out, &errOut); code != exitConfig || !strings.Contains(errOut.String(), c.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and %q", code, errOut.String(), exitConfig, c.want)
			}
		})
	}
	t.Run("no redis for the store", func(t *testing.T) {
		cfg := writeConfig(t, `name: p
source: {kafka: {brokers: [127.0.0.1:1], topics: [t], group: g, format: canal-json}}
mysql: {dsn: "root@tcp(127.0.0.1:1)/"}
tables: [{match: shop\.users, mongo: {collection: users}}]
mongo: {uri: "mongodb://127.0.0.1:1"}
`)
		var out, errOut bytes.Buffer
		if code := dispatch([]string{"backfill", "-c", cfg, "--status"}, nil, &out, &errOut); code != exitConfig ||
			!strings.Contains(errOut.String(), "checkpoint: backfills are kept beside the checkpoint") {
			t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
		}
	})
}

func TestSplitPositional(t *testing.T) {
	flags, pos := splitPositional([]string{"-c", "x.yaml", "shop.users", "--wait", "--chunk=5", "--chunk", "7", "shop\\..*", "--", "-odd"}, backfillValued)
	if strings.Join(flags, " ") != "-c x.yaml --wait --chunk=5 --chunk 7" || strings.Join(pos, " ") != `shop.users shop\..* -odd` {
		t.Fatalf("flags %q, positional %q", flags, pos)
	}
}

// TestBackfillRequestStatusCancel resolves names against the binlog
// server, requests, refuses bad names with nothing requested, prints the
// status and cancels.
func TestBackfillRequestStatusCancel(t *testing.T) {
	f := newBackfillFixture(t)
	s := f.schema

	code, _, errOut := f.run(s+".missing", s+".log", s+".other", s+`\.o.*`, s+".users")
	for _, want := range []string{"nothing requested", s + ".missing: no such table", s + ".other: the pipeline streams it into no sink", s + ".log: no primary key"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if code != exitConfig || len(f.states()) != 0 {
		t.Fatalf("bad names: exit %d, states %v", code, f.states())
	}

	code, out, errOut := f.run(s+".users", "--chunk", "100")
	if code != exitOK || !strings.Contains(out, s+".users: backfill requested (id ") ||
		!strings.Contains(out, "no 'rowsync run' of pipeline "+f.name+" is running: the request waits for it") {
		t.Fatalf("request: exit %d\n%s%s", code, out, errOut)
	}
	users := f.states()["users"]
	if users.Status != backfill.Requested || users.Chunk != 100 || users.Requested.IsZero() {
		t.Fatalf("stored %+v", users)
	}

	// The owner beats; a regex takes both keyed, routed tables; users is
	// kept as it is.
	if err := f.store.Beat(context.Background(), "test-host/1"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = f.run(s + `\.(users|orders)`)
	if code != exitOK || !strings.Contains(out, s+".users: a backfill is already requested (id "+users.ID+"): kept") ||
		!strings.Contains(out, s+".orders: backfill requested") || !strings.Contains(out, "is run by test-host/1") {
		t.Fatalf("second request: exit %d\n%s%s", code, out, errOut)
	}
	if st := f.states(); len(st) != 2 || st["users"].ID != users.ID {
		t.Fatalf("states %+v", st)
	}

	code, out, errOut = f.run("--status")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitOK || len(lines) != 4 || !strings.HasPrefix(lines[1], "TABLE") ||
		!strings.HasPrefix(lines[2], s+".users ") || !strings.Contains(lines[3], "requested") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}

	code, out, _ = f.run("--cancel", s+".users")
	if code != exitOK || !strings.Contains(out, s+".users: cancel requested (id "+users.ID+")") {
		t.Fatalf("cancel: exit %d\n%s", code, out)
	}
	if ok, _ := f.store.Cancelled(context.Background(), s, "users", users.ID); !ok {
		t.Fatal("cancel flag not stored")
	}
	code, out, _ = f.run("--cancel", s+".nothing")
	if code != exitFail || !strings.Contains(out, s+".nothing: no active backfill") {
		t.Fatalf("cancel of nothing: exit %d\n%s", code, out)
	}
}

// TestBackfillWait follows requests that an owner (played by the test
// through the store) runs: exit 0 when all are done, exitFail with the
// reason when one fails.
func TestBackfillWait(t *testing.T) {
	waitPoll, waitLines = 50*time.Millisecond, 100*time.Millisecond
	f := newBackfillFixture(t)
	s := f.schema
	for _, c := range []struct {
		name   string
		end    func(st *backfill.State)
		code   int
		output []string
	}{
		{"done", func(st *backfill.State) { st.Status = backfill.Done }, exitOK,
			[]string{s + ".users running ", "/1000 (", s + ".users: done, 1000 rows", s + ".orders: done, 1000 rows"}},
		{"failed", func(st *backfill.State) {
			st.Status, st.Error = backfill.Failed, "scan: table dropped"
			if st.Table == "users" {
				st.Status, st.Error = backfill.Done, ""
			}
		}, exitFail, []string{s + ".users: done, 1000 rows", s + ".orders: failed: scan: table dropped"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			var wg sync.WaitGroup
			stop := make(chan struct{})
			defer func() { close(stop); wg.Wait() }()
			wg.Go(func() { f.own(ctx, stop, c.end) })
			code, out, errOut := f.run("--wait", s+".users", s+".orders")
			if code != c.code {
				t.Fatalf("exit %d; want %d\n%s%s", code, c.code, out, errOut)
			}
			for _, w := range c.output {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// own plays the pipeline's owner: it picks up every requested backfill
// and takes it through progress to the end that end sets.
func (f *backfillFixture) own(ctx context.Context, stop <-chan struct{}, end func(st *backfill.State)) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		f.store.Beat(ctx, "test-owner/1")
		for _, st := range f.states() {
			if !st.Status.Active() {
				continue
			}
			st.Status, st.Estimate, st.Started = backfill.Running, 1000, time.Now()
			for st.Rows < 1000 {
				st.Rows += 100
				st.Chunks++
				st.Cursor = []string{fmt.Sprint(st.Rows)}
				st.Updated = time.Now()
				if err := f.store.Update(ctx, st); err != nil {
					f.t.Errorf("owner: %v", err)
				}
				time.Sleep(30 * time.Millisecond)
			}
			end(&st)
			st.Finished = time.Now()
			if err := f.store.Update(ctx, st); err != nil {
				f.t.Errorf("owner: %v", err)
			}
		}
	}
}

// TestBackfillWaitInterrupted: Ctrl-C stops `backfill --wait`, not the
// backfill: the request stays stored for the owner.
func TestBackfillWaitInterrupted(t *testing.T) {
	f := newBackfillFixture(t)
	cmd := exec.Command(rowsyncBin, "backfill", "-c", f.cfgPath, "--wait", f.schema+".users")
	out := &syncBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(out.String(), "the request waits for it") {
		select {
		case err := <-done:
			t.Fatalf("backfill --wait exited early: %v\n%s", err, out.String())
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("backfill --wait never requested:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitFail || !strings.Contains(out.String(), "stopped waiting; the backfills go on") {
			t.Fatalf("after Ctrl-C: %v\n%s", err, out.String())
		}
	case <-deadline:
		cmd.Process.Kill()
		t.Fatalf("backfill --wait did not stop on Ctrl-C:\n%s", out.String())
	}
	if st := f.states()["users"]; st.Status != backfill.Requested {
		t.Fatalf("the request after Ctrl-C: %+v", st)
	}
}

// syncBuf is a bytes.Buffer safe for a writing process and a reading test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
