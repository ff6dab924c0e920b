package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rowsync/rowsync/backfill"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/internal/mongotest"
	"github.com/rowsync/rowsync/verify"
)

// verifyFixture is a schema on the binlog MariaDB whose users table is
// projected into Redis (DB 0, keys starting with the schema's name) and
// into a MongoDB database of the schema's name, with a file checkpoint.
type verifyFixture struct {
	t       *testing.T
	schema  string
	cfgPath string
	admin   string
	dir     string
	db      *sql.DB
	rdb     *goredis.Client
	mc      *mongo.Client
}

func newVerifyFixture(t *testing.T, rows int) *verifyFixture {
	t.Helper()
	f := &verifyFixture{t: t, schema: fmt.Sprintf("rs_verifycmd_%d", os.Getpid())}
	var err error
	f.db, err = sql.Open("mysql", "root@tcp(127.0.0.1:3307)/?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	f.exec("DROP DATABASE IF EXISTS " + f.schema)
	f.exec("CREATE DATABASE " + f.schema)
	f.exec("CREATE TABLE " + f.schema + ".users (id INT PRIMARY KEY, name VARCHAR(40), score DECIMAL(8,2), seen DATETIME(3))")
	var b strings.Builder
	for i := 1; i <= rows; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "(%d,'user %d',%d.5,'2024-03-04 05:06:07.890')", i, i, i)
	}
	f.exec("INSERT INTO " + f.schema + ".users VALUES " + b.String())
	f.rdb = goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	uri, err := mongotest.URI()
	if err != nil {
		t.Fatal(err)
	}
	f.mc, err = mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(2 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	decimal := "decimal128"
	if mongotest.Ferret(context.Background(), f.mc) {
		decimal = "string" // FerretDB 1.24 has no Decimal128
	}
	t.Cleanup(func() {
		ctx := context.Background()
		f.exec("DROP DATABASE IF EXISTS " + f.schema)
		f.db.Close()
		iter := f.rdb.Scan(ctx, 0, f.schema+"_*", 1000).Iterator()
		for iter.Next(ctx) {
			f.rdb.Del(ctx, iter.Val())
		}
		f.rdb.Close()
		_ = f.mc.Database(f.schema).Drop(ctx)
		_ = f.mc.Disconnect(ctx)
	})
	dir := t.TempDir()
	f.dir, f.admin = dir, freeAddr(t)
	f.cfgPath = filepath.Join(dir, "rowsync.yaml")
	cfg := fmt.Sprintf(`name: %s
source:
  binlog:
    addr: 127.0.0.1:3307
    user: root
    flavor: mariadb
    server_id: %d
    include: ["%s\\..*"]
checkpoint: {file: %s}
redis: {addr: "127.0.0.1:6379"}
mongo: {uri: %q, decimal: %s, bulk_size: 25}
deadletter: {file: %s}
admin: {addr: %s}
backfill: {poll: 200ms}
tables:
  - match: %s\.users
    redis_hash: {}
    mongo: {}
`, strings.ReplaceAll(f.schema, "_", "-"), 3000+os.Getpid()%1000, f.schema, filepath.Join(dir, "checkpoint"), uri, decimal,
		filepath.Join(dir, "dead.jsonl"), f.admin, f.schema)
	if err := os.WriteFile(f.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *verifyFixture) exec(q string) {
	f.t.Helper()
	if _, err := f.db.Exec(q); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

// rowsync runs a command of the binary in-process.
func (f *verifyFixture) rowsync(args ...string) (int, string) {
	var out, errOut bytes.Buffer
	code := dispatch(append([]string{args[0], "-c", f.cfgPath}, args[1:]...), nil, &out, &errOut)
	return code, out.String() + errOut.String()
}

// TestVerifyCommand: after a snapshot both sinks equal MySQL (exit 0);
// a hand-corrupted hash and document, a deleted one and an extra one are
// each reported, per sink, with exit 1.
func TestVerifyCommand(t *testing.T) {
	f := newVerifyFixture(t, 30)
	if code, out := f.rowsync("snapshot"); code != exitOK {
		t.Fatalf("snapshot: exit %d\n%s", code, out)
	}
	code, out := f.rowsync("verify", "--chunk", "7")
	if code != exitOK || !strings.Contains(out, "ok    redis  "+f.schema+".users: 30 rows: 0 missing, 0 different, 0 extra") ||
		!strings.Contains(out, "ok    mongo  "+f.schema+".users: 30 rows: 0 missing, 0 different, 0 extra") {
		t.Fatalf("clean: exit %d\n%s", code, out)
	}

	f.corrupt()
	key := func(id int) string { return fmt.Sprintf("%s_users_%d", f.schema, id) }
	code, out = f.rowsync("verify", "--chunk", "7")
	t.Logf("rowsync verify after the corruption:\n%s", out)
	for _, want := range []string{
		"DIFF  redis  " + f.schema + ".users: 30 rows: 1 missing, 1 different, 1 extra",
		"DIFF  mongo  " + f.schema + ".users: 30 rows: 1 missing, 1 different, 1 extra",
		"missing      " + key(5),
		"different    " + key(3) + ` name: "evil" (want "user 3")`,
		"extra        " + key(999),
		`missing      {"$numberInt":"6"}`,
		`different    {"$numberInt":"4"} name: "evil" (want "user 4")`,
		`extra        {"$numberInt":"998"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
}

// corrupt hand-corrupts, deletes and adds one hash and one document.
func (f *verifyFixture) corrupt() {
	f.t.Helper()
	ctx := context.Background()
	key := func(id int) string { return fmt.Sprintf("%s_users_%d", f.schema, id) }
	f.rdb.HSet(ctx, key(3), "name", "evil")
	f.rdb.Del(ctx, key(5))
	f.rdb.HSet(ctx, key(999), "id", "999", "name", "ghost")
	users := f.mc.Database(f.schema).Collection("users")
	if _, err := users.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(4)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "evil"}}}}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := users.DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(6)}}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := users.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(998)}}); err != nil {
		f.t.Fatal(err)
	}
}

// TestVerifyRepair: with 'rowsync run' running, verify --repair sends the
// differing keys of both sinks as one backfill request, waits for the run
// to execute it, and the comparison after it reports 0 (exit 0).
func TestVerifyRepair(t *testing.T) {
	f := newVerifyFixture(t, 30)
	if code, out := f.rowsync("snapshot"); code != exitOK {
		t.Fatalf("snapshot: exit %d\n%s", code, out)
	}
	p := startRowsync(t, f.cfgPath, f.admin, filepath.Join(f.dir, "rowsync.log"))
	f.corrupt()
	code, out := f.rowsync("verify", "--repair", "--repair-timeout", "5m")
	t.Logf("rowsync verify --repair:\n%s", out)
	if code != exitOK {
		t.Fatalf("exit %d\nrowsync log:\n%s", code, readFile(p.log))
	}
	after := out[strings.Index(out, "after repair:"):]
	for _, want := range []string{
		"repair " + f.schema + ".users: backfill of 6 keys requested",
		"ok    redis  " + f.schema + ".users: 30 rows: 0 missing, 0 different, 0 extra",
		"ok    mongo  " + f.schema + ".users: 30 rows: 0 missing, 0 different, 0 extra",
	} {
		if !strings.Contains(out, want) || strings.HasPrefix(want, "ok") && !strings.Contains(after, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "must be running") {
		t.Errorf("the owner was running")
	}
	p.stop(t)
}

// TestRepairWithoutOwner: when no 'rowsync run' beats, --repair says that
// one must run; the request stays stored for it.
func TestRepairWithoutOwner(t *testing.T) {
	store := backfill.NewMemory()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing would execute the request: stop waiting at once
	var out bytes.Buffer
	var keys verify.Keys
	keys.Add(verify.Mismatch{Kind: verify.Missing, PK: []string{"7"}})
	if repairTable(ctx, &config.Config{Name: "shop"}, store, "d", "t", &keys, &out) {
		t.Fatal("repair reported done")
	}
	if !strings.Contains(out.String(), "no 'rowsync run' of pipeline shop is running: 'rowsync run' must be running to execute the repair") {
		t.Fatalf("output:\n%s", out.String())
	}
	states, _ := store.List(context.Background())
	if len(states) != 1 || states[0].Status != backfill.Requested || len(states[0].Keys) != 1 || states[0].Keys[0][0] != "7" {
		t.Fatalf("stored %+v", states)
	}
}
