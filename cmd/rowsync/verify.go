package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/internal/redisconn"
	"github.com/rowsync/rowsync/mysqlmeta"
	redisproj "github.com/rowsync/rowsync/projector/redis"
	"github.com/rowsync/rowsync/verify"
)

// cmdVerify compares every redis_hash table with MySQL and prints one
// line per table (and the first mismatches). Exit 1 on any difference.
func cmdVerify(args []string, stdout, stderr io.Writer) int {
	var dsn string
	var show int
	cfg, _, code := loadConfig("verify", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&dsn, "mysql", "", "MySQL DSN to read tables from (default: mysql.dsn, else the binlog source's server)")
		fs.IntVar(&show, "show", 10, "mismatches to print per table")
	})
	if cfg == nil {
		return code
	}
	rc, hasRedis := config.Block[redisconn.Config](cfg, "redis")
	if !hasRedis {
		fmt.Fprintln(stderr, "rowsync verify: no redis: block to verify")
		return exitConfig
	}
	dc, err := mysqlConfig(cfg, dsn)
	if err == nil && dc == nil {
		err = errors.New("no MySQL to compare with: pass --mysql DSN")
	}
	if err != nil {
		fmt.Fprintf(stderr, "rowsync verify: %v\n", err)
		return exitConfig
	}
	db, err := sql.Open("mysql", dc.FormatDSN())
	if err != nil {
		fmt.Fprintf(stderr, "rowsync verify: %v\n", err)
		return exitConfig
	}
	defer db.Close()
	rdb, err := redisconn.New(rc)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync verify: redis: %v\n", err)
		return exitConfig
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	// The tables verify compares are those the router sends to the
	// redis_hash sink, each with its deciding entry's settings.
	router := cfg.Router()
	tables, err := mysqlmeta.NewCatalog(db).Tables(ctx, func(d, tb string) bool {
		return router.Routes(d, tb, redisproj.RuleKey)
	})
	if err != nil {
		fmt.Fprintf(stderr, "rowsync verify: %v\n", err)
		return exitFail
	}
	ok := true
	for _, dt := range tables {
		i, t := router.Entry(dt[0], dt[1])
		spec, err := verify.RedisTableFor(dt[0], dt[1], t.Sinks[redisproj.RuleKey].(redisproj.TableConfig), t.PK)
		if err != nil {
			fmt.Fprintf(stderr, "tables[%d].redis_hash.%v\n", i, err)
			return exitConfig
		}
		shown := 0
		st, err := verify.Redis(ctx, db, rdb, spec, func(m verify.Mismatch) {
			if shown < show {
				fmt.Fprintf(stdout, "  %-12s %s %s\n", m.Kind, m.Key, m.Detail)
			}
			shown++
		})
		if err != nil {
			fmt.Fprintf(stdout, "FAIL  %s.%s: %v\n", dt[0], dt[1], err)
			ok = false
			continue
		}
		mark := "ok  "
		if !st.OK() {
			mark, ok = "DIFF", false
		}
		fmt.Fprintf(stdout, "%s  %s.%s: %s\n", mark, dt[0], dt[1], st)
	}
	if !ok {
		return exitFail
	}
	return exitOK
}
