package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"
)

// canalMsg renders one canal flat message (canal.mq.flatMessage=true) of
// a single 10-column row of rs_bench.items, as canal 1.1.x writes it.
func canalMsg(op string, id, seq int) []byte {
	status, old := "new", "null"
	if op == "UPDATE" {
		status = "paid"
		old = `[{"status":"new","qty":"` + strconv.Itoa(id%50) + `"}]`
	}
	return fmt.Appendf(nil, `{"data":[{"id":"%d","user_id":"%d","sku":"SKU-%d-XL","qty":"%d","price":"%d.%02d",`+
		`"discount":"0.%02d","status":"%s","note":"gift wrap, deliver after 6pm #%d","created_at":"2024-05-01 10:20:30.123",`+
		`"updated_at":"2024-05-01 10:21:00"}],"database":"rs_bench","es":1714558860000,"id":%d,"isDdl":false,`+
		`"mysqlType":{"id":"bigint(20)","user_id":"int(11)","sku":"varchar(32)","qty":"smallint(6)","price":"decimal(12,2)",`+
		`"discount":"double","status":"varchar(16)","note":"varchar(255)","created_at":"datetime(3)","updated_at":"timestamp"},`+
		`"old":%s,"pkNames":["id"],"sql":"","sqlType":{"id":-5,"user_id":4,"sku":12,"qty":5,"price":3,"discount":8,"status":12,`+
		`"note":12,"created_at":93,"updated_at":93},"table":"items","ts":1714558860123,"type":"%s"}`,
		id, 80000+id%1000, id%9973, id%50+btoi(op == "UPDATE"), id%10000, id%100, id%90, status, id, seq, old, op)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

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
		out = append(out, canalChange{i, canalMsg("INSERT", i, len(out))})
	}
	for i := range upd {
		id := i % ins
		out = append(out, canalChange{id, canalMsg("UPDATE", id, len(out))})
	}
	for i := range del {
		id := ins - 1 - i
		out = append(out, canalChange{id, canalMsg("DELETE", id, len(out))})
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
