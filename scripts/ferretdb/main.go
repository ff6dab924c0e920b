// Command ferretdb runs FerretDB v1.24.0 embedded, so rowsync's tests and demo
// have a MongoDB wire-protocol server on a machine without a MongoDB package.
//
// It lives in its own Go module: the product module never imports FerretDB.
//
//	ferretdb -listen 127.0.0.1:27017 -backend sqlite
//	ferretdb -listen 127.0.0.1:27018 -backend postgresql -postgresql-db rowsync_ferretdb
//
// Backends:
//
//	auto        postgresql when it answers, else sqlite (the default)
//	postgresql  a PostgreSQL database on -postgresql-host (trust auth, user
//	            postgres or root); the database is created if missing
//	sqlite      one SQLite file per database under -sqlite-dir
//	            (default ${ROWSYNC_STATE:-/tmp/rowsync-state}/ferretdb/sqlite-<port>)
//
// Measured on the 2-core dev machine (BenchmarkApply in projector/mongo,
// 200-row batches, bulk_size 40): PostgreSQL about 750 upserts/s, SQLite
// about 100/s; the projector/mongo test suite takes about the same on both.
//
// FerretDB 1.24 limits worth knowing (the tests size their config to them):
// no Decimal128 (the connection drops); no TTL indexes; an update command
// holds a backend connection per matched replace until it ends, so with the
// pool of 50 (PostgreSQL) a bulk of 50 replaces, or two writers of 40,
// wedge the server (keep bulks under ~40 replaces and writers few); a
// command is not cancelled when its client goes away; write errors of a
// bulk all report index 0 and stop it; _id lookups scan unless the
// PostgreSQL backend has the GIN index and custom plans set up here.
//
// The process stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func run() error {
	state := os.Getenv("ROWSYNC_STATE")
	if state == "" {
		state = "/tmp/rowsync-state"
	}
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	backend := flag.String("backend", "auto", "storage backend: postgresql, sqlite, or auto (postgresql when it answers, else sqlite)")
	sqliteDir := flag.String("sqlite-dir", "", "SQLite data directory (default $ROWSYNC_STATE/ferretdb/sqlite-<port>)")
	pgHost := flag.String("postgresql-host", "127.0.0.1:5432", "PostgreSQL host:port")
	pgDB := flag.String("postgresql-db", "", "PostgreSQL database (default rowsync_ferretdb_<port>)")
	pgUser := flag.String("postgresql-user", "", "PostgreSQL user (default: try postgres, then root)")
	fast := flag.Bool("fast", true, "trade durability for speed (test data): SQLite synchronous=OFF, PostgreSQL synchronous_commit=off")
	logLevel := flag.String("log-level", "error", "log level: debug, info, warn, error")
	pingAddr := flag.String("ping", "", "only check that a MongoDB server answers ping at this address; exit 0 if so")
	flag.Parse()

	if *pingAddr != "" {
		return ping(*pingAddr)
	}

	_, port, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("listen %q: %w", *listen, err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Logger:   logger,
	}
	pgDBName := *pgDB
	if pgDBName == "" {
		pgDBName = "rowsync_ferretdb_" + port
	}
	var pgURL string
	if *backend == "auto" {
		// PostgreSQL is about 7x faster for bulk upserts here (see
		// scripts/ferretdb.sh); SQLite needs nothing running.
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		pgURL, err = ensurePostgres(cctx, *pgHost, *pgUser, pgDBName)
		cancel()
		*backend = "postgresql"
		if err != nil {
			fmt.Fprintf(os.Stderr, "ferretdb: postgresql not usable, falling back to sqlite: %v\n", err)
			*backend = "sqlite"
		}
	}
	switch *backend {
	case "sqlite":
		dir := *sqliteDir
		if dir == "" {
			dir = filepath.Join(state, "ferretdb", "sqlite-"+port)
		}
		dir, err = filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("sqlite-dir: %w", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("sqlite-dir: %w", err)
		}
		cfg.Handler = "sqlite"
		// The SQLite handler takes a file: URI naming a directory (trailing slash).
		u := &url.URL{Scheme: "file", Path: dir + "/"}
		if *fast {
			// Without it every write is an fsync: about 30 ms a row here.
			u.RawQuery = url.Values{"_pragma": {"synchronous(off)"}}.Encode()
		}
		cfg.SQLiteURL = u.String()
	case "postgresql", "postgres", "pg":
		u := pgURL
		if u == "" {
			if u, err = ensurePostgres(ctx, *pgHost, *pgUser, pgDBName); err != nil {
				return err
			}
		}
		if *fast {
			u += "&synchronous_commit=off" // a runtime parameter pgx passes on
		}
		// FerretDB looks documents up by _id with `_jsonb->$1 @> $2`
		// from prepared statements: with a generic plan the planner
		// cannot match the parameter to an index expression, and the
		// _id btree index cannot serve @> anyway, so every lookup scans
		// the collection. Custom plans plus a GIN index on
		// (_jsonb->'_id') per collection (indexIDs) make it an index
		// lookup (about 0.06 ms instead of 4.4 ms at 4k documents).
		u += "&plan_cache_mode=force_custom_plan"
		cfg.Handler = "postgresql"
		cfg.PostgreSQLURL = u
		go indexIDs(ctx, logger, u)
	default:
		return fmt.Errorf("backend %q: want sqlite or postgresql", *backend)
	}

	f, err := ferretdb.New(&cfg)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	fmt.Fprintf(os.Stderr, "ferretdb: listening on %s, backend %s\n", *listen, cfg.Handler)
	return f.Run(ctx)
}

var dbName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ensurePostgres finds a user that trust auth lets in and creates db if it
// does not exist; it returns the URL for FerretDB.
func ensurePostgres(ctx context.Context, host, user, db string) (string, error) {
	if !dbName.MatchString(db) {
		return "", fmt.Errorf("postgresql-db %q: want letters, digits and _", db)
	}
	users := []string{"postgres", "root"}
	if user != "" {
		users = []string{user}
	}
	var errs []error
	for _, u := range users {
		admin := fmt.Sprintf("postgres://%s@%s/postgres?sslmode=disable", url.User(u).String(), host)
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			errs = append(errs, fmt.Errorf("user %s: %w", u, err))
			continue
		}
		var exists bool
		err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists)
		if err == nil && !exists {
			_, err = conn.Exec(ctx, "CREATE DATABASE "+db)
		}
		conn.Close(ctx)
		if err != nil {
			return "", fmt.Errorf("create database %s: %w", db, err)
		}
		return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", url.User(u).String(), host, db), nil
	}
	return "", fmt.Errorf("connect to postgresql %s: %w", host, errors.Join(errs...))
}

// indexIDs gives every FerretDB collection table a GIN index on
// (_jsonb->'_id') as soon as it appears, polling the catalog until ctx ends.
// It only adds PostgreSQL indexes next to FerretDB's own tables (FerretDB
// does not list them); a collection dropped meanwhile is skipped.
func indexIDs(ctx context.Context, logger *slog.Logger, pgURL string) {
	const missing = `
SELECT n.nspname, c.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = '_jsonb' AND NOT a.attisdropped
WHERE c.relkind = 'r' AND c.relname NOT LIKE '\_ferretdb\_%'
  AND NOT EXISTS (
    SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
    WHERE i.indrelid = c.oid AND ic.relname LIKE 'rowsync\_id\_gin\_%')`
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if conn == nil {
			c, err := pgx.Connect(ctx, pgURL)
			if err != nil {
				logger.Warn("id index watcher: connect", "err", err)
				continue
			}
			// Never make FerretDB's own DDL wait long behind an index build.
			if _, err := c.Exec(ctx, "SET lock_timeout = '2s'"); err != nil {
				c.Close(ctx)
				continue
			}
			conn = c
		}
		rows, err := conn.Query(ctx, missing)
		if err != nil {
			conn.Close(ctx)
			conn = nil
			continue
		}
		var tables [][2]string
		for rows.Next() {
			var schema, table string
			if rows.Scan(&schema, &table) == nil {
				tables = append(tables, [2]string{schema, table})
			}
		}
		rows.Close()
		for _, st := range tables {
			sum := sha256.Sum256([]byte(st[1]))
			name := "rowsync_id_gin_" + hex.EncodeToString(sum[:8])
			q := fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s USING gin ((_jsonb->'_id'))",
				pgx.Identifier{name}.Sanitize(), pgx.Identifier{st[0], st[1]}.Sanitize())
			if _, err := conn.Exec(ctx, q); err != nil && ctx.Err() == nil {
				logger.Debug("id index watcher: create index", "schema", st[0], "table", st[1], "err", err)
			}
		}
	}
}

// ping runs {ping: 1} against addr with a short deadline.
func ping(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	opts := options.Client().ApplyURI("mongodb://" + addr + "/?directConnection=true").
		SetServerSelectionTimeout(2 * time.Second).SetConnectTimeout(2 * time.Second)
	c, err := mongo.Connect(ctx, opts)
	if err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}
	defer c.Disconnect(context.Background())
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}
	return nil
}
