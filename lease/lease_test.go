package lease

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testDB = 6

func client(t *testing.T) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DB: testDB})
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOneHolderStandbyTakesOverAfterRelease(t *testing.T) {
	c := client(t)
	key := fmt.Sprintf("rowsync:lease:test-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() { c.Del(context.Background(), key) })
	// A TTL of 3s renews every second, so a holder stalled up to ~2s by a
	// loaded machine still holds the lease.
	cfg := Config{TTL: 3 * time.Second, Key: key}
	a, b := New(c, cfg, "x", nil), New(c, cfg, "x", nil)

	if err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	keepCtx, stopKeep := context.WithCancel(context.Background())
	kept := make(chan error, 1)
	go func() { kept <- a.Keep(keepCtx) }()

	// b waits while a renews (well past one TTL)
	waitCtx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	err := b.Acquire(waitCtx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("standby acquired a held lease: %v", err)
	}
	stopKeep() // a stops cleanly and releases
	if err := <-kept; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("standby did not take over: %v", err)
	}
	if v, _ := c.Get(ctx, key).Result(); v != b.Owner() {
		t.Fatalf("lease value %q, want %q", v, b.Owner())
	}
}

func TestKeepReportsTakeover(t *testing.T) {
	c := client(t)
	key := fmt.Sprintf("rowsync:lease:test-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() { c.Del(context.Background(), key) })
	a := New(c, Config{TTL: time.Second, Key: key}, "x", nil)
	if err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Set(context.Background(), key, "someone-else", time.Minute) // expired and taken while we were frozen
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Keep(ctx); !errors.Is(err, ErrLost) {
		t.Fatalf("Keep = %v, want ErrLost", err)
	}
}

func TestKeepGivesUpWhenRedisIsGoneBeforeExpiry(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 50 * time.Millisecond})
	defer c.Close()
	a := New(c, Config{TTL: time.Second}, "x", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Keep(ctx); !errors.Is(err, ErrLost) { // before ctx's 10s: the lease would have expired
		t.Fatalf("Keep = %v, want ErrLost", err)
	}
}
