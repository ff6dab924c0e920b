package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/rowsync/rowsync/internal/benchdata"

	goredis "github.com/redis/go-redis/v9"
)

// canalChange is one message of a canal workload with the row id it
// changes (the Kafka message key, so one row stays in one partition).
type canalChange struct {
	id    int
	value []byte
}

// canalWorkload returns n single-row messages: 75% inserts, 20% updates of
// inserted rows, 5% deletes, in an order a MySQL binlog could have
// produced, and the number of rows left.
func canalWorkload(n int) ([]canalChange, int) {
	ins := n * 75 / 100
	del := n * 5 / 100
	upd := n - ins - del
	out := make([]canalChange, 0, n)
	for i := range ins {
		out = append(out, canalChange{i, benchdata.CanalItemsMessage("INSERT", i, len(out))})
	}
	for i := range upd {
		id := i % ins
		out = append(out, canalChange{id, benchdata.CanalItemsMessage("UPDATE", id, len(out))})
	}
	for i := range del {
		id := ins - 1 - i
		out = append(out, canalChange{id, benchdata.CanalItemsMessage("DELETE", id, len(out))})
	}
	return out, ins - del
}

// naiveCanal applies one canal-json message the way a hand-written
// consumer would: json.Unmarshal into a map, one HSET (or DEL) per row,
// each its own round trip.
func naiveCanal(ctx context.Context, rc *goredis.Client, value []byte) error {
	var m map[string]any
	if err := json.Unmarshal(value, &m); err != nil {
		return err
	}
	data, _ := m["data"].([]any)
	for _, d := range data {
		row, _ := d.(map[string]any)
		key := fmt.Sprintf("%v_%v_%v", m["database"], m["table"], row["id"])
		if m["type"] == "DELETE" {
			if err := rc.Del(ctx, key).Err(); err != nil {
				return err
			}
			continue
		}
		fields := make([]any, 0, 2*len(row))
		for k, v := range row {
			if v != nil {
				fields = append(fields, k, fmt.Sprint(v))
			}
		}
		if err := rc.HSet(ctx, key, fields...).Err(); err != nil {
			return err
		}
	}
	return nil
}

const canalTableYAML = "    redis_hash:\n      key: \"{db}_{table}_{pk}\"\n"

func queueConfig(name, source string, workDir string) string {
	return drainConfig(name, source, workDir, fmt.Sprintf("redis:\n  addr: 127.0.0.1:6379\n  db: %d\n", sinkDB), canalTableYAML)
}

// drainConfig is a config reading source into the top-level sink block
// for rs_bench.items, whose table block is table.
func drainConfig(name, source, workDir, sink, table string) string {
	return fmt.Sprintf(`name: %[1]s
source:
%[2]s
%[4]sdeadletter:
  file: %[3]s/%[1]s.deadletter.jsonl
admin:
  addr: ADMIN
log:
  level: warn
tables:
  - match: rs_bench.items
%[5]s`, name, source, workDir, sink, table)
}
