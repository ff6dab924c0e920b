package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"syscall"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/invalidator"
	"github.com/rowsync/rowsync/pipeline"
	mongoproj "github.com/rowsync/rowsync/projector/mongo"
	redisproj "github.com/rowsync/rowsync/projector/redis"
	"github.com/rowsync/rowsync/refetch"
	"github.com/rowsync/rowsync/verify"
)

const verifyHelp = `usage: rowsync verify -c FILE [--mysql DSN] [--tables REGEX] [--chunk N] [--show N]

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

Tables: every base table routed to redis_hash or mongo (and admitted by
source.binlog include/exclude), limited by --tables. Rows are read from
--mysql, else mysql.dsn, else the binlog source's server.

Flags:
`

// verifyFlags are the command line of `rowsync verify`.
type verifyFlags struct {
	dsn    string
	tables string
	chunk  int
	show   int
}

func cmdVerify(args []string, stdout, stderr io.Writer) int {
	var fl verifyFlags
	cfg, _, code := loadConfig("verify", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&fl.dsn, "mysql", "", "MySQL DSN to read tables from (default: mysql.dsn, else the binlog source's server)")
		fs.StringVar(&fl.tables, "tables", "", `only tables whose "db.table" matches this regex (anchored)`)
		fs.IntVar(&fl.chunk, "chunk", verify.DefaultChunk, fmt.Sprintf("rows per query and keys per sink round trip (at most %d)", refetch.MaxChunkSize))
		fs.IntVar(&fl.show, "show", 10, "mismatches to print per table and sink")
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), verifyHelp)
			fs.PrintDefaults()
		}
	})
	if cfg == nil {
		return code
	}
	var only *regexp.Regexp
	if fl.tables != "" {
		re, err := cdc.CompileMatch(fl.tables)
		if err != nil {
			fmt.Fprintf(stderr, "rowsync verify: --tables: %v\n", err)
			return exitConfig
		}
		only = re
	}
	if fl.chunk <= 0 || fl.chunk > refetch.MaxChunkSize {
		fmt.Fprintf(stderr, "rowsync verify: --chunk: must be between 1 and %d, got %d\n", refetch.MaxChunkSize, fl.chunk)
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
	ok := true
	for _, dt := range tables {
		if !verifyTable(ctx, d, rf, routes, dt[0], dt[1], fl, stdout, nil) {
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
func verifyTable(ctx context.Context, d *deps, rf *refetch.Refetcher, routes []pipeline.Route, db, table string,
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
		var st verify.Stats
		var err error
		switch s := r.Sink.(type) {
		case *redisproj.Projector:
			if im, found := s.Image(db, table); found {
				st, err = verify.Redis(ctx, rf, d.redis, im, db, table, opt)
			} else {
				err = errors.New("no redis_hash rule matches")
			}
		case *mongoproj.Projector:
			if im, found := s.Image(db, table); found {
				st, err = verify.Mongo(ctx, rf, im, db, table, opt)
			} else {
				err = errors.New("no mongo rule matches")
			}
		default:
			err = errors.New("this sink cannot be verified")
		}
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
