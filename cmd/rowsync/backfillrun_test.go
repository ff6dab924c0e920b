package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/rowsync/rowsync/backfill"
	"github.com/rowsync/rowsync/config"
)

// TestBackfillWhileStreaming: rows written before the pipeline ever ran
// are backfilled by the running pipeline (in this process, binlog source
// on the project MariaDB, Redis sink) while a workload keeps inserting,
// updating, deleting and re-keying rows of the same tables; once both
// backfills are done and the stream has drained, Redis equals MySQL.
func TestBackfillWhileStreaming(t *testing.T) {
	f := newFixture(t, "127.0.0.1:6379", e2eRedisDB)
	w := newWorkload(f, 11)
	w.run(3000) // before the first run: nothing streams these
	cfgText, err := os.ReadFile(f.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.cfgPath, append(cfgText, []byte("backfill:\n  chunk: 200\n  poll: 50ms\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f.cfgPath, registry())
	if err != nil {
		t.Fatal(err)
	}
	key := backfill.RedisKey("rowsync:checkpoint:", f.name)
	t.Cleanup(func() { f.rdb.Del(context.Background(), key) })
	store, err := backfill.NewRedis(f.rdb, key)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logf, err := os.Create(f.dir + "/run.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.NewTextHandler(logf, nil))) }()

	now := time.Now().UTC()
	for _, table := range []string{"users", "orders"} {
		if err := store.Request(ctx, backfill.State{DB: f.schema, Table: table, ID: "t-" + table, Status: backfill.Requested, Requested: now}); err != nil {
			t.Fatal(err)
		}
	}
	// changes while the backfills run, until both are done
	deadline := time.Now().Add(5 * time.Minute)
	for {
		w.run(20)
		states, err := store.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		finished := 0
		for _, st := range states {
			switch st.Status {
			case backfill.Done:
				finished++
			case backfill.Failed, backfill.Cancelled:
				t.Fatalf("backfill %s: %s %s\n%s", st.Name(), st.Status, st.Error, readFile(logf.Name()))
			}
		}
		if finished == 2 {
			for _, st := range states {
				t.Logf("%s: %d rows, %d dropped, %d chunks, watermark %s", st.Name(), st.Rows, st.Dropped, st.Chunks, st.Watermark)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run stopped: %v\n%s", err, readFile(logf.Name()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("backfills not done: %+v\n%s", states, readFile(logf.Name()))
		}
	}
	w.run(200)
	conv := time.Now().Add(4 * time.Minute)
	for {
		st, mism, err := f.check()
		if err == nil && st.OK() {
			t.Logf("%d changes written in all; Redis equals MySQL: %v", w.changes, st)
			break
		}
		if time.Now().After(conv) {
			t.Fatalf("Redis never matched MySQL: %v %v %+v\n%s", st, err, mism, readFile(logf.Name()))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if dl := f.deadLetters(); dl != "" {
		t.Fatalf("unexpected dead letters:\n%s", dl)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(fmt.Errorf("run: %w", err))
	}
}
