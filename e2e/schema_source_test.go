package e2e

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/internal/changegen"
)

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
			dbName := strings.NewReplacer("-", "_").Replace(s.name)
			mdb, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
			if err != nil {
				t.Fatal(err)
			}
			defer mdb.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if _, err := mdb.ExecContext(ctx, "CREATE DATABASE "+dbName); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { mdb.Exec("DROP DATABASE IF EXISTS " + dbName) })

			cfg := genConfig(uint64(300+i), size(20000, 100000))
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
					parts[p] = parts[p][n:] // no DDL messages: the schema source types every value
				}
			}
			k := startKafka(t, s.name, partitions)
			k.produce(t, parts)
			yaml := s.kafkaHeadYAML(k, changegen.Decoder(enc)) +
				"schema:\n  dsn: 'root@tcp(127.0.0.1:3306)/'\n" +
				strings.ReplaceAll(s.commonYAML(kafkaDB), "'shop\\.", "'"+dbName+"\\.")
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
