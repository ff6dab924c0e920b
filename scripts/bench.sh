#!/usr/bin/env bash
# bench.sh — rowsync's benchmark suite (make bench). It builds the rowsync
# binary and the bench driver (./bench), makes sure the services are up,
# then runs every scenario and prints one table (benchmark, figure,
# baseline, ratio, target, pass/fail), also written to bench/results.md:
#
#   ceiling     redis-benchmark SET -P 1 / -P 64 and HSET -P 64
#   binlog      drain of 200k binlog row changes → Redis hashes, vs go-mysql syncer + DEL/HSET per row
#   kafka       drain of 300k canal-json messages (6 partitions, kfake) → Redis hashes, vs kafka-go Reader + HSET per msg
#   refetch     the same changes drained plainly and with refetch: true, binlog and Kafka,
#               100k changes of the drain's mix and 100k of 100 hot rows; on the binlog path
#               also from a replica (a MariaDB on 3308 replicating rs_bench, started and stopped)
#   rabbitmq    drain of 100k canal-json messages → Redis hashes, vs per-message ack + HSET
#   invalidate  drain of 200k binlog updates → Cache-Aside UNLINK, vs syncer + DEL per row
#   mongo       drain of 20k canal-json messages (kfake) → MongoDB documents on the FerretDB
#               stand-in (scripts/ferretdb.sh, port 27049), vs kafka-go Reader + ReplaceOne per row
#   backfill    rowsync backfill of a 1M-row table → Redis hashes while the binlog stream carries
#               1,000 changes/s, vs rowsync snapshot of the same table with the stream stopped
#   latency     COMMIT → key gone at 1k updates/s for 20s (default max_wait and max_wait: 1ms)
#   memory      RSS idle and with a 1M-message Kafka backlog behind a paused Redis
#   micro       go test -bench of projector/redis, invalidator, canal-json decoder
#
# Environment: BENCH_ONLY=kafka,latency (subset), BENCH_SCALE=0.1 (smaller
# N for a smoke run), BENCH_OUT (default bench/results.md; empty: none),
# BENCH_ARGS (more flags for the driver, e.g. "-v -lat-duration 10s";
# "-cpuprofile DIR" writes a CPU profile of each drain, taken through the
# admin port's pprof). rowsync gets this environment minus GOGC, GOMEMLIMIT,
# GODEBUG and GOMAXPROCS (an experiment's GOGC in the shell would change what
# is measured): set them for rowsync with BENCH_ARGS="-rowsync-env GOGC=400"
# (repeatable; default GOMAXPROCS=2); the results' header says which were set.
# Each scenario holds the lock "bench" (internal/testlock),
# so two runs side by side wait for each other instead of flushing each
# other's DBs.
# Uses Redis DBs 11 and 12 (flushed), schema rs_bench on 127.0.0.1:3307
# (dropped), RabbitMQ queues rs-bench-* (deleted), and leaves nothing running.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TMP="$(mktemp -d /tmp/rowsync-bench.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT

ROWSYNC_SKIP_FERRETDB=1 bash scripts/services.sh
echo "bench: building rowsync and the bench driver" >&2
go build -o "$TMP/rowsync" ./cmd/rowsync
go build -o "$TMP/bench" ./bench

args=(-rowsync "$TMP/rowsync" -work "$TMP" -root "$ROOT" -out "${BENCH_OUT-bench/results.md}")
[[ -n "${BENCH_ONLY:-}" ]] && args+=(-only "$BENCH_ONLY")
[[ -n "${BENCH_SCALE:-}" ]] && args+=(-scale "$BENCH_SCALE")
# shellcheck disable=SC2206
[[ -n "${BENCH_ARGS:-}" ]] && args+=($BENCH_ARGS)
"$TMP/bench" "${args[@]}"
