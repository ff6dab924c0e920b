package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rowsync/rowsync/backfill"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/invalidator"
	"github.com/rowsync/rowsync/pipeline"
	"github.com/rowsync/rowsync/refetch"
	"github.com/rowsync/rowsync/verify"
)

const verifyHelp = `usage: rowsync verify -c FILE [--mysql DSN] [--tables REGEX] [--chunk N] [--show N]
                     [--repair [--repair-timeout D]]

Compares every sink that holds rows (redis_hash, mongo) with MySQL, table by
table, exactly as the projectors render the rows, and prints per table and
sink: rows in MySQL, missing (no hash or document), different, and extra
(in the sink, no such row in MySQL), with the first keys of each. Exit 1
when anything differs.

The comparison streams: the table is read in primary-key order, --chunk rows
per query, each chunk looked up in the sink in one round trip; then the
sink's keys of the table are walked (Redis SCAN of the key pattern, the
collection's _ids) and checked in MySQL by primary key, --chunk at a time.
Memory depends on --chunk, not on the table.

--repair pushes the differing rows (missing, different and extra keys)
through the running pipeline: per table, a backfill request of just those
primary keys (at most %d keys a request; more go in several requests, one
after the other; at most %d keys a table, past that it says to backfill the
whole table) stored beside the checkpoint as 'rowsync backfill' does. The
'rowsync run' of the pipeline reads each key's current row and writes it to
every sink, or deletes the key where the row is gone, interleaved with the
stream so a newer change always wins. verify waits for each request to end
(Ctrl-C, or --repair-timeout, stops the waiting, not the request: exit 1),
then compares the table again
and reports that result. 'rowsync run' must be running: verify says so when
no run of the pipeline has beaten recently, and the requests wait for one.
Repair needs tables with a primary key.

Tables: every base table routed to redis_hash or mongo (and admitted by
source.binlog include/exclude), limited by --tables. Rows are read from
--mysql, else mysql.dsn, else the binlog source's server.

Flags:
`

// verifyUsage is verifyHelp with its limits filled in.
var verifyUsage = fmt.Sprintf(verifyHelp, verify.RepairChunk, verify.MaxRepairKeys)

// verifyFlags are the command line of `rowsync verify`.
type verifyFlags struct {
	dsn    string
	tables string
	chunk  int
	show   int
	repair bool
	// repairTimeout bounds the wait for all repairs; 0: no bound
	repairTimeout time.Duration
}

func cmdVerify(args []string, stdout, stderr io.Writer) int {
	var fl verifyFlags
	cfg, _, code := loadConfig("verify", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&fl.dsn, "mysql", "", "MySQL DSN to read tables from (default: mysql.dsn, else the binlog source's server)")
		fs.StringVar(&fl.tables, "tables", "", `only tables whose "db.table" matches this regex (anchored)`)
		fs.IntVar(&fl.chunk, "chunk", verify.DefaultChunk, fmt.Sprintf("rows per query and keys per sink round trip (at most %d)", refetch.MaxChunkSize))
		fs.IntVar(&fl.show, "show", 10, "mismatches to print per table and sink")
		fs.BoolVar(&fl.repair, "repair", false, "backfill the differing keys through the running pipeline, wait, and verify again")
		fs.DurationVar(&fl.repairTimeout, "repair-timeout", 0, "with --repair, stop waiting for the repairs after this long (0: no limit)")
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), verifyUsage)
			fs.PrintDefaults()
		}
	})
	if cfg == nil {
		return code
	}
	only, err := tableSelection(fl.tables, fl.chunk)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync verify: %v\n", err)
		return exitConfig
	}
	rc, err := verifyMySQL(cfg, fl.dsn)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync verify: %v\n", err)
		return exitConfig
	}
	log := scrubbedLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	d, err := newDeps(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync verify: %v\n", err)
		return exitConfig
	}
	defer d.close()
	// The sinks that hold rows, built and routed exactly as under run.
	routes, err := buildRoutes(ctx, d, func(name string) bool { return name == invalidator.Name })
	if err != nil {
		fmt.Fprintf(stderr, "rowsync verify: %v\n", err)
		return exitConfig
	}
	defer closeRoutes(routes, log)
	if len(routes) == 0 {
		fmt.Fprintln(stderr, "rowsync verify: no table is routed to redis_hash or mongo: nothing to verify")
		return exitConfig
	}
	rf, err := refetch.New(rc, log)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync verify: %v\n", err)
		return exitConfig
	}
	defer rf.Close()
	match, err := snapshotTables(cfg, routes, only)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync verify: %v\n", err)
		return exitConfig
	}
	tables, err := rf.ListTables(ctx, match)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync verify: %v\n", err)
		return exitFail
	}
	var store backfill.Store
	if fl.repair {
		if store, err = backfillStore(d); err != nil {
			fmt.Fprintf(stderr, "rowsync verify: --repair: %v\n", err)
			return exitConfig
		}
		defer store.Close()
	}
	repairCtx := ctx
	if fl.repairTimeout > 0 {
		var cancel context.CancelFunc
		repairCtx, cancel = context.WithTimeout(ctx, fl.repairTimeout)
		defer cancel()
	}
	// verify streams whole tables through one process, as snapshot does:
	// the same collector settings bound its heap.
	setGC(cfg.Pipeline, log)
	ok := true
	for _, dt := range tables {
		var keys verify.Keys
		var collect func(verify.Mismatch)
		if fl.repair {
			collect = keys.Add
		}
		if verifyTable(ctx, rf, routes, dt[0], dt[1], fl, stdout, collect) {
			continue
		}
		if !fl.repair || len(keys.List()) == 0 || repairCtx.Err() != nil {
			ok = false
			continue
		}
		if !repairTable(repairCtx, cfg, store, dt[0], dt[1], &keys, stdout) {
			ok = false
			continue
		}
		fmt.Fprintf(stdout, "after repair:\n")
		if !verifyTable(ctx, rf, routes, dt[0], dt[1], fl, stdout, nil) {
			ok = false
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "rowsync verify: interrupted")
		return exitFail
	}
	if !ok {
		return exitFail
	}
	return exitOK
}

// verifyMySQL is where verify reads rows: --mysql, else mysql:, else the
// binlog source's server.
func verifyMySQL(cfg *config.Config, dsn string) (refetch.Config, error) {
	if dsn == "" {
		return snapshotMySQL(cfg)
	}
	dc, err := mysqlConfig(cfg, dsn)
	if err != nil {
		return refetch.Config{}, err
	}
	return refetch.Config{DSN: dc.FormatDSN()}, nil
}

// verifyTable compares db.table with each sink routed it, prints a line
// per sink (and its first mismatches) and reports whether all are equal.
// report, if not nil, gets every mismatch too.
func verifyTable(ctx context.Context, rf *refetch.Refetcher, routes []pipeline.Route, db, table string,
	fl verifyFlags, stdout io.Writer, report func(verify.Mismatch)) bool {
	ok := true
	for _, r := range routes {
		if !r.Wants(db, table) {
			continue
		}
		shown := 0
		opt := verify.Options{Chunk: fl.chunk, Report: func(m verify.Mismatch) {
			if shown < fl.show {
				fmt.Fprintf(stdout, "  %-12s %s %s\n", m.Kind, m.Key, m.Detail)
			}
			shown++
			if report != nil {
				report(m)
			}
		}}
		st, err := verify.Sink(ctx, rf, r.Sink, db, table, opt)
		mark := "ok  "
		switch {
		case err != nil:
			fmt.Fprintf(stdout, "FAIL  %-6s %s.%s: %v\n", r.Name, db, table, err)
			ok = false
			continue
		case !st.OK():
			mark, ok = "DIFF", false
		}
		fmt.Fprintf(stdout, "%s  %-6s %s.%s: %s\n", mark, r.Name, db, table, st)
	}
	return ok
}

// repairTable requests the backfill of keys of db.table, waits for it
// and prints what happened; false when it did not finish.
func repairTable(ctx context.Context, cfg *config.Config, store backfill.Store, db, table string, keys *verify.Keys, stdout io.Writer) bool {
	name := db + "." + table
	owner, at, err := store.Owner(ctx)
	if err != nil {
		fmt.Fprintf(stdout, "repair %s: %v\n", name, err)
		return false
	}
	if now := time.Now(); !backfill.OwnerRunning(owner, at, now) {
		fmt.Fprintf(stdout, "repair %s: %s\n", name, backfill.OwnerLine(cfg.Name, owner, at, now,
			"'rowsync run' must be running to execute the repair; the request waits for it"))
	}
	list := keys.List()
	fmt.Fprintf(stdout, "repair %s: backfill of %d keys requested (at most %d a request)\n", name, len(list), verify.RepairChunk)
	if keys.Dropped > 0 {
		fmt.Fprintf(stdout, "repair %s: %d more differing keys not requested: backfill the whole table ('rowsync backfill -c FILE %s')\n", name, keys.Dropped, name)
	}
	err = verify.Repair(ctx, store, db, table, list, verify.RepairOptions{Progress: func(st backfill.State) {
		fmt.Fprintf(stdout, "repair %s: request %s %s, %d rows\n", name, st.ID, st.Status, st.Rows)
	}})
	if err != nil {
		fmt.Fprintf(stdout, "repair %s: %v\n", name, err)
		return false
	}
	return true
}
