#!/usr/bin/env bash
# Start, stop or check every service Sluice's tests use, and write .sluice/services.env.
#
# Usage: tests/services/services.sh up|down|status
#   up     install missing packages, start PostgreSQL, Redis, Kafka, OpenSearch,
#          Elasticsearch and a Kubernetes API server (a running healthy service is reused;
#          the Kubernetes binaries are built first when they are not in the cache yet),
#          write .sluice/services.env
#   down   stop everything `up` started
#   status exit 0 when every service is healthy
set -euo pipefail
NAME=services
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVICES=(postgres redis kafka opensearch elasticsearch kube)
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
KUBECONFIG=$("$SCRIPT_DIR/kube.sh" kubeconfig)
SLUICE_TEST_KUBE_BIN=$("$SCRIPT_DIR/kube.sh" bin)
ENV
  )
  mv "$tmp" "$ENV_FILE"
  say "wrote $ENV_FILE"
}

up() {
  local started=$SECONDS
  mkdir -p "$STATE_DIR"
  "$SCRIPT_DIR/deps.sh"
  # Builds kube-apiserver, kubectl, etcd and helm on the first run (long; it prints its
  # progress), before anything starts: the build takes every core, and the JVMs' start
  # timeouts are not meant for a loaded machine. A no-op once the binaries are cached.
  "$SCRIPT_DIR/kube.sh" install || die "building the Kubernetes binaries failed"
  # The JVMs and the Kubernetes API server take longest, so they start side by side while
  # the others come up.
  local logs="$STATE_DIR/services-start" svc pids=() failed=()
  local parallel=(kafka opensearch elasticsearch kube)
  mkdir -p "$logs"
  for svc in "${parallel[@]}"; do
    "$SCRIPT_DIR/$svc.sh" start > "$logs/$svc.out" 2>&1 &
    pids+=($!)
  done
  "$SCRIPT_DIR/postgres.sh" start || failed+=(postgres)
  "$SCRIPT_DIR/redis.sh" start || failed+=(redis)
  local i=0
  for svc in "${parallel[@]}"; do
    wait "${pids[$i]}" || failed+=("$svc")
    cat "$logs/$svc.out"
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
