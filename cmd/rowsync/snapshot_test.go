package main

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/pipeline"
)

// TestSnapshotThenRun: rows written before rowsync ever ran are copied by
// `rowsync snapshot` (while more changes are being written), which pins
// the binlog position first; `rowsync run` then streams everything since,
// and Redis ends up equal to MySQL. The snapshot's tables are backfills in
// the pipeline's store (`backfill --status` lists them), and a snapshot
// beside the running `run` is refused in favour of `rowsync backfill`.
func TestSnapshotThenRun(t *testing.T) {
	f := newFixture(t, "127.0.0.1:6379", e2eRedisDB)
	w := newWorkload(f, 3)
	w.run(3000) // existing rows: no checkpoint, nothing has streamed them

	snap := exec.Command(rowsyncBin, "snapshot", "-c", f.cfgPath, "--chunk", "50")
	var out, errOut bytes.Buffer
	snap.Stdout, snap.Stderr = &out, &errOut
	if err := snap.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- snap.Wait() }()
	// changes during the snapshot: some before its reads, some after
	concurrent := 0
	var snapErr error
writing:
	for {
		select {
		case snapErr = <-done:
			break writing
		default:
			w.run(20)
			concurrent += 20
		}
	}
	if snapErr != nil {
		t.Fatalf("snapshot: %v\nstdout:\n%s\nstderr:\n%s", snapErr, out.String(), errOut.String())
	}
	t.Logf("snapshot summary (%d changes written meanwhile):\n%s", concurrent, out.String())
	for _, table := range []string{f.schema + ".users", f.schema + ".orders", "total"} {
		if !strings.Contains(out.String(), table) {
			t.Errorf("summary lacks %s", table)
		}
	}
	if n, err := f.rdb.Exists(context.Background(), "rowsync:checkpoint:"+f.name).Result(); err != nil || n != 1 {
		t.Fatalf("no checkpoint saved by the snapshot: %d %v", n, err)
	}

	status, err := exec.Command(rowsyncBin, "backfill", "-c", f.cfgPath, "--status").CombinedOutput()
	for _, table := range []string{f.schema + ".users", f.schema + ".orders"} {
		if err != nil || !regexp.MustCompile(regexp.QuoteMeta(table)+`\s+done\s`).Match(status) {
			t.Fatalf("backfill --status after the snapshot lacks %s done: %v\n%s", table, err, status)
		}
	}

	// A second snapshot refuses: the checkpoint exists.
	again := exec.Command(rowsyncBin, "snapshot", "-c", f.cfgPath)
	msg, err := again.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "already has a binlog checkpoint") || !strings.Contains(string(msg), "--force") {
		t.Fatalf("second snapshot without --force: %v\n%s", err, msg)
	}

	// run streams what changed during and after the snapshot
	p := f.start()
	w.run(2000)
	st := f.converge(p)
	t.Logf("%d row changes written in all; Redis equals MySQL: %v", w.changes, st)
	if dl := f.deadLetters(); dl != "" {
		t.Fatalf("unexpected dead letters:\n%s", dl)
	}
	// beside the running pipeline even --force refuses: backfill is the way
	msg, err = exec.Command(rowsyncBin, "snapshot", "-c", f.cfgPath, "--force").CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "the pipeline is running") || !strings.Contains(string(msg), "rowsync backfill") {
		t.Fatalf("snapshot beside run: %v\n%s", err, msg)
	}
	p.stop(t)

	// With --force (run stopped) the snapshot runs again and keeps the state exact.
	w.run(500)
	forced := exec.Command(rowsyncBin, "snapshot", "-c", f.cfgPath, "--force", "--tables", f.schema+`\.users`)
	if msg, err := forced.CombinedOutput(); err != nil || strings.Contains(string(msg), f.schema+".orders ") {
		t.Fatalf("forced snapshot of users only: %v\n%s", err, msg)
	}
	p = f.start()
	st = f.converge(p)
	t.Logf("after a forced snapshot and a restart: %v", st)
	p.stop(t)
}

// TestRunAndSnapshotRouteAlike: snapshot copies a table into a sink
// exactly when run streams its changes into that sink; both ask the one
// table router, where the first matching tables[] entry decides. An
// invalidate-only entry for shop.cache_only before a shop\..* redis_hash
// entry gives cache_only no hash under run and under snapshot. Snapshot
// also applies the binlog include/exclude and --tables.
func TestRunAndSnapshotRouteAlike(t *testing.T) {
	cfg, err := config.Parse([]byte(`name: sel
source:
  binlog:
    include: ["shop\\..*", "crm\\.users"]
    exclude: ["shop\\.tmp_.*"]
redis: {}
tables:
  - match: shop\.cache_only
    invalidate: {keys: [{key: "k:{id}"}]}
  - match: shop\..*
    redis_hash: {}
  - match: crm\..*
    redis_hash: {}
`), func(string) (string, bool) { return "", false }, registry())
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDeps(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	ctx := context.Background()
	runRoutes, err := buildRoutes(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	snapRoutes, err := snapshotRoutes(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	wants := func(routes []pipeline.Route, name, db, table string) bool {
		for _, r := range routes {
			if r.Name == name {
				return r.Wants(db, table)
			}
		}
		return false
	}
	for _, tc := range []struct {
		only       string
		table      string
		hash, copy bool // run writes hashes; snapshot copies the table
		invalidate bool
	}{
		{"", "shop.users", true, true, false},
		{"", "shop.tmp_x", true, false, false},      // excluded (the binlog source never sees it)
		{"", "shop.cache_only", false, false, true}, // the first match has no sink snapshot feeds
		{"", "crm.users", true, true, false},
		{"", "crm.notes", true, false, false}, // not included
		{"", "other.t", false, false, false},  // no tables[] entry
		{`shop\.u.*`, "shop.users", true, true, false},
		{`shop\.u.*`, "crm.users", true, false, false},
		{`users`, "shop.users", true, false, false}, // --tables is anchored
	} {
		t.Run(tc.only+"/"+tc.table, func(t *testing.T) {
			var only *regexp.Regexp
			if tc.only != "" {
				only, _ = cdc.CompileMatch(tc.only)
			}
			db, table, _ := strings.Cut(tc.table, ".")
			runHash, snapHash := wants(runRoutes, "redis", db, table), wants(snapRoutes, "redis", db, table)
			if runHash != tc.hash || snapHash != tc.hash {
				t.Fatalf("redis hashes for %s: run %v, snapshot %v, want %v under both", tc.table, runHash, snapHash, tc.hash)
			}
			if got := wants(runRoutes, "invalidate", db, table); got != tc.invalidate {
				t.Fatalf("run invalidates %s: %v, want %v", tc.table, got, tc.invalidate)
			}
			if wants(snapRoutes, "invalidate", db, table) {
				t.Fatalf("snapshot routes %s to the invalidator", tc.table)
			}
			match, err := snapshotTables(cfg, snapRoutes, only)
			if err != nil {
				t.Fatal(err)
			}
			if got := match(db, table); got != tc.copy {
				t.Fatalf("snapshot copies %s: %v, want %v", tc.table, got, tc.copy)
			}
		})
	}
}

func TestSnapshotCommandLine(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"snapshot", "-c", "/nonexistent.yaml"}, nil, &out, &errOut); code != exitConfig {
		t.Fatalf("missing config: exit %d", code)
	}
	errOut.Reset()
	if code := dispatch([]string{"snapshot", "-h"}, nil, &out, &errOut); code != exitConfig || !strings.Contains(errOut.String(), "Consistency") {
		t.Fatalf("help: exit %d\n%s", code, errOut.String())
	}
}
