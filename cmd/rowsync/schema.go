package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/mysqlmeta"
	"github.com/rowsync/rowsync/pipeline"
	"github.com/rowsync/rowsync/refetch"
	"github.com/rowsync/rowsync/source/binlog"
)

// checkSchemasOnce hands every existing table the router sends to a sink
// to that sink's schema check (cdc.SchemaChecker), so mistakes the file
// alone cannot show are caught before streaming. Without a MySQL to read
// (a message source and no mysql:) there is nothing to check. Tables
// created later are checked per change (a dead letter, not a halt).
func checkSchemasOnce(ctx context.Context, cfg *config.Config, routes []pipeline.Route) error {
	dc, err := mysqlConfig(cfg, "")
	if err != nil || dc == nil {
		return err
	}
	db, err := sql.Open("mysql", dc.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := checkSchemas(sctx, cfg, db, routes); err != nil {
		return schemaError{err}
	}
	return nil
}

func checkSchemas(ctx context.Context, cfg *config.Config, db *sql.DB, routes []pipeline.Route) error {
	router := cfg.Router()
	include, err := sourceFilter(cfg)
	if err != nil {
		return err
	}
	cat := mysqlmeta.NewCatalog(db)
	tables, err := cat.Tables(ctx, func(d, t string) bool {
		i, _ := router.Entry(d, t)
		return include.Match(d, t) && i >= 0
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, dt := range tables {
		def, err := cat.Table(ctx, dt[0], dt[1])
		if err != nil {
			return err
		}
		i, _ := router.Entry(dt[0], dt[1])
		where := fmt.Sprintf("tables[%d] (%s.%s): ", i, dt[0], dt[1])
		for _, r := range routes {
			sc, ok := r.Sink.(cdc.SchemaChecker)
			if !ok || !r.Wants(dt[0], dt[1]) {
				continue
			}
			errs = append(errs, config.Prefix(where+ruleKey(r.Name), sc.CheckSchema(dt[0], dt[1], def.Names(), def.PK)))
		}
	}
	return errors.Join(errs...)
}

// schemaError is a mismatch between the config and the tables: a
// configuration mistake, reported like one (exit 2).
type schemaError struct{ err error }

func (e schemaError) Error() string { return "schema check: " + e.err.Error() }
func (e schemaError) Unwrap() error { return e.err }

// sourceFilter is the binlog source's include/exclude (every table outside
// the system schemas for other sources).
func sourceFilter(cfg *config.Config) (*mysqlmeta.Filter, error) {
	b, ok := config.Block[binlog.Config](cfg, "source.binlog")
	if !ok {
		return nil, nil
	}
	f, err := mysqlmeta.NewFilter(b.Include, b.Exclude)
	if err != nil {
		return nil, fmt.Errorf("source.binlog: %w", err)
	}
	return f, nil
}

// mysqlConfig is the MySQL that snapshot, verify and the schema check
// read: dsn if given, else mysql.dsn, else the binlog source's server; nil
// when there is none. Its session runs in UTC so TIMESTAMP text matches
// what the sources produce.
func mysqlConfig(cfg *config.Config, dsn string) (*mysqldrv.Config, error) {
	var dc *mysqldrv.Config
	rc, hasMySQL := config.Block[refetch.Config](cfg, "mysql")
	b, hasBinlog := config.Block[binlog.Config](cfg, "source.binlog")
	switch {
	case dsn != "":
		c, err := mysqldrv.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("--mysql: %w", err)
		}
		dc = c
	case hasMySQL:
		c, err := mysqldrv.ParseDSN(rc.DSN)
		if err != nil {
			return nil, fmt.Errorf("mysql.dsn: %w", err)
		}
		dc = c
	case hasBinlog:
		dc = mysqlmeta.DSN(b.Addr, b.User, b.Password)
	default:
		return nil, nil
	}
	if dc.Params == nil {
		dc.Params = map[string]string{}
	}
	dc.Params["time_zone"] = "'+00:00'"
	return dc, nil
}
