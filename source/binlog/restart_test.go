package binlog

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var long = flag.Bool("long", os.Getenv("ROWSYNC_LONG") == "1", "run the long tests (restarts the shared 3307 server)")

// TestServerRestart stops and restarts the 3307 server under a running
// source. It disturbs every other user of that server, so it runs only
// with -long.
func TestServerRestart(t *testing.T) {
	if !*long {
		t.Skip("restarts the shared server; run with -long")
	}
	db, schema := testDB(t)
	mustExec(t, db, "CREATE TABLE rs (id INT PRIMARY KEY)")
	s := newSource(t, schema, nil, func(c *Config) { c.BackoffMax = time.Second })
	mustExec(t, db, "INSERT INTO rs VALUES (1)")
	collect(t, s, 1)
	script(t, "stop")
	// Next runs (and retries) while the server is down
	done := make(chan struct{})
	var ids []any
	go func() {
		defer close(done)
		for _, e := range collect(t, s, 2) {
			ids = append(ids, e.After.Get("id"))
		}
	}()
	time.Sleep(2 * time.Second) // let it fail a few reconnects; not an assertion
	script(t, "start")
	db2 := dbOpen(t, schema)
	defer db2.Close()
	mustExec(t, db2, "INSERT INTO rs VALUES (2)")
	mustExec(t, db2, "INSERT INTO rs VALUES (3)")
	<-done
	if len(ids) != 2 || ids[0] != int64(2) || ids[1] != int64(3) {
		t.Fatalf("after restart got ids %v, want [2 3]", ids)
	}
}

func script(t *testing.T, arg string) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "scripts", "mariadb-binlog.sh"), arg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mariadb-binlog.sh %s: %v", arg, err)
	}
}
