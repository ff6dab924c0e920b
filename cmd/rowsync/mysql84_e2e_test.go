package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/checkpoint"
	"github.com/rowsync/rowsync/internal/mysqlstandin"
)

// TestMySQL84RecordedBinlogs runs the real binary against a MySQL 8.4
// primary stand-in (caching_sha2_password over plain TCP, no SHOW MASTER
// STATUS) that streams binlogs recorded by MySQL 8.0.26-9.6.0 as one
// binlog sequence: BIT, invisible columns, a negative TIME over 24h, a
// compressed transaction, VECTOR columns (with a DROP DATABASE and the
// rows again), a tagged GTID, then JSON inserts, a full update and a
// partial JSON update. rowsync is killed with SIGKILL after the first
// files and restarted; Redis must end equal to the recorded rows and the
// checkpoint at the end of the last file.
func TestMySQL84RecordedBinlogs(t *testing.T) {
	data := filepath.Join("..", "..", "source", "binlog", "testdata", "mysql8")
	files := []string{"mysql_type_bit.000001", "binlog-invisible-columns.000001", "time_issue.000001",
		"transaction_compression.000001", "vector.binlog", "binlog_transaction_with_GTID_TAG.000001", "json.binlog.000001"}
	for i := range files {
		files[i] = filepath.Join(data, files[i])
	}
	pw := "s3cret-" + fmt.Sprint(rand.Uint32())
	srv, err := mysqlstandin.Start(mysqlstandin.Config{
		User: "repl", Password: pw, Files: files,
		Vars: map[string]string{"binlog_row_value_options": "PARTIAL_JSON"},
		// the catalog the recorded servers had (CREATE TABLE statements in
		// the files; test.tb1 and test.orders are named here)
		Tables: []mysqlstandin.Table{
			{DB: "mysql", Name: "foo", Columns: [][2]string{{"a", "bit(3)"}, {"b", "text"}, {"c", "bit(8)"}}},
			{DB: "mysql", Name: "t1", Columns: [][2]string{{"f1", "int unsigned"}, {"f2", "int unsigned"}, {"f3", "int"},
				{"f4", "text"}, {"f5", "blob"}, {"f6", "bigint unsigned"}}},
			{DB: "noria", Name: "t", Columns: [][2]string{{"t", "time"}}},
			{DB: "test", Name: "tb1", Columns: [][2]string{{"id", "int"}}, PK: []string{"id"}},
			{DB: "dtb", Name: "foo", Columns: [][2]string{{"id", "bigint unsigned"}, {"vector_column", "vector(3)"}}, PK: []string{"id"}},
			{DB: "dtb", Name: "bar", Columns: [][2]string{{"id", "bigint unsigned"}, {"vector_column", "vector(2)"},
				{"foo", "text"}, {"vector_column2", "vector(4)"}}, PK: []string{"id"}},
			{DB: "test", Name: "orders", Columns: [][2]string{{"id", "int"}, {"qty", "int"}, {"amount", "decimal(10,2)"}}, PK: []string{"id"}},
			{DB: "mysql", Name: "t", Columns: [][2]string{{"id", "int"}, {"json_col", "json"}, {"name", "varchar(100)"}, {"age", "int"}},
				PK: []string{"id"}},
		},
	}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	dir := t.TempDir()
	name := fmt.Sprintf("e2e-mysql84-%d", os.Getpid())
	prefix := fmt.Sprintf("m84:%d:", os.Getpid())
	admin := freeAddr(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DB: e2eRedisDB})
	defer rdb.Close()
	ctx := context.Background()
	cleanup := func() {
		for _, pat := range []string{prefix + "*", "rowsync:checkpoint:" + name} {
			iter := rdb.Scan(ctx, 0, pat, 1000).Iterator()
			for iter.Next(ctx) {
				rdb.Del(ctx, iter.Val())
			}
		}
	}
	cleanup()
	t.Cleanup(cleanup)
	cfgPath := filepath.Join(dir, "rowsync.yaml")
	cfg := fmt.Sprintf(`name: %s
source:
  binlog:
    addr: %s
    user: repl
    password: %s
    server_id: %d
    start: binlog.000001:4
    include: ['mysql\.(foo|t1|t)', 'noria\.t', 'test\..*', 'dtb\..*']
checkpoint:
  redis: {}
redis:
  addr: 127.0.0.1:6379
  db: %d
deadletter:
  file: %s
admin:
  addr: %s
tables:
  - match: mysql.foo
    redis_hash: {key: "%sfoo:{a}"}
  - match: mysql.t1
    redis_hash: {key: "%st1:{f3}"}
  - match: noria.t
    redis_hash: {key: "%stime:{t}"}
  - match: test.tb1
    redis_hash: {key: "%stb1:{id}"}
  - match: dtb.foo
    redis_hash: {key: "%svfoo:{id}"}
  - match: dtb.bar
    redis_hash: {key: "%svbar:{id}"}
  - match: test.orders
    redis_hash: {key: "%sord:{id}"}
  - match: mysql.t
    redis_hash: {key: "%sjson:{id}"}
`, name, srv.Addr(), pw, 3000+rand.IntN(100000), e2eRedisDB, filepath.Join(dir, "dead.jsonl"), admin,
		prefix, prefix, prefix, prefix, prefix, prefix, prefix, prefix)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "rowsync.log")

	want := recordedRows(prefix)
	// the first four files' rows
	first := map[string]map[string]string{}
	for k, v := range want {
		for _, p := range []string{"foo:", "t1:", "time:", "tb1:"} {
			if strings.HasPrefix(k, prefix+p) {
				first[k] = v
			}
		}
	}
	// rowsync check: the 8.4 server's settings (PARTIAL_JSON with FULL
	// images) and the mapped tables pass
	if out, err := exec.Command(rowsyncBin, "check", "-c", cfgPath).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "ok    source.binlog") {
		t.Fatalf("rowsync check: %v\n%s", err, out)
	}
	p := startRowsync(t, cfgPath, admin, logPath)
	waitRedis(t, rdb, prefix, first, logPath)
	waitCheckpoint(t, rdb, name, "binlog.000005", 4, logPath) // the rotate after file 4
	// SIGKILL mid-stream: the rest of the files come after the restart
	p.kill()
	srv.Release(len(files))
	p = startRowsync(t, cfgPath, admin, logPath)
	waitRedis(t, rdb, prefix, want, logPath)
	waitCheckpoint(t, rdb, name, "binlog.000007", 4011, logPath) // the last XID
	if dl := readFile(filepath.Join(dir, "dead.jsonl")); dl != "" {
		t.Fatalf("dead letters:\n%s", dl)
	}
	p.stop(t)
}

// recordedRows is the Redis state the recorded files end in: every hash
// field in MySQL's text form.
func recordedRows(prefix string) map[string]map[string]string {
	vec := func(fs ...float32) string {
		var b []byte
		for _, f := range fs {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
		}
		return string(b)
	}
	rows := map[string]map[string]string{
		// mysql_type_bit: a BIT(3) b'100', b TEXT 'foo', c BIT(8) b'100000'
		"foo:4": {"a": "4", "b": "foo", "c": "32"},
		// binlog-invisible-columns: two inserts, the second updated (its
		// key column f3 too, so its hash moves)
		"t1:-3":   {"f1": "1", "f2": "2", "f3": "-3", "f4": "4", "f5": "\x05", "f6": "6000000000"},
		"t1:-333": {"f1": "111", "f2": "222", "f3": "-333", "f4": "444", "f5": "U"},
		// time_issue: TIME '-507:48:27'
		"time:-507:48:27": {"t": "-507:48:27"},
		// transaction_compression: the insert inside the payload
		"tb1:1": {"id": "1"},
		// vector: foo 1 (the crate: 1.1, 2.2, 3.3) and 2; bar 1 and 3 (2
		// deleted); the rows written again after DROP DATABASE are the same
		"vfoo:1": {"id": "1", "vector_column": vec(1.1, 2.2, 3.3)},
		"vfoo:2": {"id": "2", "vector_column": vec(1, -1, 0)},
		"vbar:1": {"id": "1", "vector_column": vec(1.1, 2.2), "vector_column2": vec(1.1, 2.2, 3.3, 4.4)},
		"vbar:3": {"id": "3", "vector_column": vec(2.01, -2.01), "vector_column2": vec(42.1, 43.2, 44.3, 45.4)},
		// binlog_transaction_with_GTID_TAG
		"ord:3": {"id": "3", "qty": "100", "amount": "250.00"},
	}
	// json.binlog: three people inserted twice (ids 1-6), everyone one
	// year older (full update), then again (partial JSON update)
	for i, p := range []struct {
		name, data string
		age        int
	}{{"Joe", "xxxxxxxxxx", 26}, {"Sue", "yyyyyyyyyy", 34}, {"Pete", "zzzzzzzzzz", 42}} {
		for _, id := range []int{i + 1, i + 4} {
			rows[fmt.Sprintf("json:%d", id)] = map[string]string{"id": fmt.Sprint(id), "name": p.name, "age": fmt.Sprint(p.age),
				"json_col": fmt.Sprintf(`{"age": %d, "data": "%s", "name": "%s"}`, p.age, p.data, p.name)}
		}
	}
	out := make(map[string]map[string]string, len(rows))
	for k, v := range rows {
		out[prefix+k] = v
	}
	return out
}

// waitRedis waits until every wanted hash is in Redis as wanted and no
// other key under prefix is.
func waitRedis(t *testing.T, rdb *goredis.Client, prefix string, want map[string]map[string]string, logPath string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Minute)
	var got map[string]map[string]string
	for {
		got = map[string]map[string]string{}
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if err == nil {
			for _, k := range keys {
				if h, err := rdb.HGetAll(ctx, k).Result(); err == nil {
					got[k] = h
				}
			}
			if reflect.DeepEqual(got, want) {
				return
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %q", k, g)
		}
	}
	t.Fatalf("Redis did not reach the recorded rows\n%s", readFile(logPath))
}

// waitCheckpoint waits until the stored checkpoint is file:offset.
func waitCheckpoint(t *testing.T, rdb *goredis.Client, name, file string, offset uint64, logPath string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Minute)
	var v string
	for time.Now().Before(deadline) {
		v, _ = rdb.Get(ctx, "rowsync:checkpoint:"+name).Result()
		var p checkpoint.Position
		if json.Unmarshal([]byte(v), &p) == nil && p.File == file && p.Offset == offset {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("checkpoint %s never reached %s:%d\n%s", v, file, offset, readFile(logPath))
}
