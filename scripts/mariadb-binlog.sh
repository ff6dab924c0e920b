#!/usr/bin/env bash
# mariadb-binlog.sh starts rowsync's own binlog-enabled MariaDB for tests and
# the demo: 127.0.0.1:3307, its own data dir, socket and pid file, ROW binlog
# with full images and full row metadata (column names in the table map),
# server_id=1, root with an empty password over TCP. The machine's MariaDB on
# 3306 is never touched.
#
#   bash scripts/mariadb-binlog.sh         start (or reuse what answers on the port)
#   bash scripts/mariadb-binlog.sh stop    stop it
#   bash scripts/mariadb-binlog.sh status  exit 0 if it answers
#
# Environment: ROWSYNC_STATE (default /tmp/rowsync-state),
# ROWSYNC_MARIADB_PORT (default 3307), ROWSYNC_MARIADB_DIR (default
# $ROWSYNC_STATE/mariadb<port>), ROWSYNC_MARIADB_WAIT seconds (default 120),
# ROWSYNC_MARIADB_SERVER_ID (default 1; a second server on another port, e.g.
# the replica `make bench` starts on 3308 for refetch from a replica, needs
# its own).
set -euo pipefail

PORT="${ROWSYNC_MARIADB_PORT:-3307}"
STATE="${ROWSYNC_STATE:-/tmp/rowsync-state}"
DIR="${ROWSYNC_MARIADB_DIR:-$STATE/mariadb$PORT}"
DATA="$DIR/data"
SOCK="$DIR/mariadb.sock"
PID="$DIR/mariadb.pid"
LOG="$DIR/mariadb.err"
WAIT="${ROWSYNC_MARIADB_WAIT:-120}"
SERVER_ID="${ROWSYNC_MARIADB_SERVER_ID:-1}"
MARIADBD="${MARIADBD:-/usr/sbin/mariadbd}"

log() { echo "mariadb-binlog: $*" >&2; }

client() {
	local c
	for c in mariadb mysql; do
		if command -v "$c" >/dev/null 2>&1; then
			"$c" --no-defaults "$@"
			return
		fi
	done
	log "no mariadb/mysql client found"
	return 127
}

admin() {
	local c
	for c in mariadb-admin mysqladmin; do
		if command -v "$c" >/dev/null 2>&1; then
			"$c" --no-defaults "$@"
			return
		fi
	done
	log "no mariadb-admin/mysqladmin found"
	return 127
}

# answers: something accepts root logins over TCP on the port.
answers() {
	admin --protocol=TCP -h127.0.0.1 -P"$PORT" -uroot --connect-timeout=2 ping >/dev/null 2>&1
}

stop() {
	if [[ -f "$PID" ]] && kill -0 "$(cat "$PID")" 2>/dev/null; then
		local p
		p="$(cat "$PID")"
		log "stopping mariadbd pid $p"
		kill "$p"
		for _ in $(seq 1 "$WAIT"); do
			kill -0 "$p" 2>/dev/null || { log "stopped"; return 0; }
			sleep 1
		done
		log "mariadbd pid $p did not stop within ${WAIT}s"
		return 1
	fi
	if answers; then
		log "something answers on port $PORT but it is not ours (no live pid in $PID); leaving it"
		return 1
	fi
	log "not running"
}

start() {
	if answers; then
		log "reusing the server that answers on 127.0.0.1:$PORT"
		return 0
	fi
	if [[ ! -x "$MARIADBD" ]]; then
		log "$MARIADBD not found; install the mariadb-server package"
		return 1
	fi
	mkdir -p "$DATA"
	if [[ ! -d "$DATA/mysql" ]]; then
		log "initialising $DATA"
		if ! mariadb-install-db --no-defaults --user=root --datadir="$DATA" \
			--auth-root-authentication-method=normal --skip-test-db \
			>"$DIR/install.log" 2>&1; then
			log "mariadb-install-db failed; see $DIR/install.log:"
			tail -n 20 "$DIR/install.log" >&2
			return 1
		fi
	fi
	if [[ -f "$PID" ]] && kill -0 "$(cat "$PID")" 2>/dev/null; then
		log "mariadbd pid $(cat "$PID") is alive but not answering yet; waiting for it"
	else
		rm -f "$PID" "$SOCK"
		log "starting mariadbd on 127.0.0.1:$PORT (data $DATA)"
		# setsid + nohup: the server outlives the test or shell that started it;
		# 9>&- keeps the lock fd out of the server, or the next caller would wait on it.
		setsid nohup "$MARIADBD" --no-defaults --user=root \
			--datadir="$DATA" --socket="$SOCK" --pid-file="$PID" \
			--port="$PORT" --bind-address=127.0.0.1 --skip-name-resolve \
			--log-error="$LOG" \
			--server-id="$SERVER_ID" --log-bin="$DATA/mysql-bin" --binlog-format=ROW \
			--binlog-row-image=FULL --binlog-row-metadata=FULL \
			--character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
			--max-connections=500 --innodb-buffer-pool-size=256M \
			--innodb-flush-log-at-trx-commit=2 --sync-binlog=0 \
			--skip-log-warnings=0 \
			</dev/null >"$DIR/mariadbd.out" 2>&1 9>&- &
	fi
	local i
	for ((i = 0; i < WAIT * 2; i++)); do
		if [[ -S "$SOCK" ]] && client --socket="$SOCK" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
			break
		fi
		sleep 0.5
	done
	if ((i >= WAIT * 2)); then
		log "mariadbd did not accept connections within ${WAIT}s; last lines of $LOG:"
		tail -n 30 "$LOG" >&2 2>/dev/null || true
		return 1
	fi
	# root with an empty password from 127.0.0.1 over TCP (skip-name-resolve
	# means 127.0.0.1 does not match root@localhost).
	client --socket="$SOCK" -uroot -e "
		CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
		GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
		FLUSH PRIVILEGES;"
	for ((i = 0; i < WAIT * 2; i++)); do
		answers && { log "ready on 127.0.0.1:$PORT"; return 0; }
		sleep 0.5
	done
	log "mariadbd runs but does not answer over TCP on 127.0.0.1:$PORT"
	return 1
}

mkdir -p "$DIR"
# One caller at a time: several test packages may start the server at once.
exec 9>"$DIR/.lock"
flock -w "$((WAIT + 30))" 9 || { log "could not lock $DIR/.lock"; exit 1; }

case "${1:-start}" in
start) start ;;
stop) stop ;;
status) answers ;;
*)
	echo "usage: $0 [start|stop|status]" >&2
	exit 2
	;;
esac
