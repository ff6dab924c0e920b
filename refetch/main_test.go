package refetch

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

// rootDSN reaches the test MariaDB (binlog off is fine: refetch only reads).
const rootDSN = "root@tcp(127.0.0.1:3306)/"

// adminDB opens a connection for test setup with multi statements.
func adminDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", rootDSN+"?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// schema creates rs_refetch_<name> with the given statements run inside it
// and drops it when the test ends.
func schema(t testing.TB, name string, stmts ...string) (string, *sql.DB) {
	t.Helper()
	db := adminDB(t)
	s := "rs_refetch_" + name
	ctx := context.Background()
	mustExec(t, db, "DROP DATABASE IF EXISTS "+s)
	mustExec(t, db, "CREATE DATABASE "+s)
	t.Cleanup(func() {
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+s); err != nil {
			t.Errorf("drop %s: %v", s, err)
		}
	})
	for _, st := range stmts {
		mustExec(t, db, strings.ReplaceAll(st, "$S", s))
	}
	return s, db
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.ExecContext(ctx, q, args...); err != nil {
		t.Fatalf("%.200s: %v", q, err)
	}
}

func newRefetcher(t testing.TB, cfg Config) *Refetcher {
	t.Helper()
	if cfg.DSN == "" {
		cfg.DSN = rootDSN
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second // shared, busy machine
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	r, err := New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
