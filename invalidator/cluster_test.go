package invalidator

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/cdc"
)

// startCluster starts a throwaway three-master Redis Cluster from the
// machine's redis-server binary, in a temp dir, and stops it at the end.
func startCluster(t *testing.T) []string {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("no redis-server binary for a throwaway cluster")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("no redis-cli binary")
	}
	dir := t.TempDir()
	var addrs []string
	for len(addrs) < 3 {
		port := 20000 + rand.N(20000)
		if !portFree(port) || !portFree(port+10000) {
			continue
		}
		cmd := exec.Command(server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port),
			"--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no")
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	for _, a := range addrs {
		waitFor(t, "node "+a, func() bool {
			c, err := net.Dial("tcp", a)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: a})
		waitFor(t, "cluster_state:ok on "+a, func() bool {
			s, err := c.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(s, "cluster_state:ok")
		})
		c.Close()
	}
	return addrs
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// TestCluster runs Apply and the delayed delete against a real Redis
// Cluster: keys of many slots in one batch (each UNLINK must hold keys of
// one slot, or the server answers CROSSSLOT), and the lease-based scheduler.
func TestCluster(t *testing.T) {
	addrs := startCluster(t)
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	ctx := context.Background()
	v := newInvalidator(t, c, Config{Poll: 5 * time.Millisecond, BatchSize: 7}, usersRule("", 100*time.Millisecond))
	if v.mode != cluster {
		t.Fatal("cluster client not detected")
	}
	var evs []cdc.Event
	var keys []string
	for i := range 200 {
		evs = append(evs, cdc.Event{DB: "shop", Table: "users", Op: cdc.Delete,
			Before: cdc.RowOf("id", int64(i), "email", fmt.Sprintf("u%d@x", i))})
		keys = append(keys, fmt.Sprintf("user:%d", i), fmt.Sprintf("user:email:u%d@x", i), fmt.Sprintf("user:%d:card", i),
			fmt.Sprintf("{tag}user:%d", i))
	}
	// Keys sharing a hash tag go in one multi-key command.
	evs = append(evs, cdc.Event{DB: "shop", Table: "users", Op: cdc.Delete, Before: cdc.RowOf("id", "{tag}")})
	cexists := func() int {
		n := 0
		for _, k := range keys {
			if c.Exists(ctx, k).Val() == 1 {
				n++
			}
		}
		return n
	}
	set := func() {
		for _, k := range keys {
			if err := c.Set(ctx, k, "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	set()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	if err := v.Apply(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// {tag}user:N keys are not from our templates; only the event's keys go.
	if n := cexists(); n != 200 {
		t.Fatalf("%d keys left after the first delete, want the 200 {tag} keys", n)
	}
	set() // stale values SET after the first delete
	// The scheduler starts only now, so the stale SETs surely precede the
	// second delete whatever the machine's load.
	go func() { done <- v.Run(rctx) }()
	waitFor(t, "second delete on the cluster", func() bool {
		n, err := v.Pending(ctx)
		return err == nil && n == 0 && cexists() == 200
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
