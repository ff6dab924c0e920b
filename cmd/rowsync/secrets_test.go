package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/mysqlmeta"
	mongoproj "github.com/rowsync/rowsync/projector/mongo"
	"github.com/rowsync/rowsync/refetch"
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

// TestPlaintextWarningsOfEveryClient: each client's block says where its
// password would travel in clear; TLS, amqps:// and loopback hosts warn
// nothing.
func TestPlaintextWarningsOfEveryClient(t *testing.T) {
	for _, tt := range []struct{ name, raw, want string }{
		{"rabbitmq, kafka dead letter, mongo", `name: t
source:
  rabbitmq: {url: "amqp://app:rabbit-pw@mq.internal:5672/", queue: q, format: maxwell}
redis: {addr: "127.0.0.1:6379", password: local}
deadletter:
  kafka: {brokers: ["k1.internal:9092"], topic: dead, sasl: {mechanism: plain, username: u, password: p}}
mongo: {uri: "mongodb://app:mongo-pw@m1.internal:27017,m2.internal:27017/db"}
tables:
  - {match: shop.users, redis_hash: {}, mongo: {}}
`, `deadletter.kafka.sasl: the SASL PLAIN password travels in clear to k1.internal:9092; enable tls
mongo.uri: the password travels in clear to m1.internal:27017; enable tls
mongo.uri: the password travels in clear to m2.internal:27017; enable tls
source.rabbitmq.url: the password (amqp://, not amqps://) travels in clear to mq.internal:5672; enable tls`},
		{"tls everywhere", `name: t
source:
  rabbitmq: {url: "amqps://app:rabbit-pw@mq.internal:5671/", queue: q, format: maxwell}
redis: {addr: "r.internal:6379", password: pw, tls: {enabled: true}}
deadletter:
  kafka: {brokers: ["k1.internal:9092"], topic: dead, sasl: {mechanism: plain, username: u, password: p}, tls: {enabled: true}}
mongo: {uri: "mongodb://app:mongo-pw@m1.internal:27017/db?tls=true"}
tables:
  - {match: shop.users, redis_hash: {}, mongo: {}}
`, ``},
		{"binlog", `name: t
source:
  binlog: {addr: "db.internal:3306", password: binlog-pw}
redis: {}
tables:
  - {match: shop.users, redis_hash: {}}
`, `source.binlog: the password travels in clear to db.internal:3306; enable tls`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tt.raw), env(nil), registry())
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(plaintextWarnings(cfg), "\n"); got != tt.want {
				t.Errorf("warnings:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestSecretFiles: every secret has a _file variant. The block gets the
// file's content (trailing newline trimmed), validates again as it is
// (the components do, when they start), masks it, and setting both keys of
// a pair, or a file that does not exist, is a config error naming the key.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	const redisBase = "name: t\nsource:\n  binlog: {addr: \"127.0.0.1:3307\"}\nredis: {}\ntables:\n  - {match: shop.users, redis_hash: {}}\n"
	const kafkaBase = "name: t\nsource:\n  kafka: {brokers: [\"k:9092\"], topics: [t], format: maxwell}\nredis: {}\ntables:\n  - {match: shop.users, redis_hash: {}}\n"
	cases := []struct {
		name, key, base string // the block's key and the file without it
		pair, fileKey   string
		value, secret   string
		// decoded returns the secret as the block decoded it, and the
		// error of validating that block again
		decoded func(c *config.Config) (string, error)
	}{
		{name: "mongo uri", key: "mongo", base: redisBase, pair: "uri", fileKey: "uri_file",
			value: "mongodb://app:mongo-file-pw@127.0.0.1:27017", secret: "mongo-file-pw",
			decoded: func(c *config.Config) (string, error) {
				b, _ := config.Block[mongoproj.Config](c, "mongo")
				return b.URI, b.Validate()
			}},
		{name: "refetch dsn", key: "mysql", base: redisBase, pair: "dsn", fileKey: "dsn_file",
			value: "root:mysql-file-pw@tcp(127.0.0.1:3306)/", secret: "mysql-file-pw",
			decoded: func(c *config.Config) (string, error) {
				b, _ := config.Block[refetch.Config](c, "mysql")
				return b.DSN, b.Validate()
			}},
		{name: "schema dsn", key: "schema", base: kafkaBase, pair: "dsn", fileKey: "dsn_file",
			value: "root:schema-file-pw@tcp(127.0.0.1:3306)/", secret: "schema-file-pw",
			decoded: func(c *config.Config) (string, error) {
				b, _ := config.Block[mysqlmeta.SchemaConfig](c, "schema")
				return b.DSN, b.Validate()
			}},
		{name: "binlog password", key: "source.binlog", base: strings.Replace(redisBase, "  binlog: {addr: \"127.0.0.1:3307\"}\n", "", 1), pair: "password", fileKey: "password_file",
			value: "binlog-file-pw", secret: "binlog-file-pw",
			decoded: func(c *config.Config) (string, error) {
				b, _ := config.Block[binlog.Config](c, "source.binlog")
				return b.Password, b.Validate()
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := write(strings.ReplaceAll(tc.name, " ", "_"), tc.value)
			block := func(kv string) string {
				if tc.key == "source.binlog" {
					return strings.Replace(tc.base, "source:\n", "source:\n  binlog: {addr: \"127.0.0.1:3307\", "+kv+"}\n", 1)
				}
				return tc.base + tc.key + ": {" + kv + "}\n"
			}
			c, err := config.Parse([]byte(block(tc.fileKey+": "+f)), env(nil), registry())
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.decoded(c)
			if got != tc.value {
				t.Fatalf("%s = %q, want the file's %q", tc.pair, got, tc.value)
			}
			if err != nil {
				t.Fatalf("validating the decoded block again: %v", err)
			}
			if out := scrubberFor(c).String("failed: " + tc.secret); strings.Contains(out, tc.secret) {
				t.Fatalf("not masked: %s", out)
			}
			for _, bad := range []struct{ kv, want string }{
				{tc.pair + ": \"" + strings.ReplaceAll(tc.value, "\"", "") + "\", " + tc.fileKey + ": " + f,
					tc.key + "." + tc.fileKey + ": set " + tc.pair + " or " + tc.fileKey + ", not both"},
				{tc.fileKey + ": " + f + ".missing", tc.key + "." + tc.fileKey + ": open "},
			} {
				_, err := config.Parse([]byte(block(bad.kv)), env(nil), registry())
				if err == nil || !strings.Contains(err.Error(), bad.want) {
					t.Errorf("%s: error %v, want %q", bad.kv, err, bad.want)
				}
				if err != nil && strings.Contains(err.Error(), tc.secret) {
					t.Errorf("error shows the secret: %v", err)
				}
			}
		})
	}
}
