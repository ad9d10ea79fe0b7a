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

SERVICES=(postgres redis kafka opensearch)
ENV_FILE="$STATE_DIR/services.env"

write_env() {
  local tmp="$ENV_FILE.tmp"
  (umask 077; cat > "$tmp" <<ENV
# Written by tests/services/services.sh; local test services only.
SLUICE_KAFKA_BOOTSTRAP=127.0.0.1:${SLUICE_KAFKA_PORT:-19092}
SLUICE_TEST_POSTGRES_URL=$("$SCRIPT_DIR/postgres.sh" url)
SLUICE_TEST_REDIS_URL=$("$SCRIPT_DIR/redis.sh" url)
SLUICE_TEST_OPENSEARCH_URL=http://127.0.0.1:${SLUICE_OPENSEARCH_PORT:-19200}
ENV
  )
  mv "$tmp" "$ENV_FILE"
  say "wrote $ENV_FILE"
}

up() {
  local started=$SECONDS
  mkdir -p "$STATE_DIR"
  "$SCRIPT_DIR/deps.sh"
  # The two JVMs take longest, so they start side by side while the others come up.
  local logs="$STATE_DIR/services-start"
  mkdir -p "$logs"
  "$SCRIPT_DIR/kafka.sh" start > "$logs/kafka.out" 2>&1 &
  local kafka_pid=$!
  "$SCRIPT_DIR/opensearch.sh" start > "$logs/opensearch.out" 2>&1 &
  local opensearch_pid=$!
  local failed=()
  "$SCRIPT_DIR/postgres.sh" start || failed+=(postgres)
  "$SCRIPT_DIR/redis.sh" start || failed+=(redis)
  wait "$kafka_pid" || failed+=(kafka)
  cat "$logs/kafka.out"
  wait "$opensearch_pid" || failed+=(opensearch)
  cat "$logs/opensearch.out"
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
