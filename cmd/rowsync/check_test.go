package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// runCheck runs `rowsync check` on the config body and returns its exit
// code and output.
func runCheck(t *testing.T, body string) (int, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rowsync.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := cmdCheck([]string{"-c", path}, &out, &errOut)
	return code, out.String() + errOut.String()
}

// wantLines asserts that out has the lines of want, in that order.
func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w+"\n")
		if i < 0 {
			t.Fatalf("check output lacks %q (in order):\n%s", w, out)
		}
		rest = rest[i+len(w)+1:]
	}
}

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestCheckBinlogConnections: a binlog pipeline's check tries the binlog
// server, Redis, the checkpoint and dead-letter files and the refetch
// MySQL, one line each, in that order.
func TestCheckBinlogConnections(t *testing.T) {
	dir := t.TempDir()
	code, out := runCheck(t, fmt.Sprintf(`name: check-binlog
source:
  binlog:
    addr: 127.0.0.1:3307
    user: root
    flavor: mariadb
    server_id: %d
redis:
  addr: 127.0.0.1:6379
  db: 9
checkpoint:
  file: %s/cp.json
deadletter:
  file: %s/dl.jsonl
mysql:
  dsn: "root@tcp(127.0.0.1:3307)/"
tables:
  - match: rowsync_check_none\..*
    refetch: true
    redis_hash: {}
`, 2000+rand.IntN(100000), dir, dir))
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	wantLines(t, out, "ok    config", "ok    source.binlog 127.0.0.1:3307", "ok    redis 127.0.0.1:6379",
		"ok    checkpoint.file "+dir+"/cp.json", "ok    deadletter.file "+dir+"/dl.jsonl", "ok    mysql (refetch)",
		"ok    schema of mapped tables")
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("check left files behind: %v", left)
	}
}

// TestCheckKafkaConnections: the Kafka source and the Kafka dead letter
// are dialled, the schema source is read, and the default checkpoint of
// a binlog source is not tried for a Kafka source.
func TestCheckKafkaConnections(t *testing.T) {
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(1, "check-in", "check-dead"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := strings.Join(c.ListenAddrs(), ",")
	code, out := runCheck(t, fmt.Sprintf(`name: check-kafka
source:
  kafka:
    brokers: [%s]
    topics: [check-in]
    format: canal-json
redis:
  addr: 127.0.0.1:6379
  db: 9
checkpoint:
  file: /nonexistent/cp.json
deadletter:
  kafka:
    brokers: [%s]
    topic: check-dead
schema:
  dsn: "root@tcp(127.0.0.1:3306)/"
tables:
  - match: rowsync_check_none\..*
    redis_hash: {}
`, brokers, brokers))
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	wantLines(t, out, "ok    config", "ok    source.kafka "+brokers, "ok    redis 127.0.0.1:6379",
		"ok    deadletter.kafka check-dead", "ok    schema (column types of typeless formats)", "ok    schema of mapped tables")
	if strings.Contains(out, "checkpoint") {
		t.Errorf("a Kafka source's check tried the checkpoint:\n%s", out)
	}
}

// TestCheckReportsEveryFailure: every connection that fails gets a FAIL
// line naming it, the others still run, and check exits 1.
func TestCheckReportsEveryFailure(t *testing.T) {
	queue := fmt.Sprintf("rowsync-check-missing-%d", rand.Uint64())
	dead := closedAddr(t)
	code, out := runCheck(t, fmt.Sprintf(`name: check-fail
source:
  rabbitmq:
    url: amqp://guest:guest@127.0.0.1:5672/
    queue: %s
    format: canal-json
redis:
  addr: %s
deadletter:
  file: %s/missing/dl.jsonl
tables:
  - match: rowsync_check_none\..*
    invalidate:
      keys: ["k:{pk}"]
`, queue, dead, t.TempDir()))
	if code != exitFail {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		"FAIL  source.rabbitmq queue " + queue + ": queue \"" + queue + "\"",
		"FAIL  redis " + dead + ": ",
		"FAIL  deadletter.file ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "missing/dl.jsonl: not writable") {
		t.Errorf("the dead-letter line does not say why:\n%s", out)
	}
}

// TestCheckRabbitMQDeclaredQueue: a queue rowsync declares itself need not
// exist yet.
func TestCheckRabbitMQDeclaredQueue(t *testing.T) {
	queue := fmt.Sprintf("rowsync-check-declared-%d", rand.Uint64())
	code, out := runCheck(t, fmt.Sprintf(`name: check-rabbit
source:
  rabbitmq:
    url: amqp://guest:guest@127.0.0.1:5672/
    queue: %s
    declare: true
    format: canal-json
redis:
  addr: 127.0.0.1:6379
  db: 9
deadletter:
  file: %s/dl.jsonl
tables:
  - match: rowsync_check_none\..*
    redis_hash: {}
`, queue, t.TempDir()))
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	wantLines(t, out, "ok    source.rabbitmq queue "+queue, "ok    redis 127.0.0.1:6379")
}
