package checkpoint

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisDB is the Redis DB index assigned to this package's tests.
const redisDB = 2

func newRedis(t *testing.T) *redis.Client {
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

// conformance runs the same checks on every Store.
func conformance(t *testing.T, s Store) {
	ctx := context.Background()
	if _, ok, err := s.Load(ctx); err != nil || ok {
		t.Fatalf("empty store: ok=%v err=%v", ok, err)
	}
	positions := []Position{
		{File: "mysql-bin.000001", Offset: 4},
		{File: "mysql-bin.000001", Offset: 4711, GTID: "0-1-17"},
		{File: "mysql-bin.000002", Offset: 328, GTID: "0-1-18,1-2-5"},
		{GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77"},
	}
	for _, p := range positions {
		if err := s.Save(ctx, p); err != nil {
			t.Fatalf("save %v: %v", p, err)
		}
		got, ok, err := s.Load(ctx)
		if err != nil || !ok || got != p {
			t.Fatalf("load after save %v: got %v ok=%v err=%v", p, got, ok, err)
		}
	}
	// concurrent saves: the last one wins and nothing is torn
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Save(ctx, Position{File: "mysql-bin.000009", Offset: uint64(i + 1)}); err != nil {
				t.Errorf("concurrent save: %v", err)
			}
		}()
	}
	wg.Wait()
	got, ok, err := s.Load(ctx)
	if err != nil || !ok || got.File != "mysql-bin.000009" || got.Offset == 0 {
		t.Fatalf("after concurrent saves: %v ok=%v err=%v", got, ok, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Save(cctx, Position{File: "x.000001", Offset: 1}); err == nil {
		t.Fatal("save with cancelled context succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "cp.json")
	s, err := NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	conformance(t, s)
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Fatalf("temp file left behind: %s", e.Name())
		}
	}
	// a fresh store over the same file sees the saved position
	s2, _ := NewFile(path)
	if _, ok, err := s2.Load(context.Background()); err != nil || !ok {
		t.Fatalf("reopen: ok=%v err=%v", ok, err)
	}
}

func TestFileCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, _ := NewFile(path)
	_, _, err := s.Load(context.Background())
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("corrupt file: err=%v, want one naming %s", err, path)
	}
}

func TestRedis(t *testing.T) {
	rdb := newRedis(t)
	prefix := fmt.Sprintf("rs_test_cp_%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	s, err := NewRedis(rdb, prefix, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if s.Key() != prefix+"orders" {
		t.Fatalf("key %q", s.Key())
	}
	conformance(t, s)
	raw, err := rdb.Get(context.Background(), prefix+"orders").Result()
	if err != nil || !strings.Contains(raw, `"file":"mysql-bin.000009"`) {
		t.Fatalf("stored JSON %q err=%v", raw, err)
	}
	// another pipeline name is another key
	other, _ := NewRedis(rdb, prefix, "users")
	if _, ok, _ := other.Load(context.Background()); ok {
		t.Fatal("pipelines share a key")
	}
	if d, _ := NewRedis(rdb, "", "x"); d.Key() != DefaultPrefix+"x" {
		t.Fatalf("default prefix: %q", d.Key())
	}
}

func TestConfig(t *testing.T) {
	if err := (Config{Redis: &RedisConfig{}, File: "/x"}).Validate(); err == nil || !strings.Contains(err.Error(), "set redis or file, not both") {
		t.Fatalf("redis and file: %v", err)
	}
	if !(Config{}).UsesRedis() || !(Config{Redis: &RedisConfig{Prefix: "p:"}}).UsesRedis() || (Config{File: "/x"}).UsesRedis() {
		t.Fatal("the default store is Redis; file: selects the file store")
	}
	s, err := Open(Config{File: filepath.Join(t.TempDir(), "c.json")}, "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*File); !ok {
		t.Fatalf("Open with file gave %T", s)
	}
	if _, err := Open(Config{}, "p", nil); err == nil || !strings.Contains(err.Error(), "nil redis client") {
		t.Fatalf("Open of the default (Redis) store without a client: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	s, err = Open(Config{Redis: &RedisConfig{Prefix: "p:"}}, "n", rdb)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := s.(*Redis); !ok || r.Key() != "p:n" {
		t.Fatalf("Open redis gave %T %+v", s, s)
	}
}

func TestPosition(t *testing.T) {
	p := Position{File: "mysql-bin.000003", Offset: 4711, GTID: "0-1-9"}
	if p.String() != "mysql-bin.000003:4711 gtid=0-1-9" {
		t.Fatal(p.String())
	}
	b, _ := p.Marshal()
	q, err := Unmarshal(b)
	if err != nil || q != p {
		t.Fatalf("round trip %v %v", q, err)
	}
	if _, err := Unmarshal([]byte(`{}`)); err == nil {
		t.Fatal("empty position accepted")
	}
}
