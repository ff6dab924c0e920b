package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/source/binlog"
)

func TestPlaintextWarningsAndScrubber(t *testing.T) {
	raw := []byte(`name: t
source:
  kafka:
    brokers: ["kafka.internal:9092", "127.0.0.1:9092"]
    topics: [t]
    format: canal-json
    sasl: {mechanism: plain, username: app, password: kafka-pw-1}
redis:
  addr: redis.internal:6379
  password: redis-pw-2
invalidate_redis:
  addr: 127.0.0.1:6379
  password: local-pw-3
tables:
  - {match: shop.users, redis_hash: {}}
`)
	cfg, err := config.Parse(raw, env(nil), registry())
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(plaintextWarnings(cfg), "\n")
	for _, want := range []string{"source.kafka.sasl: the SASL PLAIN password travels in clear to kafka.internal:9092",
		"redis: the password travels in clear to redis.internal:6379"} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings\n%s\nlack %q", got, want)
		}
	}
	if strings.Contains(got, "127.0.0.1") {
		t.Errorf("a loopback address warned:\n%s", got)
	}
	if out := scrubberFor(cfg).String("kafka-pw-1 redis-pw-2 local-pw-3"); strings.Contains(out, "pw") {
		t.Fatalf("scrubbed: %s", out)
	}
}

// TestBinlogPasswordFile: the binlog password has a _file variant like
// every other secret; the file's content is what the source uses.
func TestBinlogPasswordFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte("from-the-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw := []byte("name: t\nsource:\n  binlog:\n    addr: \"127.0.0.1:3307\"\n    password_file: " + f + "\nredis: {}\ntables:\n  - {match: shop.users, redis_hash: {}}\n")
	cfg, err := config.Parse(raw, env(nil), registry())
	if err != nil {
		t.Fatal(err)
	}
	b, ok := config.Block[binlog.Config](cfg, "source.binlog")
	if !ok || b.Password != "from-the-file" {
		t.Fatalf("binlog password %q", b.Password)
	}
	if out := scrubberFor(cfg).String("pw from-the-file"); strings.Contains(out, "from-the-file") {
		t.Fatal(out)
	}
}
