#!/usr/bin/env bash
# Run a private Redis 7 for Sluice's tests: no persistence, loopback only, ACLs on (the
# default user is disabled; the admin user `sluice_admin` has a random password).
#
# Usage: tests/services/redis.sh start|stop|status|url
# Environment: SLUICE_ROOT, SLUICE_REDIS_PORT (default 16379).
set -euo pipefail
NAME=redis
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${SLUICE_REDIS_PORT:-16379}"
R_DIR="$STATE_DIR/redis"
PID_FILE="$R_DIR/redis.pid"
LOG_FILE="$R_DIR/redis.log"
PW_FILE="$R_DIR/password"
ACL_FILE="$R_DIR/users.acl"
ADMIN=sluice_admin

url() {
  echo "redis://$ADMIN:$(password_in "$PW_FILE")@127.0.0.1:$PORT/0"
}

cli() {
  redis-cli -h 127.0.0.1 -p "$PORT" --user "$ADMIN" --pass "$(password_in "$PW_FILE")" \
    --no-auth-warning "$@"
}

healthy() {
  [[ "$(cli ping 2>/dev/null)" == "PONG" ]]
}

start() {
  if healthy; then
    say "already running on 127.0.0.1:$PORT"
    return 0
  fi
  command -v redis-server >/dev/null || die "redis-server not found; run tests/services/deps.sh"
  local version
  version="$(redis-server --version | sed -n 's/.*v=\([0-9]*\)\..*/\1/p')"
  [[ "${version:-0}" -ge 7 ]] || die "Redis 7 or newer needed, found $(redis-server --version)"
  mkdir -p "$R_DIR"
  if [[ -s "$PID_FILE" ]] && ! pid_alive "$PID_FILE" redis-server; then
    rm -f "$PID_FILE"
  fi
  port_free "$PORT" || die "port $PORT is taken by another process"
  local hash
  hash="$(printf '%s' "$(password_in "$PW_FILE")" | sha256sum | cut -d' ' -f1)"
  # The ACL file is the source of users, so ACL SETUSER/SAVE work as in production.
  printf 'user default off\nuser %s on #%s ~* &* +@all\n' "$ADMIN" "$hash" > "$ACL_FILE"
  chmod 600 "$ACL_FILE"
  cat > "$R_DIR/redis.conf" <<CONF
bind 127.0.0.1
port $PORT
protected-mode yes
daemonize yes
pidfile $PID_FILE
logfile $LOG_FILE
dir $R_DIR
save ""
appendonly no
aclfile $ACL_FILE
maxmemory 2gb
maxmemory-policy noeviction
CONF
  say "starting on 127.0.0.1:$PORT"
  : > "$LOG_FILE"
  redis-server "$R_DIR/redis.conf" || { log_tail "$LOG_FILE"; die "redis-server failed to start"; }
  for _ in $(seq 1 100); do
    healthy && { say "ready"; return 0; }
    sleep 0.1
  done
  log_tail "$LOG_FILE"
  die "Redis did not answer PING"
}

stop() {
  if pid_alive "$PID_FILE" redis-server; then
    local pid
    pid="$(head -n 1 "$PID_FILE")"
    say "stopping"
    kill "$pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || { rm -f "$PID_FILE"; return 0; }
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$PID_FILE"
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
