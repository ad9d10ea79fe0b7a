#!/usr/bin/env bash
# Hand-run check of the Kafka Connect baseline (jdbc-sink.sh) on the shared
# test services: makes its own topic and PostgreSQL schema, produces an
# orders-with-customer stream with repeated keys (upserts) as JSON with an
# embedded Connect schema, runs the Debezium JDBC sink once per batch size,
# checks the row count and a sample of rows each time, and prints one result
# line per run (the JSON of jdbc-sink.sh). Everything it made is removed on exit.
# Not part of `make test`: every run starts a Connect JVM.
#
# Usage: tests/bench/connect/selfcheck.sh [--events N] [--keys K]
#          [--batch-sizes "1000 5000 10000"] [jdbc-sink.sh options, e.g. --set K=V]
#   --events N      events to produce (default 200000)
#   --keys K        distinct order ids (default 50000; N/K updates per key)
#   --rounds R      run the list of batch sizes R times (default 1), for noisy machines
#   --partitions P  partitions of the topic (default 1)
set -euo pipefail

NAME=connect-selfcheck
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../../services/lib.sh
source "$HERE/../../services/lib.sh"
say() { echo "[$NAME] $*" >&2; }

EVENTS=200000 KEYS=50000 BATCHES="1000 5000 10000" ROUNDS=1 PARTITIONS=1
PASS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) EVENTS="${2:?--events needs a value}"; shift 2 ;;
    --keys) KEYS="${2:?--keys needs a value}"; shift 2 ;;
    --batch-sizes) BATCHES="${2:?--batch-sizes needs a value}"; shift 2 ;;
    --rounds) ROUNDS="${2:?--rounds needs a value}"; shift 2 ;;
    --partitions) PARTITIONS="${2:?--partitions needs a value}"; shift 2 ;;
    *) PASS+=("$1"); shift ;;
  esac
done
[[ "$EVENTS" =~ ^[1-9][0-9]*$ && "$KEYS" =~ ^[1-9][0-9]*$ ]] || die "--events and --keys must be positive integers"
((KEYS <= EVENTS)) || die "--keys must not exceed --events"

ENV_FILE="$STATE_DIR/services.env"
[[ -f "$ENV_FILE" ]] || die "no $ENV_FILE; run \`make services\`"
BOOTSTRAP="$(sed -n 's/^SLUICE_KAFKA_BOOTSTRAP=//p' "$ENV_FILE")"
PG_URL="$(sed -n 's/^SLUICE_TEST_POSTGRES_URL=//p' "$ENV_FILE")"
[[ -n "$BOOTSTRAP" && -n "$PG_URL" ]] || die "$ENV_FILE lacks Kafka or PostgreSQL"
export SLUICE_CONNECT_PG_URL="$PG_URL"

SINK="$HERE/jdbc-sink.sh"
"$SINK" --fetch-only
CDIR="$SLUICE_CACHE/connect"
WORKER_LIBS="$CDIR/worker-${SLUICE_CONNECT_KAFKA_VERSION:-4.4.0}/libs"
probe() {
  java -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$CDIR/probe/log4j2.properties" \
    -cp "$CDIR/probe:$WORKER_LIBS/*" ConnectProbe "$@"
}
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 "$PG_URL" "$@"; }

ID="$$_$RANDOM"
TOPIC="sluice-connect-check-${ID//_/-}"
SCHEMA="sluice_connect_check_$ID"
TABLE="$SCHEMA.orders_with_customer"
DATA="$(mktemp "${TMPDIR:-/tmp}/sluice-connect-check.XXXXXX")"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  probe delete-topic "$BOOTSTRAP" "$TOPIC" >/dev/null 2>&1 || err "could not delete topic $TOPIC"
  psql_admin -c "DROP SCHEMA IF EXISTS \"$SCHEMA\" CASCADE" >/dev/null 2>&1 || err "could not drop schema $SCHEMA"
  rm -f "$DATA"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The table as Sluice's PostgreSQL target holds an orders-with-customer product
# (key order_id), without Sluice's own bookkeeping columns.
psql_admin -c "CREATE SCHEMA \"$SCHEMA\"" \
  -c "CREATE TABLE \"$SCHEMA\".orders_with_customer (
        order_id bigint PRIMARY KEY,
        amount double precision,
        status text,
        customer_name text,
        created_at timestamptz)" >/dev/null
probe create-topic "$BOOTSTRAP" "$TOPIC" "$PARTITIONS"

# Event i updates order i % KEYS; the last event of each key wins.
say "producing $EVENTS events over $KEYS keys to $TOPIC"
python3 - "$EVENTS" "$KEYS" >"$DATA" <<'PY'
import json, sys
events, keys = int(sys.argv[1]), int(sys.argv[2])
key_schema = {"type": "struct", "name": "sluice.bench.orders_with_customer.Key", "optional": False,
              "fields": [{"field": "order_id", "type": "int64", "optional": False}]}
value_schema = {"type": "struct", "name": "sluice.bench.orders_with_customer.Value", "optional": False,
                "fields": [{"field": "order_id", "type": "int64", "optional": False},
                           {"field": "amount", "type": "double", "optional": True},
                           {"field": "status", "type": "string", "optional": True},
                           {"field": "customer_name", "type": "string", "optional": True},
                           {"field": "created_at", "type": "string", "optional": True,
                            "name": "io.debezium.time.ZonedTimestamp", "version": 1}]}
ks = json.dumps(key_schema, separators=(",", ":"))
vs = json.dumps(value_schema, separators=(",", ":"))
statuses = ["new", "paid", "packed", "shipped", "delivered", "returned", "cancelled"]
out = sys.stdout
for i in range(events):
    k = i % keys
    row = {"order_id": k, "amount": round(i * 0.01 + 1, 2), "status": statuses[i % 7],
           "customer_name": "customer %d" % ((k * 31) % 1000),
           "created_at": "2026-%02d-%02dT%02d:%02d:%02dZ" % (1 + i % 12, 1 + i % 28, i % 24, i % 60, (i // 60) % 60)}
    out.write('{"schema":%s,"payload":{"order_id":%d}}\t{"schema":%s,"payload":%s}\n'
              % (ks, k, vs, json.dumps(row, separators=(",", ":"))))
PY
produced="$(probe produce "$BOOTSTRAP" "$TOPIC" <"$DATA")"
[[ "$produced" == "$EVENTS" ]] || die "produced $produced events, expected $EVENTS"

# The expected final row of a few keys (last event i with i % KEYS == k).
check_rows() {
  local k i want got
  for k in 0 1 $((KEYS / 2)) $((KEYS - 1)); do
    i=$(((EVENTS - 1 - k) / KEYS * KEYS + k))
    want="$(python3 -c "
import sys; i, k = int(sys.argv[1]), int(sys.argv[2])
s = ['new','paid','packed','shipped','delivered','returned','cancelled'][i % 7]
a = repr(round(i*0.01+1, 2)); a = a[:-2] if a.endswith('.0') else a
print('%d|%s|%s|customer %d|2026-%02d-%02d %02d:%02d:%02d+00' % (k, a, s, (k*31) % 1000, 1+i%12, 1+i%28, i%24, i%60, (i//60)%60))
" "$i" "$k")"
    got="$(PGTZ=UTC psql_admin -At -c "SELECT order_id, amount, status, customer_name, created_at FROM $TABLE WHERE order_id = $k")"
    [[ "$got" == "$want" ]] || die "row $k: got '$got', want '$want'"
  done
}

printf '%-10s %s\n' batch result >&2
for ((round = 1; round <= ROUNDS; round++)); do
  for b in $BATCHES; do
    psql_admin -c "TRUNCATE $TABLE" >/dev/null
    line="$("$SINK" --bootstrap "$BOOTSTRAP" --topic "$TOPIC" --table "$TABLE" \
      --expect "$KEYS" --batch-size "$b" "${PASS[@]}")" || die "jdbc-sink.sh failed at batch size $b"
    rows="$(psql_admin -At -c "SELECT count(*) FROM $TABLE")"
    [[ "$rows" == "$KEYS" ]] || die "batch size $b: $rows rows, expected $KEYS"
    check_rows
    echo "$line"
  done
done
say "ok: $EVENTS events over $KEYS keys loaded and checked for batch sizes $BATCHES"
