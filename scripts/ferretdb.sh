#!/usr/bin/env bash
# ferretdb.sh runs rowsync's MongoDB-compatible test server: FerretDB v1.24.0
# embedded in a small Go program (scripts/ferretdb, its own Go module, so the
# product module never depends on FerretDB).
#
#   bash scripts/ferretdb.sh         start (or reuse what answers on the port)
#   bash scripts/ferretdb.sh stop    stop the server this script started
#   bash scripts/ferretdb.sh status  exit 0 if it answers
#   bash scripts/ferretdb.sh build   only build (or reuse) the binary
#
# The binary is cached as $ROWSYNC_STATE/bin/ferretdb-<hash of its sources>;
# it is rebuilt only when scripts/ferretdb changes (the first build takes a
# few minutes on 2 cores).
#
# Environment: ROWSYNC_STATE (default /tmp/rowsync-state),
# ROWSYNC_FERRETDB_PORT (default 27017), ROWSYNC_FERRETDB_BACKEND (sqlite or
# postgresql or auto; default auto = postgresql on 127.0.0.1:5432 when it
# answers, about 7x faster for bulk upserts here, else sqlite),
# ROWSYNC_FERRETDB_WAIT
# seconds (default 60, not counting the build).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/scripts/ferretdb"
PORT="${ROWSYNC_FERRETDB_PORT:-27017}"
BACKEND="${ROWSYNC_FERRETDB_BACKEND:-auto}"
STATE="${ROWSYNC_STATE:-/tmp/rowsync-state}"
DIR="$STATE/ferretdb"
PID="$DIR/ferretdb-$PORT.pid"
LOG="$DIR/ferretdb-$PORT.log"
WAIT="${ROWSYNC_FERRETDB_WAIT:-60}"
ADDR="127.0.0.1:$PORT"

log() { echo "ferretdb: $*" >&2; }

# binary prints the path of the cached binary, building it if needed.
binary() {
	local sum bin
	sum="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC"/*.go | sha256sum | cut -c1-12)"
	bin="$STATE/bin/ferretdb-$sum"
	if [[ ! -x "$bin" ]]; then
		mkdir -p "$STATE/bin"
		log "building $bin (FerretDB v1.24.0; takes a few minutes the first time)"
		(cd "$SRC" && GOFLAGS=-mod=readonly go build -o "$bin.tmp.$$" .) >&2
		mv -f "$bin.tmp.$$" "$bin"
	fi
	echo "$bin"
}

# answers: a MongoDB server answers ping on the port.
answers() {
	local bin
	bin="$(binary)" || return 1
	"$bin" -ping "$ADDR" >/dev/null 2>&1
}

ours() { [[ -f "$PID" ]] && kill -0 "$(cat "$PID")" 2>/dev/null; }

stop() {
	if ours; then
		local p
		p="$(cat "$PID")"
		log "stopping pid $p"
		kill "$p"
		for ((i = 0; i < WAIT * 2; i++)); do
			kill -0 "$p" 2>/dev/null || { rm -f "$PID"; log "stopped"; return 0; }
			sleep 0.5
		done
		log "pid $p did not stop within ${WAIT}s"
		return 1
	fi
	rm -f "$PID"
	if answers; then
		log "something answers on $ADDR but it is not ours (no live pid in $PID); leaving it"
		return 1
	fi
	log "not running"
}

start() {
	local bin
	bin="$(binary)"
	if "$bin" -ping "$ADDR" >/dev/null 2>&1; then
		log "reusing the server that answers on $ADDR"
		return 0
	fi
	if ours; then
		log "pid $(cat "$PID") is alive but not answering yet; waiting for it"
	else
		log "starting on $ADDR (backend $BACKEND, log $LOG)"
		# setsid + nohup: the server outlives the test or shell that started it.
		setsid nohup "$bin" -listen "$ADDR" -backend "$BACKEND" \
			</dev/null >>"$LOG" 2>&1 9>&- &
		echo $! >"$PID"
	fi
	local i
	for ((i = 0; i < WAIT * 2; i++)); do
		if "$bin" -ping "$ADDR" >/dev/null 2>&1; then
			log "ready on $ADDR"
			return 0
		fi
		if ! ours; then
			log "server exited; last lines of $LOG:"
			tail -n 20 "$LOG" >&2 || true
			return 1
		fi
		sleep 0.5
	done
	log "no answer on $ADDR within ${WAIT}s; last lines of $LOG:"
	tail -n 20 "$LOG" >&2 || true
	return 1
}

mkdir -p "$DIR"
# A server that answers needs no lock (and a server started by an older
# version of this script may still hold it).
if [[ "${1:-start}" == start || "${1:-start}" == status ]]; then
	for b in "$STATE"/bin/ferretdb-*; do
		[[ -x "$b" ]] || continue
		if "$b" -ping "$ADDR" >/dev/null 2>&1; then
			[[ "${1:-start}" == start ]] && log "reusing the server that answers on $ADDR"
			exit 0
		fi
		break
	done
fi
# One caller at a time: several test packages may start the server at once.
# The wait covers a first build.
exec 9>"$DIR/.lock-$PORT"
flock -w 1200 9 || { log "could not lock $DIR/.lock-$PORT"; exit 1; }

case "${1:-start}" in
start) start ;;
stop) stop ;;
status) answers ;;
build) binary >/dev/null ;;
*)
	echo "usage: $0 [start|stop|status|build]" >&2
	exit 2
	;;
esac
