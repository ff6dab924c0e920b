#!/usr/bin/env bash
# services.sh makes sure every server rowsync's tests and demo talk to is up,
# starting what is down; it is idempotent and safe to run concurrently.
#
#   machine services (started the way this machine kind starts them):
#     Redis 127.0.0.1:6379, RabbitMQ 127.0.0.1:5672, MariaDB 127.0.0.1:3306
#   project services:
#     MariaDB with binlog on 127.0.0.1:3307   (scripts/mariadb-binlog.sh)
#     FerretDB (MongoDB wire protocol) on 127.0.0.1:27017 (scripts/ferretdb.sh)
#
# Kafka needs no server: tests run kfake in-process and the demo runs
# scripts/devkafka.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "services: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds name
	local i
	for ((i = 0; i < $2 * 2; i++)); do
		port_open "$1" && return 0
		sleep 0.5
	done
	log "$3 did not come up on port $1 within $2 s"
	return 1
}

ensure_redis() {
	port_open 6379 && return 0
	command -v redis-server >/dev/null || { log "redis-server is not installed (apt-get install redis-server)"; return 1; }
	log "starting Redis"
	mkdir -p /var/lib/redis /var/log/redis
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/ci.log
	wait_port 6379 30 Redis
}

ensure_rabbitmq() {
	port_open 5672 && return 0
	command -v rabbitmq-server >/dev/null || { log "rabbitmq-server is not installed (apt-get install rabbitmq-server)"; return 1; }
	log "starting RabbitMQ"
	rabbitmq-server -detached || true
	wait_port 5672 120 RabbitMQ
}

ensure_mariadb() {
	port_open 3306 && return 0
	[[ -x /usr/sbin/mariadbd ]] || { log "mariadbd is not installed (apt-get install mariadb-server)"; return 1; }
	log "starting the machine's MariaDB on 3306"
	start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
	wait_port 3306 60 MariaDB
}

ensure_redis
ensure_rabbitmq
ensure_mariadb
bash "$ROOT/scripts/mariadb-binlog.sh" start
if [[ "${ROWSYNC_SKIP_FERRETDB:-}" != 1 ]]; then
	bash "$ROOT/scripts/ferretdb.sh" start
fi
log "all services up"
