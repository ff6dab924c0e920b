package binlog

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"go.uber.org/goleak"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/checkpoint"
)

// testAddr is the project's binlog-enabled MariaDB, started by
// scripts/mariadb-binlog.sh.
const testAddr = "127.0.0.1:3307"

func TestMain(m *testing.M) {
	if err := startServer(); err != nil {
		fmt.Fprintln(os.Stderr, "binlog tests:", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}

// startServer runs scripts/mariadb-binlog.sh from the module root.
func startServer() error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "mariadb-binlog.sh"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/mariadb-binlog.sh: %w", err)
	}
	return nil
}

var nonWord = regexp.MustCompile(`[^a-z0-9_]+`)

// testDB gives a connection to 3307 with the schema rs_binlog_<test> created
// (and dropped at the end) and selected.
func testDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	schema := "rs_binlog_" + nonWord.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(schema) > 64 {
		schema = schema[:64]
	}
	root := dbOpen(t, "")
	mustExec(t, root, "DROP DATABASE IF EXISTS `"+schema+"`")
	mustExec(t, root, "CREATE DATABASE `"+schema+"` CHARACTER SET utf8mb4")
	t.Cleanup(func() {
		if _, err := root.Exec("DROP DATABASE IF EXISTS `" + schema + "`"); err != nil {
			t.Errorf("drop %s: %v", schema, err)
		}
		root.Close()
	})
	db := dbOpen(t, schema)
	t.Cleanup(func() { db.Close() })
	return db, schema
}

func dbOpen(t testing.TB, schema string) *sql.DB {
	t.Helper()
	c := gomysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "tcp", testAddr, schema
	c.MultiStatements = true
	c.Params = map[string]string{"time_zone": "'+00:00'"}
	if err := c.Apply(gomysql.Charset("utf8mb4", "")); err != nil {
		t.Fatal(err)
	}
	conn, err := gomysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1) // one session: statements run in order, session vars stick
	if err := db.Ping(); err != nil {
		t.Fatalf("mariadb on %s: %v", testAddr, err)
	}
	return db
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newSource opens a source on schema's tables, closed at cleanup.
func newSource(t testing.TB, schema string, store checkpoint.Store, mod func(*Config)) *Source {
	t.Helper()
	cfg := Config{Addr: testAddr, Include: []string{regexp.QuoteMeta(schema) + `\..*`}, MaxWait: 50 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := New(ctx, cfg, store, testLogger(t))
	if err != nil {
		t.Fatalf("new source: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// collect reads batches until it holds n events (acking each batch with
// nil) or the generous deadline passes. It keeps copies of the events:
// an acked batch's row maps are the source's again.
func collect(t testing.TB, s *Source, n int) []cdc.Event {
	t.Helper()
	var out []cdc.Event
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for len(out) < n {
		b, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("next after %d/%d events: %v", len(out), n, err)
		}
		for _, r := range b.Rejects {
			t.Errorf("reject at %s: %v", r.Pos, r.Reason)
		}
		out = append(out, cdc.CloneEvents(b.Events)...)
		if err := b.Ack(ctx, nil); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	if len(out) != n {
		t.Fatalf("got %d events, want %d", len(out), n)
	}
	return out
}
