#!/usr/bin/env bash
# Start, stop or check every service Sluice's tests use, and write .sluice/services.env.
#
# Usage: tests/services/services.sh up|down|status
#   up     install missing packages, start PostgreSQL, Redis, Kafka and OpenSearch
#          (a running healthy service is reused), write .sluice/services.env
#   down   stop everything `up` started
#   status exit 0 when every service is healthy
set -euo pipefail
NAME=services
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVICES=(postgres redis kafka opensearch elasticsearch)
ENV_FILE="$STATE_DIR/services.env"

write_env() {
  local tmp="$ENV_FILE.tmp"
  (umask 077; cat > "$tmp" <<ENV
# Written by tests/services/services.sh; local test services only.
SLUICE_KAFKA_BOOTSTRAP=127.0.0.1:${SLUICE_KAFKA_PORT:-19092}
SLUICE_TEST_POSTGRES_URL=$("$SCRIPT_DIR/postgres.sh" url)
SLUICE_TEST_REDIS_URL=$("$SCRIPT_DIR/redis.sh" url)
SLUICE_TEST_OPENSEARCH_URL=http://127.0.0.1:${SLUICE_OPENSEARCH_PORT:-19200}
SLUICE_TEST_ELASTICSEARCH_URL=http://127.0.0.1:${SLUICE_ELASTICSEARCH_PORT:-19201}
ENV
  )
  mv "$tmp" "$ENV_FILE"
  say "wrote $ENV_FILE"
}

up() {
  local started=$SECONDS
  mkdir -p "$STATE_DIR"
  "$SCRIPT_DIR/deps.sh"
  # The JVMs take longest, so they start side by side while the others come up.
  local logs="$STATE_DIR/services-start" jvm pids=() failed=()
  mkdir -p "$logs"
  for jvm in kafka opensearch elasticsearch; do
    "$SCRIPT_DIR/$jvm.sh" start > "$logs/$jvm.out" 2>&1 &
    pids+=($!)
  done
  "$SCRIPT_DIR/postgres.sh" start || failed+=(postgres)
  "$SCRIPT_DIR/redis.sh" start || failed+=(redis)
  local i=0
  for jvm in kafka opensearch elasticsearch; do
    wait "${pids[$i]}" || failed+=("$jvm")
    cat "$logs/$jvm.out"
    i=$((i + 1))
  done
  if [[ ${#failed[@]} -gt 0 ]]; then
    die "failed to start: ${failed[*]}"
  fi
  write_env
  say "all services up in $((SECONDS - started))s"
}

down() {
  local svc status=0
  for svc in "${SERVICES[@]}"; do
    "$SCRIPT_DIR/$svc.sh" stop || status=1
  done
  rm -f "$ENV_FILE"
  return $status
}

status() {
  local svc status=0
  for svc in "${SERVICES[@]}"; do
    "$SCRIPT_DIR/$svc.sh" status || status=1
  done
  return $status
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
