package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/internal/changegen"
	"github.com/rowsync/rowsync/internal/tcpproxy"
)

const schemaDBAddr = "127.0.0.1:3306"

// typelessSet generates n changes over the changegen tables in a database of
// the test's own on the schema MariaDB (created, dropped at the end) and
// encodes them as enc, without the DDL messages of the stream's start (as
// after a restart): every value is typed by the schema source. It returns
// the set, the per-partition messages and the database name.
func typelessSet(t *testing.T, s *setup, seed uint64, n int, enc string) (*changegen.Set, [][]changegen.Message, string) {
	t.Helper()
	dbName := strings.NewReplacer("-", "_").Replace(s.name)
	mdb, err := sql.Open("mysql", "root@tcp("+schemaDBAddr+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer mdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := mdb.ExecContext(ctx, "CREATE DATABASE "+dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("mysql", "root@tcp("+schemaDBAddr+")/"); err == nil {
			db.Exec("DROP DATABASE IF EXISTS " + dbName)
			db.Close()
		}
	})
	cfg := genConfig(seed, n)
	cfg.DB = dbName
	set := changegen.Generate(cfg)
	for _, tb := range set.Tables {
		if _, err := mdb.ExecContext(ctx, tb.CreateSQL()); err != nil {
			t.Fatal(err)
		}
	}
	parts, err := set.Stream(enc)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(set.Preamble(enc)); n > 0 {
		for p := range parts {
			parts[p] = parts[p][n:]
		}
	}
	return set, parts, dbName
}

// schemaYAML is the schema: block and the common blocks with the tables
// mapped from dbName.
func (s *setup) schemaYAML(db int, dsn, dbName string) string {
	return "schema:\n  dsn: '" + dsn + "'\n" +
		strings.ReplaceAll(s.commonYAML(db), "'shop\\.", "'"+dbName+"\\.")
}

// TestKafkaTypelessWithSchemaSource: the same change sequence as the other
// formats, delivered as Debezium without schemas and as Maxwell without its
// table-create DDL messages (as after a restart), typed by a schema source
// (schema: {dsn}) reading the tables' definitions from MariaDB, ends in the
// exact Redis hashes the typed formats and the binlog path give. JSON lines
// are left out: their NULL and "" are the same text in text columns.
func TestKafkaTypelessWithSchemaSource(t *testing.T) {
	for i, enc := range []string{changegen.EncDebeziumNoSchema, changegen.EncMaxwell} {
		t.Run(enc, func(t *testing.T) {
			rdb := redisDB(t, kafkaDB)
			s := newSetup(t, "ks-"+enc)
			set, parts, dbName := typelessSet(t, s, uint64(300+i), size(20000, 100000), enc)
			k := startKafka(t, s.name, partitions)
			k.produce(t, parts)
			yaml := s.kafkaHeadYAML(k, changegen.Decoder(enc)) + s.schemaYAML(kafkaDB, "root@tcp("+schemaDBAddr+")/", dbName)
			p := rowsync(t, writeFile(t, s.dir, "rowsync.yaml", yaml), s.log)
			start := time.Now()
			waitState(t, rdb, s.prefix, set.Expected(s.prefix), 4*time.Minute, p)
			t.Logf("%d changes: end state after %v", len(set.Changes), time.Since(start).Round(time.Millisecond))
			k.waitCommittedEnd(t, s.name, counts(parts))
			p.stop(t)
			if dl := readDeadLetters(t, s.dl); len(dl) > 0 {
				t.Errorf("%d dead letters, first: %+v", len(dl), dl[0])
			}
		})
	}
}

// TestSchemaSourceOutage: the schema database is unreachable (a proxy in
// front of MariaDB refuses every connection) when rowsync starts on a
// backlog of schemaless Debezium messages that all need it. Via Kafka and
// via RabbitMQ, nothing is written, dead-lettered or acked while it is
// down; once it answers, every message lands exactly (the same end state
// as the typed paths), the broker's backlog is consumed, and the outage
// was logged once.
func TestSchemaSourceOutage(t *testing.T) {
	for i, transport := range []string{"kafka", "rabbitmq"} {
		t.Run(transport, func(t *testing.T) {
			db := kafkaDB
			if transport == "rabbitmq" {
				db = rabbitDB
			}
			rdb := redisDB(t, db)
			s := newSetup(t, "so-"+transport)
			enc := changegen.EncDebeziumNoSchema
			set, parts, dbName := typelessSet(t, s, uint64(400+i), size(2000, 20000), enc)
			px := tcpproxy.Start(t, schemaDBAddr)
			px.Down()
			tail := s.schemaYAML(db, "root@tcp("+px.Addr()+")/?timeout=5s", dbName)
			var (
				k    *kafkaEnv
				r    *rabbitEnv
				yaml string
			)
			if transport == "kafka" {
				k = startKafka(t, s.name, partitions)
				k.produce(t, parts)
				yaml = s.kafkaHeadYAML(k, changegen.Decoder(enc)) + tail
			} else {
				r = startRabbit(t, s.name)
				r.publish(t, flatten(parts))
				yaml = s.rabbitHeadYAML(s.name, changegen.Decoder(enc)) + tail
			}
			p := rowsync(t, writeFile(t, s.dir, "rowsync.yaml", yaml), s.log)

			// the decoders keep asking the schema source, which refuses
			waitFor(t, "schema source retried", 3*time.Minute, func() (bool, string) {
				return px.Refused() >= 5, fmt.Sprintf("%d refused connections", px.Refused())
			})
			keys, err := rdb.Keys(context.Background(), s.prefix+"*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) > 0 {
				t.Errorf("%d keys written while no message could be typed", len(keys))
			}
			if dl := readDeadLetters(t, s.dl); len(dl) > 0 {
				t.Fatalf("%d dead letters during the outage, first: %+v", len(dl), dl[0])
			}
			px.Up()
			start := time.Now()
			waitState(t, rdb, s.prefix, set.Expected(s.prefix), 4*time.Minute, p)
			t.Logf("%d changes: end state %v after the schema source came back", len(set.Changes), time.Since(start).Round(time.Millisecond))
			if k != nil {
				k.waitCommittedEnd(t, s.name, counts(parts))
			} else {
				r.waitEmpty(t)
			}
			p.stop(t)
			if dl := readDeadLetters(t, s.dl); len(dl) > 0 {
				t.Errorf("%d dead letters, first: %+v", len(dl), dl[0])
			}
			logText, err := os.ReadFile(s.log)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(logText), "schema source unavailable"); n != 1 {
				t.Errorf("the outage was logged %d times, want once", n)
			}
			if n := strings.Count(string(logText), "schema source answers again"); n != 1 {
				t.Errorf("the recovery was logged %d times, want once", n)
			}
		})
	}
}
