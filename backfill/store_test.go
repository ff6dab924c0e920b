package backfill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/checkpoint"
)

// redisDB is the Redis DB index of this package's tests. They never flush
// it: each test uses its own key and deletes it.
const redisDB = 2

func newRedisClient(t *testing.T) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: redisDB})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis on 127.0.0.1:6379: %v", err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// testKey is a key of this test only, deleted when it ends.
func testKey(t *testing.T, rdb *redis.Client) string {
	key := fmt.Sprintf("rowsync-test:backfill:%s:%d", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	return key
}

// stores returns a fresh store of every kind.
func stores(t *testing.T) map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"memory": func(*testing.T) Store { return NewMemory() },
		"redis": func(t *testing.T) Store {
			rdb := newRedisClient(t)
			s, err := NewRedis(rdb, testKey(t, rdb))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"file": func(t *testing.T) Store {
			s, err := NewFile(filepath.Join(t.TempDir(), "sub", "cp.json.backfill.json"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

// TestConformance runs the same checks on every Store.
func TestConformance(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for _, c := range conformanceCases {
				t.Run(c.name, func(t *testing.T) {
					s := open(t)
					defer s.Close()
					c.run(t, s)
				})
			}
		})
	}
}

var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func req(db, table, id string, at time.Duration) State {
	return State{DB: db, Table: table, ID: id, Status: Requested, Requested: t0.Add(at)}
}

var conformanceCases = []struct {
	name string
	run  func(t *testing.T, s Store)
}{
	{"empty", func(t *testing.T, s Store) {
		ctx := context.Background()
		if l, err := s.List(ctx); err != nil || len(l) != 0 {
			t.Fatalf("List = %v, %v; want empty", l, err)
		}
		if o, at, err := s.Owner(ctx); err != nil || o != "" || !at.IsZero() {
			t.Fatalf("Owner = %q %v %v; want none", o, at, err)
		}
		if ok, err := s.Cancel(ctx, "shop", "users"); err != nil || ok {
			t.Fatalf("Cancel of nothing = %v, %v", ok, err)
		}
		if ok, err := s.Cancelled(ctx, "shop", "users", "x"); err != nil || ok {
			t.Fatalf("Cancelled of nothing = %v, %v", ok, err)
		}
		if err := s.Update(ctx, req("shop", "users", "x", 0)); !errors.Is(err, ErrReplaced) {
			t.Fatalf("Update of nothing = %v; want ErrReplaced", err)
		}
	}},
	{"round trip and order", func(t *testing.T, s Store) {
		ctx := context.Background()
		full := State{DB: "shop", Table: "orders", ID: "b", Status: Running, Keys: [][]string{{"1", "a"}, {"2", "b"}},
			Chunk: 500, Cursor: []string{"2", "b"}, Rows: 1 << 40, Dropped: 3, Chunks: 7, Estimate: 2,
			Watermark: "mysql-bin.000003:4711..mysql-bin.000003:5120", Owner: "host/42",
			Requested: t0.Add(2 * time.Second), Started: t0.Add(3 * time.Second), Updated: t0.Add(4 * time.Second)}
		for _, st := range []State{req("shop", "users", "c", 3*time.Second), req("zoo", "a", "a", time.Second), req("a:b", "c.d", "d", 3*time.Second)} {
			if err := s.Request(ctx, st); err != nil {
				t.Fatal(err)
			}
		}
		first := full
		first.Status, first.Rows = Requested, 0
		if err := s.Request(ctx, first); err != nil {
			t.Fatal(err)
		}
		if err := s.Update(ctx, full); err != nil {
			t.Fatal(err)
		}
		l, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, st := range l {
			names = append(names, st.Name())
		}
		if want := []string{"zoo.a", "shop.orders", "a:b.c.d", "shop.users"}; !reflect.DeepEqual(names, want) {
			t.Fatalf("List order %v; want %v", names, want)
		}
		if !reflect.DeepEqual(l[1], full) {
			t.Fatalf("stored\n%+v\nread back\n%+v", full, l[1])
		}
	}},
	{"request while active", func(t *testing.T, s Store) {
		ctx := context.Background()
		st := req("shop", "users", "1", 0)
		if err := s.Request(ctx, st); err != nil {
			t.Fatal(err)
		}
		if err := s.Request(ctx, req("shop", "users", "2", time.Second)); !errors.Is(err, ErrActive) {
			t.Fatalf("Request over Requested = %v; want ErrActive", err)
		}
		st.Status = Running
		if err := s.Update(ctx, st); err != nil {
			t.Fatal(err)
		}
		if err := s.Request(ctx, req("shop", "users", "2", time.Second)); !errors.Is(err, ErrActive) {
			t.Fatalf("Request over Running = %v; want ErrActive", err)
		}
		for _, end := range []Status{Done, Failed, Cancelled} {
			st.Status = end
			if err := s.Update(ctx, st); err != nil {
				t.Fatal(err)
			}
			next := req("shop", "users", "after-"+string(end), time.Second)
			if err := s.Request(ctx, next); err != nil {
				t.Fatalf("Request over %s: %v", end, err)
			}
			// The old owner's late save loses.
			if err := s.Update(ctx, st); !errors.Is(err, ErrReplaced) {
				t.Fatalf("Update with the replaced ID = %v; want ErrReplaced", err)
			}
			st = next
			st.Status = Running
		}
		l, _ := s.List(ctx)
		if len(l) != 1 || l[0].ID != "after-cancelled" || l[0].Status != Requested {
			t.Fatalf("List = %+v", l)
		}
	}},
	{"cancel", func(t *testing.T, s Store) {
		ctx := context.Background()
		st := req("shop", "users", "1", 0)
		if err := s.Request(ctx, st); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Cancel(ctx, "shop", "orders"); err != nil || ok {
			t.Fatalf("Cancel of another table = %v, %v", ok, err)
		}
		if ok, err := s.Cancelled(ctx, "shop", "users", "1"); err != nil || ok {
			t.Fatalf("Cancelled before Cancel = %v, %v", ok, err)
		}
		if ok, err := s.Cancel(ctx, "shop", "users"); err != nil || !ok {
			t.Fatalf("Cancel = %v, %v", ok, err)
		}
		if ok, err := s.Cancelled(ctx, "shop", "users", "1"); err != nil || !ok {
			t.Fatalf("Cancelled = %v, %v", ok, err)
		}
		if ok, err := s.Cancelled(ctx, "shop", "users", "2"); err != nil || ok {
			t.Fatalf("Cancelled of another ID = %v, %v", ok, err)
		}
		// The flag changes nothing else; the owner ends it.
		if l, _ := s.List(ctx); len(l) != 1 || l[0].Status != Requested {
			t.Fatalf("List after Cancel = %+v", l)
		}
		st.Status = Cancelled
		if err := s.Update(ctx, st); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Cancel(ctx, "shop", "users"); err != nil || ok {
			t.Fatalf("Cancel of a cancelled backfill = %v, %v", ok, err)
		}
		// A new request starts without the old flag.
		if err := s.Request(ctx, req("shop", "users", "2", time.Second)); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"1", "2"} {
			if ok, err := s.Cancelled(ctx, "shop", "users", id); err != nil || ok {
				t.Fatalf("Cancelled(%s) after a new request = %v, %v", id, ok, err)
			}
		}
	}},
	{"beat", func(t *testing.T, s Store) {
		ctx := context.Background()
		before := time.Now().Add(-time.Millisecond)
		if err := s.Beat(ctx, "host-a/1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Beat(ctx, "host-b/2"); err != nil {
			t.Fatal(err)
		}
		o, at, err := s.Owner(ctx)
		if err != nil || o != "host-b/2" || at.Before(before) || at.After(time.Now().Add(time.Millisecond)) {
			t.Fatalf("Owner = %q %v %v; want host-b/2 after %v", o, at, err, before)
		}
		if l, _ := s.List(ctx); len(l) != 0 {
			t.Fatalf("a beat shows in List: %+v", l)
		}
	}},
	{"race: one request wins", func(t *testing.T, s Store) {
		ctx := context.Background()
		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = s.Request(ctx, req("shop", "users", fmt.Sprint(i), 0)) })
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Fatalf("requests %d and %d both won", won, i)
			case err == nil:
				won = i
			case !errors.Is(err, ErrActive):
				t.Fatalf("request %d: %v", i, err)
			}
		}
		l, _ := s.List(ctx)
		if won < 0 || len(l) != 1 || l[0].ID != fmt.Sprint(won) {
			t.Fatalf("winner %d, stored %+v", won, l)
		}
	}},
	{"race: updates of other tables are not lost", func(t *testing.T, s Store) {
		ctx := context.Background()
		const tables, updates = 6, 25
		for i := range tables {
			if err := s.Request(ctx, req("shop", fmt.Sprint("t", i), "id", 0)); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, tables+1)
		for i := range tables {
			wg.Go(func() {
				st := req("shop", fmt.Sprint("t", i), "id", 0)
				st.Status = Running
				for r := range updates {
					st.Rows = int64(r + 1)
					if err := s.Update(ctx, st); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Go(func() { // the owner beats meanwhile
			for range updates {
				if err := s.Beat(ctx, "me"); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		l, _ := s.List(ctx)
		if len(l) != tables {
			t.Fatalf("%d states; want %d", len(l), tables)
		}
		for _, st := range l {
			if st.Rows != updates || st.Status != Running {
				t.Fatalf("%s: rows %d status %s; want %d running", st.Name(), st.Rows, st.Status, updates)
			}
		}
	}},
	{"race: request, progress, cancel", func(t *testing.T, s Store) {
		// The owner saves progress and ends the backfill while another
		// client cancels it and a third keeps asking for a new one: the
		// owner's saves never lose, the new request lands only after the
		// end began, and it carries no cancel flag unless a cancel call
		// could have come after it. seq orders the calls' starts and
		// ends.
		ctx := context.Background()
		st := req("shop", "users", "old", 0)
		if err := s.Request(ctx, st); err != nil {
			t.Fatal(err)
		}
		var seq, endStart, reqStart, reqEnd, cancelEnd atomic.Int64
		var wg sync.WaitGroup
		ended := make(chan struct{})
		errs := make(chan error, 3)
		wg.Go(func() {
			defer close(ended)
			st.Status = Running
			for r := range 40 {
				st.Rows = int64(r)
				if err := s.Update(ctx, st); err != nil {
					errs <- fmt.Errorf("owner's update %d: %w", r, err)
					return
				}
			}
			st.Status = Done
			endStart.Store(seq.Add(1))
			if err := s.Update(ctx, st); err != nil {
				errs <- fmt.Errorf("owner's last update: %w", err)
			}
		})
		wg.Go(func() {
			for {
				ok, err := s.Cancel(ctx, "shop", "users")
				if err != nil {
					errs <- err
					return
				}
				if ok {
					cancelEnd.Store(seq.Add(1))
					return
				}
				select {
				case <-ended:
					return
				default:
				}
			}
		})
		wg.Go(func() {
			for {
				start := seq.Add(1)
				err := s.Request(ctx, req("shop", "users", "new", time.Second))
				if err == nil {
					reqStart.Store(start)
					reqEnd.Store(seq.Add(1))
					return
				}
				if !errors.Is(err, ErrActive) {
					errs <- err
					return
				}
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if endStart.Load() == 0 || reqEnd.Load() < endStart.Load() {
			t.Fatalf("the new request landed (seq %d) before the owner began to end the old one (seq %d)", reqEnd.Load(), endStart.Load())
		}
		flagged, _ := s.Cancelled(ctx, "shop", "users", "new")
		if flagged && cancelEnd.Load() < reqStart.Load() {
			t.Fatalf("the new request (started at seq %d) carries the cancel flag of a cancel that ended at seq %d", reqStart.Load(), cancelEnd.Load())
		}
		if ok, _ := s.Cancelled(ctx, "shop", "users", "old"); ok {
			t.Fatal("the old request's cancel flag outlived the new request")
		}
		l, _ := s.List(ctx)
		if len(l) != 1 || l[0].ID != "new" || l[0].Status != Requested {
			t.Fatalf("List = %+v", l)
		}
	}},
}

// TestOpen checks that Open puts the store beside the checkpoint.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	rdb := newRedisClient(t)
	name := fmt.Sprintf("open-test-%d", time.Now().UnixNano())
	for _, c := range []struct {
		name string
		cfg  checkpoint.Config
		key  string
	}{
		{"default prefix", checkpoint.Config{}, "rowsync:checkpoint:" + name + ":backfill"},
		{"own prefix", checkpoint.Config{Redis: &checkpoint.RedisConfig{Prefix: "rowsync-test:cp:"}}, "rowsync-test:cp:" + name + ":backfill"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Cleanup(func() { rdb.Del(context.Background(), c.key) })
			s, err := Open(c.cfg, name, rdb)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Request(ctx, req("shop", "users", "1", 0)); err != nil {
				t.Fatal(err)
			}
			if n, err := rdb.HLen(ctx, c.key).Result(); err != nil || n != 1 {
				t.Fatalf("hlen %s = %d, %v", c.key, n, err)
			}
		})
	}
	t.Run("file", func(t *testing.T) {
		cp := filepath.Join(t.TempDir(), "cp.json")
		s, err := Open(checkpoint.Config{File: cp}, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Request(ctx, req("shop", "users", "1", 0)); err != nil {
			t.Fatal(err)
		}
		again, err := NewFile(cp + ".backfill.json")
		if err != nil {
			t.Fatal(err)
		}
		if l, err := again.List(ctx); err != nil || len(l) != 1 {
			t.Fatalf("List of %s = %v, %v", cp+".backfill.json", l, err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		if _, err := Open(checkpoint.Config{File: "x", Redis: &checkpoint.RedisConfig{}}, name, rdb); err == nil {
			t.Fatal("redis and file both set: no error")
		}
		if _, err := Open(checkpoint.Config{}, name, nil); err == nil {
			t.Fatal("redis store without a client: no error")
		}
		if _, err := Open(checkpoint.Config{}, "", rdb); err == nil {
			t.Fatal("empty name: no error")
		}
	})
}

// TestFileCorrupt reports a damaged file by its path rather than treating
// it as empty.
func TestFileCorrupt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cp.json.backfill.json")
	s, _ := NewFile(path)
	if err := writeRaw(path, "{not json"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx); err == nil {
		t.Fatal("List of a damaged file: no error")
	}
	if err := s.Request(ctx, req("shop", "users", "1", 0)); err == nil {
		t.Fatal("Request over a damaged file: no error")
	}
}

func writeRaw(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

// TestFileAcrossProcesses runs writers of one File store in several
// processes (this test binary in helper mode): the flock serialises
// them, so no process's update of its table is lost to another's
// read-modify-write, and of their requests of one table exactly one wins.
func TestFileAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	if path := os.Getenv("BACKFILL_FILE_CHILD"); path != "" {
		s, err := NewFile(path)
		if err != nil {
			t.Fatal(err)
		}
		me := os.Getenv("BACKFILL_FILE_TABLE")
		st := req("shop", me, "id", 0)
		st.Status = Running
		for r := range 30 {
			st.Rows = int64(r + 1)
			if err := s.Update(ctx, st); err != nil {
				t.Fatal(err)
			}
		}
		switch err := s.Request(ctx, req("shop", "shared", me, 0)); {
		case err == nil:
			fmt.Println("won")
		case !errors.Is(err, ErrActive):
			t.Fatal(err)
		}
		return
	}
	path := filepath.Join(t.TempDir(), "cp.json.backfill.json")
	s, err := NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const procs = 4
	for i := range procs {
		if err := s.Request(ctx, req("shop", fmt.Sprint("t", i), "id", 0)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	outs := make([]string, procs)
	errs := make([]error, procs)
	for i := range procs {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFileAcrossProcesses$")
			cmd.Env = append(os.Environ(), "BACKFILL_FILE_CHILD="+path, fmt.Sprint("BACKFILL_FILE_TABLE=t", i))
			out, err := cmd.CombinedOutput()
			outs[i], errs[i] = string(out), err
		})
	}
	wg.Wait()
	won := 0
	for i := range procs {
		if errs[i] != nil {
			t.Fatalf("process %d: %v\n%s", i, errs[i], outs[i])
		}
		if strings.Contains(outs[i], "won\n") {
			won++
		}
	}
	l, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if won != 1 || len(l) != procs+1 {
		t.Fatalf("%d processes won the shared request; states %+v", won, l)
	}
	for _, st := range l {
		if st.Table != "shared" && st.Rows != 30 {
			t.Fatalf("%s: rows %d; want 30 (an update was lost)", st.Name(), st.Rows)
		}
	}
}

// BenchmarkUpdate measures the owner's save after each chunk, per store.
func BenchmarkUpdate(b *testing.B) {
	for _, kind := range []string{"redis", "file"} {
		b.Run(kind, func(b *testing.B) {
			ctx := context.Background()
			var s Store
			switch kind {
			case "redis":
				rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: redisDB})
				defer rdb.Close()
				key := fmt.Sprintf("rowsync-test:backfill:bench:%d", time.Now().UnixNano())
				defer rdb.Del(ctx, key)
				s, _ = NewRedis(rdb, key)
			case "file":
				s, _ = NewFile(filepath.Join(b.TempDir(), "cp.json.backfill.json"))
			}
			st := req("shop", "users", "id", 0)
			if err := s.Request(ctx, st); err != nil {
				b.Fatal(err)
			}
			st.Status, st.Cursor = Running, []string{"0"}
			b.ResetTimer()
			for i := range b.N {
				st.Rows = int64(i)
				if err := s.Update(ctx, st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
