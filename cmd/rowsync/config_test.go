package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/checkpoint"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/internal/redisconn"
	"github.com/rowsync/rowsync/invalidator"
	"github.com/rowsync/rowsync/source/binlog"
)

// The config file as the registry's components decode it.

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestValidFileLoads(t *testing.T) {
	raw, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(raw, env(map[string]string{"REDIS_DB": "3"}), registry())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := config.Block[binlog.Config](c, "source.binlog")
	r, _ := config.Block[redisconn.Config](c, "redis")
	if c.Name != "demo" || c.Source != binlog.Name || b.Addr != "127.0.0.1:3307" || r.DB != 3 {
		t.Fatalf("decoded %+v / %+v / %+v", c, b, r)
	}
	if cp, _ := config.Block[checkpoint.Config](c, "checkpoint"); cp.Redis == nil || !cp.UsesRedis() {
		t.Fatal("checkpoint.redis: {} must select the Redis store")
	}
	inv := c.Tables[0].Sinks[invalidator.RuleKey].(invalidator.TableConfig)
	if len(inv.Keys) != 2 || inv.Keys[1].WhenChanged[0] != "email" || inv.Delay != 500*time.Millisecond {
		t.Fatalf("invalidate = %+v", inv)
	}
	if pk := c.Router().KeyColumns("shop", "users"); pk != nil {
		t.Fatalf("pk = %v, want nil (not configured)", pk)
	}
}

func TestErrorsNameTheirKey(t *testing.T) {
	base := `name: demo
source:
  binlog: {addr: "127.0.0.1:3307", flavor: mariadb}
redis: {addr: "127.0.0.1:6379"}
tables:
  - match: shop.users
    redis_hash: {key: "{db}_{table}_{pk}"}
`
	cases := []struct {
		name string
		yaml string
		vars map[string]string
		want []string
	}{
		{"unknown top-level key", base + "redsi: {}\n", nil, []string{"field redsi not found"}},
		{"unknown nested key", strings.Replace(base, "flavor: mariadb", "flavour: mariadb", 1), nil, []string{"field flavour not found"}},
		{"missing name", strings.Replace(base, "name: demo", "", 1), nil, []string{"name: required"}},
		{"bad name", strings.Replace(base, "name: demo", "name: 'a b'", 1), nil, []string{"name: \"a b\""}},
		{"no source", strings.Replace(base, "  binlog: {addr: \"127.0.0.1:3307\", flavor: mariadb}\n", "", 1), nil, []string{"source: required"}},
		{"two sources", strings.Replace(base, "source:\n", "source:\n  rabbitmq: {url: \"amqp://x\", queue: q, format: maxwell}\n", 1), nil, []string{"source: only one"}},
		{"bad flavor", strings.Replace(base, "flavor: mariadb", "flavor: oracle", 1), nil, []string{"source.binlog.flavor: unknown"}},
		{"bad include regex", strings.Replace(base, "flavor: mariadb", "flavor: mariadb, include: [\"shop(\"]", 1), nil, []string{"source.binlog.include[0]: bad regex"}},
		{"bad match regex", strings.Replace(base, "match: shop.users", "match: \"shop.[\"", 1), nil, []string{"tables[0].match: bad regex"}},
		{"bad template", strings.Replace(base, "{db}_{table}_{pk}", "{db}_{table", 1), nil, []string{"tables[0].redis_hash.key:"}},
		{"unknown filter", strings.Replace(base, "{db}_{table}_{pk}", "{email|lowr}", 1), nil, []string{"tables[0].redis_hash.key:", "unknown filter \"lowr\""}},
		{"no tables", strings.Split(base, "tables:")[0], nil, []string{"tables: required"}},
		{"table without sink", base + "  - match: shop.orders\n", nil, []string{"tables[1]: no sink"}},
		{"redis sink without redis", strings.Replace(base, "redis: {addr: \"127.0.0.1:6379\"}\n", "checkpoint: {file: /tmp/x}\n", 1), nil, []string{"tables[0].redis_hash: needs the top-level redis"}},
		{"refetch without mysql", base + "    refetch: true\n", nil, []string{"tables[0].refetch: needs the top-level mysql"}},
		{"unset variable", strings.Replace(base, "127.0.0.1:6379", "${REDIS_ADDR}", 1), nil, []string{"redis.addr: environment variable REDIS_ADDR is not set"}},
		{"variable default", strings.Replace(base, "127.0.0.1:6379", "${REDIS_ADDR:-127.0.0.1:6380}", 1), nil, nil},
		{"kafka bad format", strings.Replace(base, "  binlog: {addr: \"127.0.0.1:3307\", flavor: mariadb}", "  kafka: {brokers: [\"k:9092\"], topics: [t], format: canal-xml}", 1), nil, []string{"source.kafka.format: unknown format \"canal-xml\""}},
		{"kafka missing format", strings.Replace(base, "  binlog: {addr: \"127.0.0.1:3307\", flavor: mariadb}", "  kafka: {brokers: [\"k:9092\"], topics: [t]}", 1), nil, []string{"source.kafka.format: required"}},
		{"kafka negative max_rows", strings.Replace(base, "  binlog: {addr: \"127.0.0.1:3307\", flavor: mariadb}", "  kafka: {brokers: [\"k:9092\"], topics: [t], format: maxwell, max_rows: -1, max_message_bytes: 1048576}", 1), nil, []string{"source.kafka.max_rows: must not be negative"}},
		{"rabbitmq limits", strings.Replace(base, "  binlog: {addr: \"127.0.0.1:3307\", flavor: mariadb}", "  rabbitmq: {url: \"amqp://127.0.0.1/\", queue: q, format: jsonl, max_rows: 100, max_message_bytes: 1048576}", 1), nil, nil},
		{"kafka time_zone and debezium modes", strings.Replace(base, "  binlog: {addr: \"127.0.0.1:3307\", flavor: mariadb}", "  kafka: {brokers: [\"k:9092\"], topics: [t], format: debezium, time_zone: \"+08:00\", debezium: {decimal_handling_mode: string, time_precision_mode: connect, binary_handling_mode: hex}}", 1) + "schema: {dsn: \"root@tcp(127.0.0.1:3306)/\"}\n", nil, nil},
		{"kafka bad time_zone and mode", strings.Replace(base, "  binlog: {addr: \"127.0.0.1:3307\", flavor: mariadb}", "  kafka: {brokers: [\"k:9092\"], topics: [t], format: debezium, time_zone: Mars/Base, debezium: {decimal_handling_mode: exact}}", 1), nil,
			[]string{"source.kafka.time_zone: unknown zone \"Mars/Base\"", "source.kafka.debezium.decimal_handling_mode: unknown \"exact\""}},
		{"schema bad dsn", strings.Replace(base, "  binlog: {addr: \"127.0.0.1:3307\", flavor: mariadb}", "  kafka: {brokers: [\"k:9092\"], topics: [t], format: maxwell}", 1) + "schema: {dsn: \"no-at-sign\"}\n", nil, []string{"schema.dsn: "}},
		{"schema with binlog", base + "schema: {dsn: \"root@tcp(127.0.0.1:3306)/\"}\n", nil, []string{"schema: a binlog source reads column types itself"}},
		{"deadletter problems", base + "deadletter: {file: x.jsonl, kafka: {topic: dl}, excluded_columns: hide, max_bytes: -1}\n", nil,
			[]string{"deadletter.kafka.brokers: required", "deadletter: set file or kafka, not both", `deadletter.excluded_columns: unknown "hide"`, "deadletter.max_bytes: must not be negative"}},
		{"checkpoint both", base + "checkpoint: {redis: {}, file: /tmp/x}\n", nil, []string{"checkpoint: set redis or file"}},
		{"bad log level", base + "log: {level: loud}\n", nil, []string{"log.level: unknown \"loud\""}},
		{"negative invalidate delay", base + "    invalidate: {keys: [\"user:{id}\"], delay: -1s}\n", nil, []string{"tables[0].invalidate.delay"}},
		{"unknown table key", base + "    redis: {}\n", nil, []string{"tables[0]: line 8: field redis not found (want match, pk, refetch or a sink: invalidate, mongo, redis_hash)"}},
		{"unknown source", strings.Replace(base, "  binlog:", "  pulsar:", 1), nil, []string{"field pulsar not found in source (want one of binlog, kafka, rabbitmq)"}},
		{"mongo table without mongo", base + "    mongo: {database: d, collection: users}\n", nil, []string{"tables[0].mongo: needs the top-level mongo: block"}},
		{"invalidate without a redis", strings.Replace(base, "redis_hash: {key: \"{db}_{table}_{pk}\"}", "invalidate: {keys: [\"u:{id}\"]}", 1) + "checkpoint: {file: /tmp/x}\n", nil, nil},
		{"lease without redis", strings.Replace(base, "redis: {addr: \"127.0.0.1:6379\"}\n", "checkpoint: {file: /tmp/x}\n", 1) + "lease: {}\n", nil, []string{"lease: needs the top-level redis: block"}},
		{"lease with kafka", strings.Replace(base, "  binlog: {addr: \"127.0.0.1:3307\", flavor: mariadb}", "  kafka: {brokers: [\"k:9092\"], topics: [t], format: maxwell}", 1) + "lease: {}\n", nil, []string{"lease: only for a binlog source"}},
		{"checkpoint default needs redis", strings.Replace(strings.Replace(base, "redis: {addr: \"127.0.0.1:6379\"}\n", "", 1), "redis_hash: {key: \"{db}_{table}_{pk}\"}", "invalidate: {keys: [\"u:{id}\"]}", 1) + "invalidate_redis: {}\n", nil, []string{"checkpoint: the default checkpoint store is Redis"}},
		{"bad redis block", base + "invalidate_redis: {db: -1}\n", nil, []string{"invalidate_redis.db: -1 out of range"}},
		{"several problems at once", strings.Replace(strings.Replace(base, "name: demo", "", 1), "flavor: mariadb", "flavor: oracle", 1), nil,
			[]string{"name: required", "source.binlog.flavor: unknown"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.yaml), env(tc.vars), registry())
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSchemaDSN(t *testing.T) {
	kafka := "name: demo\nsource:\n  kafka: {brokers: [\"k:9092\"], topics: [t], format: maxwell}\nredis: {}\ntables:\n  - match: shop.users\n    redis_hash: {}\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"none", kafka, ""},
		{"mysql", kafka + "mysql: {dsn: \"r@tcp(m:3306)/\"}\n", "r@tcp(m:3306)/"},
		{"schema wins", kafka + "mysql: {dsn: \"r@tcp(m:3306)/\"}\nschema: {dsn: \"s@tcp(s:3306)/\"}\n", "s@tcp(s:3306)/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tc.yaml), env(nil), registry())
			if err != nil {
				t.Fatal(err)
			}
			if got := schemaDSN(c); got != tc.want {
				t.Errorf("schemaDSN = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestScrubberMasksEveryConfiguredSecret: each component block names its
// own secrets, and the scrubber masks them all.
func TestScrubberMasksEveryConfiguredSecret(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("cache-file-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse([]byte(`name: s
source:
  binlog: {addr: "127.0.0.1:3307", password: binlog-pw}
redis: {password: redis-pw}
invalidate_redis: {password_file: `+pwFile+`}
mongo: {uri: "mongodb://app:mongo-pw@127.0.0.1:27017"}
mysql: {dsn: "root:mysql-pw@tcp(127.0.0.1:3306)/"}
tables:
  - {match: shop.users, redis_hash: {}, mongo: {}, invalidate: {keys: ["u:{id}"]}}
`), env(nil), registry())
	if err != nil {
		t.Fatal(err)
	}
	got := scrubberFor(c).String("binlog-pw redis-pw cache-file-pw mongo-pw mysql-pw")
	if strings.Count(got, "xxxxx") != 5 {
		t.Fatalf("scrubbed %q", got)
	}
}

// TestRabbitConsumersKeepOrder: several consumers of one queue are
// refused, naming source.rabbitmq.consumers, unless no row's changes can
// be applied out of order: a versioned format and version_field on every
// row-writing sink, or unordered: true.
func TestRabbitConsumersKeepOrder(t *testing.T) {
	file := func(format, consumers, tables string) string {
		return `name: demo
source:
  rabbitmq: {url: "amqp://127.0.0.1/", queue: q, format: ` + format + `, ` + consumers + `}
redis: {addr: "127.0.0.1:6379"}
mongo: {uri: "mongodb://127.0.0.1:27017/d"}
tables:
` + tables
	}
	guarded := "  - match: shop.users\n    redis_hash: {version_field: _v}\n    mongo: {database: d, collection: users, version_field: _v}\n"
	const key = "source.rabbitmq.consumers: 4 consumers of one queue can apply two changes of a row in the opposite order"
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{"one consumer, no guard", file("canal-json", "consumers: 1", "  - match: shop.users\n    redis_hash: {}\n"), nil},
		{"guarded", file("maxwell", "consumers: 4", guarded), nil},
		{"invalidate needs no guard", file("debezium", "consumers: 4", "  - match: shop.users\n    invalidate: {keys: [\"u:{id}\"]}\n"), nil},
		{"unordered", file("canal-json", "consumers: 4, unordered: true", "  - match: shop.users\n    redis_hash: {}\n"), nil},
		{"canal-json has no versions", file("canal-json", "consumers: 4", guarded),
			[]string{key + ", and format canal-json carries no binlog position", "unordered: true"}},
		{"redis_hash without version_field", file("maxwell", "consumers: 4", guarded+"  - match: shop.orders\n    redis_hash: {}\n"),
			[]string{key + ": tables[1].redis_hash needs version_field"}},
		{"mongo without version_field", file("canal-protobuf", "consumers: 4", "  - match: shop.users\n    redis_hash: {version_field: _v}\n    mongo: {database: d, collection: users}\n"),
			[]string{key + ": tables[0].mongo needs version_field"}},
		{"with single_active_consumer", file("maxwell", "consumers: 4, declare: true, single_active_consumer: true", guarded),
			[]string{"source.rabbitmq.consumers: a single-active-consumer queue serves one consumer at a time"}},
		{"too many", file("maxwell", "consumers: 65", guarded), []string{"source.rabbitmq.consumers: must be between 0 and 64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.yaml), env(nil), registry())
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
