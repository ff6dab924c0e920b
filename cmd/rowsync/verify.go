package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/keymap"
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
	if cfg.Redis == nil {
		fmt.Fprintln(stderr, "rowsync verify: no redis: block to verify")
		return exitConfig
	}
	db, err := openVerifyDB(cfg, dsn)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync verify: %v\n", err)
		return exitConfig
	}
	defer db.Close()
	rdb, err := redisClient(cfg.Redis)
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
		return router.Routes(d, tb, func(t config.Table) bool { return t.RedisHash != nil })
	})
	if err != nil {
		fmt.Fprintf(stderr, "rowsync verify: %v\n", err)
		return exitFail
	}
	ok := true
	for _, dt := range tables {
		i, t := router.Entry(dt[0], dt[1])
		tmplText := t.RedisHash.Key
		if tmplText == "" {
			tmplText = redisproj.DefaultKey
		}
		tmpl, err := keymap.Parse(tmplText)
		if err != nil {
			fmt.Fprintf(stderr, "tables[%d].redis_hash.key: %v\n", i, err)
			return exitConfig
		}
		spec := verify.RedisTable{DB: dt[0], Table: dt[1], Key: tmpl, PK: t.PK,
			Include: t.RedisHash.Include, Exclude: t.RedisHash.Exclude}
		if f := t.RedisHash.VersionField; f != "" {
			spec.Ignore = []string{f}
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

// openVerifyDB opens the MySQL to compare with, its session in UTC so
// TIMESTAMP text matches what the sources produce.
func openVerifyDB(cfg *config.Config, dsn string) (*sql.DB, error) {
	var dc *mysqldrv.Config
	switch {
	case dsn != "":
		c, err := mysqldrv.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("--mysql: %w", err)
		}
		dc = c
	case cfg.MySQL != nil:
		c, err := mysqldrv.ParseDSN(cfg.MySQL.DSN)
		if err != nil {
			return nil, fmt.Errorf("mysql.dsn: %w", err)
		}
		dc = c
	case cfg.Source.Binlog != nil:
		b := cfg.Source.Binlog
		dc = mysqlmeta.DSN(b.Addr, b.User, b.Password)
	default:
		return nil, fmt.Errorf("no MySQL to compare with: pass --mysql DSN")
	}
	if dc.Params == nil {
		dc.Params = map[string]string{}
	}
	dc.Params["time_zone"] = "'+00:00'"
	return sql.Open("mysql", dc.FormatDSN())
}
