#!/usr/bin/env bash
# demo.sh — rowsync end to end on this machine: binlog-enabled MariaDB
# (127.0.0.1:3307) → rowsync → Redis hashes (DB 15), MongoDB documents
# (FerretDB on 127.0.0.1:27017, database rowsync_demo) and Cache-Aside key
# invalidation. It creates schema `shop`, starts rowsync, writes rows,
# prints the resulting hashes, and stops rowsync. Safe to run repeatedly.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STATE="${ROWSYNC_STATE:-/tmp/rowsync-state}"
WORK="$STATE/demo"
REDIS_DB="${DEMO_REDIS_DB:-15}"
mkdir -p "$WORK"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "services"
bash scripts/services.sh
[[ -x bin/rowsync ]] || go build -o bin/rowsync ./cmd/rowsync

SQL() { mysql --no-defaults --default-character-set=utf8mb4 -h127.0.0.1 -P3307 -uroot "$@"; }
R() { redis-cli -n "$REDIS_DB" "$@"; }

say "schema shop (MariaDB 127.0.0.1:3307, binlog_format=ROW)"
SQL -e "DROP DATABASE IF EXISTS shop; CREATE DATABASE shop CHARACTER SET utf8mb4;
CREATE TABLE shop.users (id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(64), email VARCHAR(128),
  balance DECIMAL(12,2), created_at DATETIME(3), avatar BLOB, prefs JSON, status ENUM('active','banned'));
CREATE TABLE shop.order_items (order_id BIGINT, line INT, sku VARCHAR(32), qty INT, PRIMARY KEY (order_id, line));"
R FLUSHDB >/dev/null
go run ./scripts/showmongo -db rowsync_demo -drop

cat >"$WORK/rowsync.yaml" <<YAML
name: demo
source:
  binlog:
    addr: 127.0.0.1:3307
    user: root
    flavor: mariadb
    server_id: 4242
    include: ["shop\\\\..*"]
checkpoint:
  redis: {}
redis:
  addr: 127.0.0.1:6379
  db: $REDIS_DB
mongo:
  uri: mongodb://127.0.0.1:27017
  # FerretDB (the MongoDB stand-in here) lacks Decimal128 and large bulks;
  # against a real MongoDB leave both at their defaults.
  decimal: string
  bulk_size: 40
deadletter:
  file: $WORK/deadletter.jsonl
admin:
  addr: 127.0.0.1:9187
tables:
  - match: shop.users
    redis_hash:
      key: "{db}_{table}_{pk}"
      exclude: [avatar]
    mongo: {database: rowsync_demo, collection: users}
    invalidate:
      keys: ["user:{id}", {key: "user:email:{email|lower}", when_changed: [email]}]
  - match: shop.order_items
    redis_hash:
      key: "order:{order_id}:item:{line}"
YAML

say "rowsync check"
bin/rowsync check -c "$WORK/rowsync.yaml"

say "rowsync run (log: $WORK/rowsync.log)"
bin/rowsync run -c "$WORK/rowsync.yaml" >"$WORK/rowsync.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs 127.0.0.1:9187/readyz >/dev/null 2>&1 && break; sleep 0.1; done

say "a cached entry the app stored (Cache-Aside) before the change"
R SET user:1 '{"name":"stale"}' >/dev/null
R SET user:email:zoe@example.com 'stale' >/dev/null
R MGET user:1 user:email:zoe@example.com

say "writes to MySQL"
SQL -v -e "INSERT INTO shop.users VALUES
  (1,'Zoë 🚀','Zoe@Example.com',1234.50,'2026-01-02 03:04:05.123',x'00ff10','{\"lang\":\"de\"}','active'),
  (2,'Bob','bob@example.com',-3.10,'2026-02-03 04:05:06.000',NULL,NULL,'active');
UPDATE shop.users SET email='zoe@new.example', balance=balance+1 WHERE id=1;
UPDATE shop.users SET name=NULL WHERE id=2;
INSERT INTO shop.order_items VALUES (100,1,'A-1',2),(100,2,'B-7',1);
DELETE FROM shop.order_items WHERE order_id=100 AND line=2;"

for _ in $(seq 1 100); do [[ "$(R EXISTS order:100:item:1)" == 1 ]] && break; sleep 0.1; done
sleep 0.5

say "Redis hashes now (DB $REDIS_DB)"
for k in $(R --scan --pattern 'shop_*' | sort) $(R --scan --pattern 'order:*' | sort); do
	echo "-- $k"
	R HGETALL "$k" | paste - -
done
say "MongoDB documents (rowsync_demo.users)"
go run ./scripts/showmongo -db rowsync_demo -coll users

say "cache keys invalidated (empty = deleted)"
R MGET user:1 user:email:zoe@example.com

say "metrics"
curl -fs 127.0.0.1:9187/metrics | grep -E '^rowsync_(events_total|source_lag_seconds)' || true

kill -TERM $PID; wait $PID || true
trap - EXIT
say "rowsync stopped cleanly; log tail:"
tail -n 3 "$WORK/rowsync.log"
