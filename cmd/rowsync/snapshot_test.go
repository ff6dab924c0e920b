package main

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
)

// TestSnapshotThenRun: rows written before rowsync ever ran are copied by
// `rowsync snapshot` (while more changes are being written), which pins
// the binlog position first; `rowsync run` then streams everything since,
// and Redis ends up equal to MySQL.
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

// TestSnapshotTableSelection: a table is copied when its first matching
// tables[] entry has redis_hash or mongo, the binlog include/exclude admit
// it, and --tables matches.
func TestSnapshotTableSelection(t *testing.T) {
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
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		only  string
		table string
		want  bool
	}{
		{"", "shop.users", true},
		{"", "shop.tmp_x", false},      // excluded
		{"", "shop.cache_only", false}, // first match has no sink snapshot feeds
		{"", "crm.users", true},
		{"", "crm.notes", false}, // not included
		{"", "other.t", false},   // no tables[] entry
		{`shop\.u.*`, "shop.users", true},
		{`shop\.u.*`, "crm.users", false},
		{`users`, "shop.users", false}, // --tables is anchored
	} {
		t.Run(tc.only+"/"+tc.table, func(t *testing.T) {
			var only *regexp.Regexp
			if tc.only != "" {
				only, _ = cdc.CompileMatch(tc.only)
			}
			match, err := snapshotTables(cfg, only)
			if err != nil {
				t.Fatal(err)
			}
			db, table, _ := strings.Cut(tc.table, ".")
			if got := match(db, table); got != tc.want {
				t.Fatalf("match(%s) = %v, want %v", tc.table, got, tc.want)
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
