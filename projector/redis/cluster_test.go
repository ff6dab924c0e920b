package redis

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/sinktest"
)

// startRedis runs a private redis-server for the test, with args added
// to its command line, and returns its address once it answers. Tests
// that would disturb the shared server (SCRIPT FLUSH, REPLICAOF, cluster
// mode) use one.
func startRedis(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not installed: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", filepath.Join(dir, "log")}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	node := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer node.Close()
	deadline := time.Now().Add(3 * time.Minute)
	for node.Ping(t.Context()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("private redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr
}

// startCluster runs a private one-node Redis Cluster (all 16384 slots on
// one redis-server, which still refuses cross-slot scripts) for the test.
func startCluster(t *testing.T) *goredis.ClusterClient {
	t.Helper()
	dir := t.TempDir()
	addr := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"))
	node := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer node.Close()
	ctx := t.Context()
	deadline := time.Now().Add(3 * time.Minute)
	if err := node.Do(ctx, "cluster", "addslotsrange", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	for {
		info, _ := node.ClusterInfo(ctx).Result()
		if strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok: %s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{addr}})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestCluster(t *testing.T) {
	c := startCluster(t)
	var _ goredis.UniversalClient = c
	t.Run("conformance", func(t *testing.T) {
		sinktest.Run(t, sinktest.Harness{
			Guarded: true,
			New: func(t *testing.T, db string) cdc.Sink {
				p, err := NewWithConfig(Config{ScriptKeys: 4}, c, rules(t, regexp.QuoteMeta(db)+`\..*`, TableConfig{VersionField: "_v"}), nil)
				must(t, err)
				if !p.cluster || p.conns != nil {
					t.Fatal("cluster client not detected, or not on the go-redis path")
				}
				return p
			},
			Read: func(t *testing.T, db, table string, pk []string) (map[string]string, bool) {
				m, err := c.HGetAll(t.Context(), db+"_"+table+"_"+strings.Join(pk, ":")).Result()
				must(t, err)
				delete(m, "_v")
				return m, len(m) > 0
			},
		})
	})
	t.Run("many slots in one Apply", func(t *testing.T) {
		p, err := NewWithConfig(Config{ScriptKeys: 8}, c, rules(t, `c\..*`, TableConfig{Key: "u:{{{id}}}:{name}", VersionField: "_v"}), nil)
		must(t, err)
		var evs []cdc.Event
		for i := range 200 {
			evs = append(evs, cdc.Event{DB: "c", Table: "t", Op: cdc.Insert, PK: []string{"id"},
				After: cdc.RowOf("id", int64(i), "name", fmt.Sprint("n", i)), Pos: cdc.Position{Version: 5}})
		}
		// A key with "}" but no hash tag cannot keep its side keys in its slot.
		evs = append(evs, cdc.Event{DB: "c", Table: "t", Op: cdc.Insert, PK: []string{"id"},
			After: cdc.RowOf("id", int64(999), "name", "x"), Pos: cdc.Position{Version: 5}})
		p2, err := New(c, rules(t, `c\..*`, TableConfig{Key: "v:{id}}}", VersionField: "_v"}), nil)
		must(t, err)
		must(t, p.Apply(t.Context(), evs[:200]))
		for i := range 200 {
			if got := c.HGet(context.Background(), fmt.Sprintf("u:{%d}:n%d", i, i), "_v").Val(); got != "5" {
				t.Fatalf("row %d: _v = %q", i, got)
			}
		}
		err = p2.Apply(t.Context(), evs[200:])
		if be, ok := err.(*cdc.BatchError); !ok || be.Failed[0] == nil {
			t.Errorf("Apply of a key without hash tag but with } = %v, want a BatchError", err)
		}
	})
	t.Run("fast path across slots", func(t *testing.T) {
		// No side keys: every key, even one with "}" and no hash tag, is
		// written, one transaction per slot.
		p, err := NewWithConfig(Config{ScriptKeys: 8}, c, rules(t, `f\..*`, TableConfig{Key: "f:{id}}}"}), nil)
		must(t, err)
		var evs []cdc.Event
		for i := range 100 {
			evs = append(evs, cdc.Event{DB: "f", Table: "t", Op: cdc.Insert, PK: []string{"id"},
				After: cdc.RowOf("id", int64(i), "name", fmt.Sprint("n", i))})
		}
		evs = append(evs, cdc.Event{DB: "f", Table: "t", Op: cdc.Delete, PK: []string{"id"}, Before: cdc.RowOf("id", int64(0))})
		must(t, p.Apply(t.Context(), evs))
		for i := range 100 {
			got := c.HGet(context.Background(), fmt.Sprintf("f:%d}", i), "name").Val()
			if want := fmt.Sprint("n", i); i > 0 && got != want || i == 0 && got != "" {
				t.Fatalf("row %d: name = %q", i, got)
			}
		}
	})
}
