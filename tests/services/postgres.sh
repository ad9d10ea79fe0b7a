#!/usr/bin/env bash
# Run a private PostgreSQL cluster for Sluice's tests: initdb'd under .sluice/postgres/,
# listening on 127.0.0.1 only, password-protected admin role `sluice_admin`.
#
# Usage: tests/services/postgres.sh start|stop|status|url
# Environment: SLUICE_ROOT, SLUICE_POSTGRES_PORT (default 15432).
set -euo pipefail
NAME=postgres
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${SLUICE_POSTGRES_PORT:-15432}"
PG_DIR="$STATE_DIR/postgres"
DATA="$PG_DIR/data"
RUN_DIR="$PG_DIR/run"
LOG_FILE="$PG_DIR/postgres.log"
PW_FILE="$PG_DIR/password"
ADMIN=sluice_admin

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$dir" && -x "$dir/pg_ctl" ]] || die "PostgreSQL server binaries not found; run tests/services/deps.sh"
  echo "$dir"
}

# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

url() {
  echo "postgres://$ADMIN:$(password_in "$PW_FILE")@127.0.0.1:$PORT/postgres"
}

healthy() {
  PGPASSWORD="$(password_in "$PW_FILE")" psql -X -q -h 127.0.0.1 -p "$PORT" -U "$ADMIN" \
    -d postgres -tAc 'select 1' 2>/dev/null | grep -q '^1$'
}

init_cluster() {
  local bin="$1"
  say "creating cluster in $DATA"
  mkdir -p "$PG_DIR" "$RUN_DIR"
  password_in "$PW_FILE" > /dev/null
  local pwfile
  pwfile="$(mktemp)"
  cat "$PW_FILE" > "$pwfile"
  if [[ "$(id -u)" == 0 ]]; then
    id postgres >/dev/null 2>&1 || die "user postgres missing; run tests/services/deps.sh"
    chown postgres "$pwfile"
    chown -R postgres "$PG_DIR"
    chmod 600 "$PW_FILE"
    # The postgres user must be able to reach the data directory.
    as_owner test -x "$PG_DIR" || die "user postgres cannot reach $PG_DIR (a parent directory is not world-executable)"
  fi
  as_owner "$bin/initdb" -D "$DATA" -U "$ADMIN" --pwfile="$pwfile" -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 > "$PG_DIR/initdb.log" 2>&1 \
    || { rm -f "$pwfile"; log_tail "$PG_DIR/initdb.log"; die "initdb failed"; }
  rm -f "$pwfile"
  echo "include_if_exists = 'sluice.conf'" | as_owner tee -a "$DATA/postgresql.conf" > /dev/null
}

write_config() {
  # Tuned for tests on a small machine: durability traded for speed, loopback only.
  as_owner tee "$DATA/sluice.conf" > /dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$RUN_DIR'
max_connections = 400
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 2GB
log_min_messages = warning
log_line_prefix = '%m [%p] %u@%d '
CONF
}

start() {
  if healthy; then
    say "already running on 127.0.0.1:$PORT"
    return 0
  fi
  local bin
  bin="$(pg_bin)"
  [[ -f "$DATA/PG_VERSION" ]] || init_cluster "$bin"
  write_config
  if [[ -f "$DATA/postmaster.pid" ]] && ! as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    say "removing stale postmaster.pid"
    rm -f "$DATA/postmaster.pid"
  fi
  port_free "$PORT" || die "port $PORT is taken by another process"
  say "starting on 127.0.0.1:$PORT"
  [[ "$(id -u)" == 0 ]] && touch "$LOG_FILE" && chown postgres "$LOG_FILE"
  if ! as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG_FILE" -w -t 60 start > /dev/null; then
    log_tail "$LOG_FILE"
    die "PostgreSQL did not start"
  fi
  for _ in $(seq 1 50); do
    healthy && { say "ready"; return 0; }
    sleep 0.2
  done
  log_tail "$LOG_FILE"
  die "PostgreSQL started but does not accept the admin login"
}

stop() {
  [[ -f "$DATA/PG_VERSION" ]] || { say "not initialised"; return 0; }
  local bin
  bin="$(pg_bin)"
  if as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    say "stopping"
    as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w -t 60 stop > /dev/null
  else
    say "not running"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) healthy && say "running on 127.0.0.1:$PORT" || { say "not running"; exit 1; } ;;
  url) url ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
