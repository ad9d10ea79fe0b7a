#!/usr/bin/env bash
# Baseline for Sluice's PostgreSQL loading: Kafka Connect (standalone worker,
# connect-runtime from Maven Central) with the Debezium JDBC sink connector in
# upsert mode, loading one topic into one existing PostgreSQL table.
#
# Prints ONE JSON line on stdout (everything else goes to stderr):
#   {"events":N,"rows":R,"seconds":S,"startup_seconds":U,"load_seconds":L,
#    "events_per_s":X,"load_events_per_s":Y,"cpu_seconds":C,"peak_rss_kib":M,
#    "first_row_seconds":F,"load_cpu_seconds":LC,"batch_size":B}
# seconds: worker start -> whole topic consumed (committed) and, with --expect,
# the table holding that many rows. startup_seconds: worker start -> the
# connector's task RUNNING (JVM start, plugin scan, connector start).
# load_seconds = seconds - startup_seconds. events_per_s = events / seconds,
# load_events_per_s = events / load_seconds. first_row_seconds: worker start ->
# the first row in the table (null when the table was not empty at the start).
# cpu_seconds and peak_rss_kib are
# the Connect JVM's (user+system time and VmHWM from /proc) when done;
# load_cpu_seconds is its CPU time after startup_seconds.
#
# Records must be JSON with an embedded Connect schema (JsonConverter,
# schemas.enable=true) for key and value; see docs/bench-connect.md and
# tests/src/connect.rs.
#
# Usage: tests/bench/connect/jdbc-sink.sh --topic T --table SCHEMA.TABLE [options]
#   --bootstrap HOST:PORT   Kafka (default: SLUICE_KAFKA_BOOTSTRAP or .sluice/services.env)
#   --pg-url URL            postgres://user:password@host:port/db (default:
#                           SLUICE_CONNECT_PG_URL, then SLUICE_TEST_POSTGRES_URL or
#                           .sluice/services.env); or the parts:
#   --pg-host H --pg-port P --pg-user U --pg-db D   with the password in PGPASSWORD
#   --table SCHEMA.TABLE    target table (must exist; see --create-table)
#   --expect N              also wait until the table holds N rows
#   --batch-size B          connector batch.size (default 5000, the best tried)
#   --max-poll-records N    consumer max.poll.records (default: max(batch size, 500))
#   --tasks N               tasks.max (default: the topic's partitions, at most nproc)
#   --pk-mode MODE          primary.key.mode: record_key (default) or record_value
#   --pk-fields LIST        primary.key.fields (default: all key fields / required
#                           with record_value)
#   --set KEY=VALUE         extra connector property, repeatable (tuning)
#   --worker-set KEY=VALUE  extra worker property, repeatable (tuning)
#   --create-table COLUMNS  CREATE TABLE IF NOT EXISTS SCHEMA.TABLE (COLUMNS) first
#                           (for hand testing; the benchmark creates its own table)
#   --timeout SECONDS       give up after this long (default 900)
#   --fetch-only            download the jars and exit
#
# Environment:
#   SLUICE_CACHE                    download cache (default ~/.cache/sluice); jars in
#                                   $SLUICE_CACHE/connect
#   SLUICE_CONNECT_JAVA             java binary (default: java on PATH)
#   SLUICE_CONNECT_HEAP             worker heap (default -Xms1g -Xmx2g)
#   SLUICE_CONNECT_KAFKA_VERSION    connect-runtime version (default 4.4.0)
#   SLUICE_CONNECT_DEBEZIUM_VERSION Debezium versions to try, in order
#                                   (default "3.6.1.Final 3.6.0.Final")
#   SLUICE_CONNECT_KEEP             1: keep the run dir (worker log, configs)
set -euo pipefail

NAME=connect-jdbc-sink
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../../services/lib.sh
source "$HERE/../../services/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../../services/jvm.sh
source "$HERE/../../services/jvm.sh"
# stdout carries only the result line.
say() { echo "[$NAME] $*" >&2; }

KAFKA_VERSION="${SLUICE_CONNECT_KAFKA_VERSION:-4.4.0}"
DEBEZIUM_VERSIONS="${SLUICE_CONNECT_DEBEZIUM_VERSION:-3.6.1.Final 3.6.0.Final}"
PG_DRIVER_VERSION=42.7.14
AGROAL_VERSION=7.2.0.Final
LOG4J_VERSION=2.25.3
SLF4J_VERSION=2.0.17
JAVA="${SLUICE_CONNECT_JAVA:-java}"
HEAP_OPTS="${SLUICE_CONNECT_HEAP:--Xms1g -Xmx2g}"
CDIR="$SLUICE_CACHE/connect"
DEFAULT_BATCH=5000

# --- arguments ---------------------------------------------------------------

BOOTSTRAP="${SLUICE_KAFKA_BOOTSTRAP:-}"
PG_URL="${SLUICE_CONNECT_PG_URL:-}"
PG_HOST="" PG_PORT="" PG_USER="" PG_DB=""
TOPIC="" TABLE="" EXPECT="" BATCH="$DEFAULT_BATCH" MAX_POLL="" TIMEOUT=900
PK_MODE=record_key PK_FIELDS="" CREATE_COLUMNS="" FETCH_ONLY=0 TASKS=""
EXTRA=() WORKER_EXTRA=()

need() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bootstrap) need "$@"; BOOTSTRAP="$2"; shift 2 ;;
    --topic) need "$@"; TOPIC="$2"; shift 2 ;;
    --pg-url) need "$@"; PG_URL="$2"; shift 2 ;;
    --pg-host) need "$@"; PG_HOST="$2"; shift 2 ;;
    --pg-port) need "$@"; PG_PORT="$2"; shift 2 ;;
    --pg-user) need "$@"; PG_USER="$2"; shift 2 ;;
    --pg-db) need "$@"; PG_DB="$2"; shift 2 ;;
    --table) need "$@"; TABLE="$2"; shift 2 ;;
    --expect) need "$@"; EXPECT="$2"; shift 2 ;;
    --batch-size) need "$@"; BATCH="$2"; shift 2 ;;
    --max-poll-records) need "$@"; MAX_POLL="$2"; shift 2 ;;
    --tasks) need "$@"; TASKS="$2"; shift 2 ;;
    --pk-mode) need "$@"; PK_MODE="$2"; shift 2 ;;
    --pk-fields) need "$@"; PK_FIELDS="$2"; shift 2 ;;
    --set) need "$@"; EXTRA+=("$2"); shift 2 ;;
    --worker-set) need "$@"; WORKER_EXTRA+=("$2"); shift 2 ;;
    --create-table) need "$@"; CREATE_COLUMNS="$2"; shift 2 ;;
    --timeout) need "$@"; TIMEOUT="$2"; shift 2 ;;
    --fetch-only) FETCH_ONLY=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

# --- jars --------------------------------------------------------------------

WORKER_LIBS="" PLUGIN_PATH="" DEBEZIUM_VERSION=""

# mvn_copy POM OUT: copies POM's runtime dependencies into OUT (via OUT.tmp);
# Maven's output goes to mvn.log beside POM.
mvn_copy() {
  local pom="$1" out="$2" log
  log="$(dirname "$1")/mvn.log"
  mkdir -p "$(dirname "$out")"
  rm -rf "$out.tmp"
  if mvn -B -q -f "$pom" -Dmaven.repo.local="$SLUICE_CACHE/m2" \
      dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$out.tmp" >"$log" 2>&1; then
    rm -rf "$out"
    mv "$out.tmp" "$out"
    return 0
  fi
  rm -rf "$out.tmp"
  return 1
}

pom_head() {
  cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by tests/bench/connect/jdbc-sink.sh: a dependency list only. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.sluice.bench</groupId>
  <artifactId>$1</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId>
    <artifactId>maven-dependency-plugin</artifactId>
    <version>3.8.1</version>
  </plugin></plugins></build>
  <dependencies>
EOF
}

dep() { # dep GROUP ARTIFACT VERSION [EXCLUSION_GROUP:ARTIFACT...]
  local g="$1" a="$2" v="$3" x
  shift 3
  echo "    <dependency><groupId>$g</groupId><artifactId>$a</artifactId><version>$v</version>"
  if [[ $# -gt 0 ]]; then
    echo "      <exclusions>"
    for x in "$@"; do
      echo "        <exclusion><groupId>${x%%:*}</groupId><artifactId>${x#*:}</artifactId></exclusion>"
    done
    echo "      </exclusions>"
  fi
  echo "    </dependency>"
}

# fresh DIR POM_TEXT: true when DIR holds a complete fetch of exactly this pom
# (.complete records the pom's checksum, so a changed dependency list refetches).
fresh() {
  [[ -f "$1/.complete" && "$(cat "$1/.complete")" == "$(sha256sum <<<"$2" | cut -d' ' -f1)" ]]
}
mark_complete() { sha256sum <<<"$2" | cut -d' ' -f1 >"$1/.complete"; }

# The worker: connect-runtime + connect-json on the classpath, log4j2 behind SLF4J.
worker_pom() {
  pom_head sluice-connect-worker
  dep org.apache.kafka connect-runtime "$KAFKA_VERSION"
  dep org.apache.kafka connect-json "$KAFKA_VERSION"
  # connect-runtime asks for slf4j-api 1.7; pin 2.x for the log4j2 binding.
  dep org.slf4j slf4j-api "$SLF4J_VERSION"
  dep org.apache.logging.log4j log4j-slf4j2-impl "$LOG4J_VERSION"
  dep org.apache.logging.log4j log4j-core "$LOG4J_VERSION"
  echo "  </dependencies>"
  echo "</project>"
}

ensure_worker() {
  local dir="$CDIR/worker-$KAFKA_VERSION" pom
  WORKER_LIBS="$dir/libs"
  pom="$(worker_pom)"
  fresh "$dir" "$pom" && return 0
  command -v mvn >/dev/null || die "mvn not found (needed to fetch Kafka Connect)"
  mkdir -p "$dir"
  rm -f "$dir/.complete"
  say "fetching connect-runtime $KAFKA_VERSION and its dependencies (cache: $dir)"
  echo "$pom" >"$dir/pom.xml"
  mvn_copy "$dir/pom.xml" "$dir/libs" \
    || { tail -n 15 "$dir/mvn.log" >&2; die "could not fetch connect-runtime $KAFKA_VERSION (log: $dir/mvn.log)"; }
  [[ -f "$dir/libs/connect-runtime-$KAFKA_VERSION.jar" ]] || die "connect-runtime jar missing after fetch"
  mark_complete "$dir" "$pom"
  say "worker ready ($(find "$dir/libs" -name '*.jar' | wc -l) jars)"
}

# The plugin: debezium-connector-jdbc with its runtime dependencies and the
# PostgreSQL driver, in its own plugin.path directory.
# - Kafka's own jars, SLF4J and Jackson's core come from the worker (a second
#   jackson-databind inside the plugin breaks the worker JsonConverter's
#   Jackson module loading); other databases' drivers are left out.
# - The connector's Agroal pool integration, org.hibernate:hibernate-agroal (a
#   relocation), is not served by the registry: the same integration comes from
#   org.hibernate.orm:hibernate-agroal $AGROAL_VERSION (same Hibernate minor),
#   on the connector's own hibernate-core.
plugin_pom() {
  pom_head sluice-connect-debezium-jdbc
  dep io.debezium debezium-connector-jdbc "$1" \
    'org.apache.kafka:*' 'org.slf4j:*' 'com.fasterxml.jackson.core:*' org.hibernate:hibernate-agroal \
    'com.mysql:*' 'org.mariadb.jdbc:*' 'com.microsoft.sqlserver:*' 'com.oracle.database.jdbc:*'
  dep org.hibernate.orm hibernate-agroal "$AGROAL_VERSION" org.hibernate.orm:hibernate-core
  dep org.postgresql postgresql "$PG_DRIVER_VERSION"
  echo "  </dependencies>"
  echo "</project>"
}

ensure_plugin() {
  local v dir pom
  for v in $DEBEZIUM_VERSIONS; do
    dir="$CDIR/debezium-jdbc-$v"
    if fresh "$dir" "$(plugin_pom "$v")"; then
      DEBEZIUM_VERSION="$v"; PLUGIN_PATH="$dir/plugins"; return 0
    fi
  done
  command -v mvn >/dev/null || die "mvn not found (needed to fetch the Debezium JDBC sink)"
  for v in $DEBEZIUM_VERSIONS; do
    dir="$CDIR/debezium-jdbc-$v"
    mkdir -p "$dir"
    rm -f "$dir/.complete"
    say "fetching io.debezium:debezium-connector-jdbc:$v and its dependencies (cache: $dir)"
    pom="$(plugin_pom "$v")"
    echo "$pom" >"$dir/pom.xml"
    if mvn_copy "$dir/pom.xml" "$dir/plugins/debezium-connector-jdbc" \
        && [[ -f "$dir/plugins/debezium-connector-jdbc/debezium-connector-jdbc-$v.jar" ]]; then
      mark_complete "$dir" "$pom"
      DEBEZIUM_VERSION="$v"; PLUGIN_PATH="$dir/plugins"
      say "Debezium JDBC sink $v ready ($(find "$PLUGIN_PATH" -name '*.jar' | wc -l) jars)"
      return 0
    fi
    err "could not fetch Debezium $v (log: $dir/mvn.log)"
    grep -m 3 -E 'ERROR|WARN' "$dir/mvn.log" >&2 || true
    rm -rf "$dir/plugins"
  done
  die "no Debezium version out of '$DEBEZIUM_VERSIONS' could be fetched"
}

# The Kafka helper (ConnectProbe.java), compiled once per source version.
ensure_probe() {
  local javac_home
  javac_home="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
  compile_launcher "$HERE/ConnectProbe.java" ConnectProbe "$CDIR/probe" "$javac_home" "$WORKER_LIBS" >&2
  cat >"$CDIR/probe/log4j2.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [probe] %p %m%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
}

probe() {
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$CDIR/probe/log4j2.properties" \
    -cp "$CDIR/probe:$WORKER_LIBS/*" ConnectProbe "$@"
}

command -v "$JAVA" >/dev/null || die "java not found ($JAVA)"
mkdir -p "$CDIR"
ensure_worker
ensure_plugin
ensure_probe
if ((FETCH_ONLY)); then
  say "fetched: connect-runtime $KAFKA_VERSION, debezium-connector-jdbc $DEBEZIUM_VERSION, postgresql $PG_DRIVER_VERSION"
  exit 0
fi

# --- settings ----------------------------------------------------------------

env_file_value() { # the value of $1 in .sluice/services.env, if any
  local f="$STATE_DIR/services.env"
  [[ -f "$f" ]] && sed -n "s/^$1=//p" "$f" | tail -n 1
  return 0
}

[[ -n "$TOPIC" ]] || die "--topic is required"
[[ "$TABLE" =~ ^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*$ ]] \
  || die "--table must be SCHEMA.TABLE (plain identifiers), got '$TABLE'"
[[ "$BATCH" =~ ^[1-9][0-9]*$ ]] || die "--batch-size must be a positive integer"
[[ -z "$EXPECT" || "$EXPECT" =~ ^[0-9]+$ ]] || die "--expect must be a number"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive number of seconds"
[[ "$PK_MODE" == record_key || "$PK_MODE" == record_value ]] || die "--pk-mode must be record_key or record_value"
[[ "$PK_MODE" == record_key || -n "$PK_FIELDS" ]] || die "--pk-mode record_value needs --pk-fields"
if [[ -z "$MAX_POLL" ]]; then MAX_POLL=$((BATCH > 500 ? BATCH : 500)); fi
[[ "$MAX_POLL" =~ ^[1-9][0-9]*$ ]] || die "--max-poll-records must be a positive integer"
[[ -n "$BOOTSTRAP" ]] || BOOTSTRAP="$(env_file_value SLUICE_KAFKA_BOOTSTRAP)"
[[ -n "$BOOTSTRAP" ]] || die "no --bootstrap (and no SLUICE_KAFKA_BOOTSTRAP; run \`make services\`)"

urldecode() { local s="${1//+/ }"; printf '%b' "${s//%/\\x}"; }

if [[ -z "$PG_HOST" ]]; then
  [[ -n "$PG_URL" ]] || PG_URL="${SLUICE_TEST_POSTGRES_URL:-$(env_file_value SLUICE_TEST_POSTGRES_URL)}"
  [[ -n "$PG_URL" ]] || die "no --pg-url or --pg-host (and no SLUICE_TEST_POSTGRES_URL; run \`make services\`)"
  # postgres://user:password@host:port/db (query parameters are ignored)
  re='^postgres(ql)?://([^:@/]+)(:([^@/]*))?@([^:/?]+)(:([0-9]+))?/([^?]+)'
  [[ "$PG_URL" =~ $re ]] || die "--pg-url must look like postgres://user:password@host:port/db"
  PG_USER="$(urldecode "${BASH_REMATCH[2]}")"
  PGPASSWORD="$(urldecode "${BASH_REMATCH[4]}")"
  PG_HOST="${BASH_REMATCH[5]}"
  PG_PORT="${BASH_REMATCH[7]:-5432}"
  PG_DB="$(urldecode "${BASH_REMATCH[8]}")"
  unset re
else
  PG_PORT="${PG_PORT:-5432}"
  [[ -n "$PG_USER" && -n "$PG_DB" ]] || die "--pg-host needs --pg-user and --pg-db (password in PGPASSWORD)"
  PGPASSWORD="${PGPASSWORD:-}"
fi
# psql reads PGPASSWORD; the worker resolves the connector's password from its
# environment (EnvVarConfigProvider), so the password is in no file or argument.
export PGPASSWORD
export SLUICE_CONNECT_PG_PASSWORD="$PGPASSWORD"
SCHEMA_NAME="${TABLE%%.*}" TABLE_NAME="${TABLE#*.}"

pg() { psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" "$@"; }
row_count() { pg -At -c "SELECT count(*) FROM \"$SCHEMA_NAME\".\"$TABLE_NAME\""; }

if [[ -n "$CREATE_COLUMNS" ]]; then
  pg -c "CREATE TABLE IF NOT EXISTS \"$SCHEMA_NAME\".\"$TABLE_NAME\" ($CREATE_COLUMNS)" >&2 \
    || die "could not create $TABLE"
fi
row_count >/dev/null 2>&1 || die "cannot read $TABLE at $PG_HOST:$PG_PORT/$PG_DB (does it exist?)"

# --- run dir and cleanup -----------------------------------------------------

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/sluice-connect.XXXXXX")"
CONNECTOR="sluice-bench-jdbc-$$-$RANDOM"
GROUP="connect-$CONNECTOR"
WORKER_PID=""
STARTED=0

stop_worker() {
  [[ -n "$WORKER_PID" ]] || return 0
  if kill -0 "$WORKER_PID" 2>/dev/null; then
    kill -TERM "$WORKER_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 150; i++)); do
      kill -0 "$WORKER_PID" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$WORKER_PID" 2>/dev/null; then
      err "worker still alive after 30s; sending SIGKILL"
      kill -KILL "$WORKER_PID" 2>/dev/null || true
    fi
  fi
  wait "$WORKER_PID" 2>/dev/null || true
  WORKER_PID=""
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_worker
  if ((STARTED)); then
    probe delete-group "$BOOTSTRAP" "$GROUP" >/dev/null 2>&1 || err "could not delete consumer group $GROUP"
  fi
  if [[ -f "$RUN_DIR/worker.log" ]] && { ((rc != 0)) || [[ "${SLUICE_CONNECT_KEEP:-0}" == 1 ]]; }; then
    err "run dir kept: $RUN_DIR (worker.log, configs)"
  else
    rm -rf "$RUN_DIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  err "error: $*"
  if [[ -f "$RUN_DIR/worker.log" ]]; then
    err "last lines of the worker log:"
    grep -E ' (ERROR|WARN) |Exception|Caused by' "$RUN_DIR/worker.log" | tail -n 15 >&2 || true
  fi
  exit 1
}

# --- topic -------------------------------------------------------------------

OFFSETS="$(probe offsets "$BOOTSTRAP" "$TOPIC")" || die "cannot read the offsets of topic $TOPIC at $BOOTSTRAP"
EVENTS=0
declare -A END_OFFSET=()
while read -r part begin end; do
  END_OFFSET[$part]="$end"
  EVENTS=$((EVENTS + end - begin))
done <<<"$OFFSETS"
((EVENTS > 0)) || die "topic $TOPIC is empty"
if [[ -z "$TASKS" ]]; then
  TASKS="${#END_OFFSET[@]}"
  cores="$(nproc 2>/dev/null || echo 1)"
  ((TASKS <= cores)) || TASKS="$cores"
fi
[[ "$TASKS" =~ ^[1-9][0-9]*$ ]] || die "--tasks must be a positive integer"
say "topic $TOPIC: $EVENTS events in ${#END_OFFSET[@]} partition(s); $TASKS task(s)"

# --- configs -----------------------------------------------------------------

# The REST API listens on a port the kernel picks; its address is read from the
# worker's log once it is up.
REST=""

cat >"$RUN_DIR/worker.properties" <<EOF
bootstrap.servers=$BOOTSTRAP
listeners=http://127.0.0.1:0
plugin.path=$PLUGIN_PATH
# Every plugin here has ServiceLoader manifests: no class scan at startup.
plugin.discovery=service_load
offset.storage.file.filename=$RUN_DIR/connect.offsets
# Sink offsets go to the consumer group; commit often so "all consumed" is seen
# promptly (the Debezium task flushes its buffers at the end of every put(),
# so commits do not cut batches short).
offset.flush.interval.ms=200
key.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=true
config.providers=env
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
consumer.auto.offset.reset=earliest
consumer.max.poll.records=$MAX_POLL
consumer.fetch.min.bytes=1048576
consumer.fetch.max.wait.ms=100
consumer.fetch.max.bytes=104857600
consumer.max.partition.fetch.bytes=52428800
consumer.receive.buffer.bytes=4194304
EOF
for kv in "${WORKER_EXTRA[@]}"; do
  [[ "$kv" == *=* ]] || die "--worker-set needs KEY=VALUE, got '$kv'"
  echo "$kv" >>"$RUN_DIR/worker.properties"
done

{
  cat <<EOF
name=$CONNECTOR
connector.class=io.debezium.connector.jdbc.JdbcSinkConnector
tasks.max=$TASKS
topics=$TOPIC
connection.url=jdbc:postgresql://$PG_HOST:$PG_PORT/$PG_DB
connection.username=$PG_USER
connection.password=\${env:SLUICE_CONNECT_PG_PASSWORD}
insert.mode=upsert
delete.enabled=false
primary.key.mode=$PK_MODE
schema.evolution=none
collection.name.format=$TABLE
quote.identifiers=true
batch.size=$BATCH
errors.tolerance=none
# Tuned (docs/bench-connect.md): one INSERT ... SELECT FROM unnest(...) ON CONFLICT
# per batch instead of a JDBC batch of single-row upserts; the reduction buffer
# keeps the latest record per key in a batch, which that statement needs.
dialect.postgres.unnest.insert.enabled=true
use.reduction.buffer=true
EOF
  [[ -z "$PK_FIELDS" ]] || echo "primary.key.fields=$PK_FIELDS"
  for kv in "${EXTRA[@]}"; do
    [[ "$kv" == *=* ]] || die "--set needs KEY=VALUE, got '$kv'"
    echo "$kv"
  done
} >"$RUN_DIR/connector.properties"

cat >"$RUN_DIR/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.config.name = org.apache.kafka.common.config
logger.config.level = WARN
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
logger.hibernate.name = org.hibernate
logger.hibernate.level = WARN
EOF

# --- run ---------------------------------------------------------------------

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# Sets REST from the worker's log once the REST server listens.
find_rest() {
  [[ -n "$REST" ]] && return 0
  REST="$(sed -n 's|.*REST server listening at \(http://[^/, ]*\).*|\1|p' "$RUN_DIR/worker.log" | head -n 1)"
  [[ -n "$REST" ]]
}

# GET $1 from the worker's REST API (fails until its address is known).
rest() {
  [[ -n "$REST" ]] || return 1
  curl -sS --max-time 5 "$REST$1" 2>/dev/null
}

# True when every partition's committed offset has reached its end offset.
all_committed() {
  local body part off
  body="$(rest "/connectors/$CONNECTOR/offsets")" || return 1
  declare -A seen=()
  # {"offsets":[{"partition":{"kafka_partition":0,"kafka_topic":"t"},"offset":{"kafka_offset":123}}]}
  while read -r part off; do
    [[ -n "$part" ]] && seen[$part]="$off"
  done < <(grep -oE '"kafka_(partition|offset)":[0-9]+' <<<"$body" | cut -d: -f2 | paste -d' ' - -)
  for part in "${!END_OFFSET[@]}"; do
    [[ "${END_OFFSET[$part]}" == 0 ]] && continue
    [[ -n "${seen[$part]:-}" ]] || return 1
    ((seen[$part] >= END_OFFSET[$part])) || return 1
  done
  return 0
}

# RUNNING when all tasks run, FAILED when one failed, else something else.
tasks_state() {
  local states
  states="$(rest "/connectors/$CONNECTOR/status" | grep -o '"tasks":\[[^]]*' | grep -o '"state":"[A-Z]*"' | cut -d'"' -f4)"
  if grep -qx FAILED <<<"$states"; then
    echo FAILED
  elif [[ "$(grep -cx RUNNING <<<"$states")" == "$TASKS" ]]; then
    echo RUNNING
  else
    echo STARTING
  fi
}

proc_cpu_seconds() { # utime+stime of $1 in seconds
  local tck stat
  tck="$(getconf CLK_TCK)"
  stat="$(cat "/proc/$1/stat")" || return 1
  stat="${stat##*) }"
  # Fields after "comm": state=1 ... utime=12 stime=13
  awk -v t="$tck" '{ printf "%.2f", ($12 + $13) / t }' <<<"$stat"
}

proc_peak_rss_kib() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

ROWS_BEFORE="$(row_count)"
say "starting the worker (connector $CONNECTOR, batch.size $BATCH, max.poll.records $MAX_POLL)"
T0="$(now)"
STARTED=1
# shellcheck disable=SC2086 # HEAP_OPTS is a word list
"$JAVA" $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
  -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="$RUN_DIR/log4j2.properties" \
  -cp "$WORKER_LIBS/*" org.apache.kafka.connect.cli.ConnectStandalone \
  "$RUN_DIR/worker.properties" "$RUN_DIR/connector.properties" \
  </dev/null >"$RUN_DIR/worker.log" 2>&1 &
WORKER_PID=$!

deadline=$((SECONDS + TIMEOUT))
T_RUNNING="" CPU_RUNNING=0
while [[ -z "$T_RUNNING" ]]; do
  kill -0 "$WORKER_PID" 2>/dev/null || fail "the Connect worker exited during startup"
  state=""
  if find_rest; then state="$(tasks_state || true)"; fi
  case "$state" in
    RUNNING) T_RUNNING="$(now)"; CPU_RUNNING="$(proc_cpu_seconds "$WORKER_PID")" ;;
    FAILED) fail "a task of the connector failed to start: $(rest "/connectors/$CONNECTOR/status" | grep -o '"trace":"[^\\"]*' | head -n 1 | cut -d'"' -f4)" ;;
  esac
  ((SECONDS < deadline)) || fail "the connector's tasks were not RUNNING within ${TIMEOUT}s"
  [[ -n "$T_RUNNING" ]] || sleep 0.1
done
say "REST API at $REST; tasks RUNNING after $(elapsed "$T0" "$T_RUNNING")s; waiting for $EVENTS events${EXPECT:+ and $EXPECT rows}"

T_DONE="" T_FIRST="" ROWS="" CPU="" RSS=""
while [[ -z "$T_DONE" ]]; do
  kill -0 "$WORKER_PID" 2>/dev/null || fail "the Connect worker exited while loading"
  if ((ROWS_BEFORE == 0)) && [[ -z "$T_FIRST" ]] && [[ "$(row_count 2>/dev/null || echo 0)" != 0 ]]; then
    T_FIRST="$(now)"
  fi
  if all_committed; then
    t="$(now)"
    if [[ -z "$EXPECT" ]] || [[ "$(row_count 2>/dev/null || true)" == "$EXPECT" ]]; then
      T_DONE="$t"
      CPU="$(proc_cpu_seconds "$WORKER_PID")"
      RSS="$(proc_peak_rss_kib "$WORKER_PID")"
    fi
  else
    state="$(tasks_state || true)"
    if [[ "$state" == FAILED ]]; then
      fail "a task of the connector failed while loading"
    fi
  fi
  ((SECONDS < deadline)) || fail "not all of $TOPIC was consumed${EXPECT:+ into $EXPECT rows} within ${TIMEOUT}s (rows now: $(row_count 2>/dev/null || echo '?'))"
  [[ -n "$T_DONE" ]] || sleep 0.1
done
stop_worker
ROWS="$(row_count)" || fail "cannot count the rows of $TABLE"

SECONDS_TOTAL="$(elapsed "$T0" "$T_DONE")"
STARTUP="$(elapsed "$T0" "$T_RUNNING")"
LOAD="$(elapsed "$T_RUNNING" "$T_DONE")"
FIRST=null
if ((ROWS_BEFORE == 0)); then FIRST="$(elapsed "$T0" "${T_FIRST:-$T_DONE}")"; fi
say "done: $EVENTS events, $ROWS rows in ${SECONDS_TOTAL}s (startup ${STARTUP}s, load ${LOAD}s)"
awk -v e="$EVENTS" -v r="$ROWS" -v s="$SECONDS_TOTAL" -v u="$STARTUP" -v l="$LOAD" \
  -v c="$CPU" -v cr="$CPU_RUNNING" -v m="$RSS" -v b="$BATCH" -v f="$FIRST" 'BEGIN {
  printf "{\"events\":%d,\"rows\":%d,\"seconds\":%.3f,\"startup_seconds\":%.3f,\"load_seconds\":%.3f,", e, r, s, u, l
  printf "\"first_row_seconds\":%s,", f
  printf "\"events_per_s\":%.1f,\"load_events_per_s\":%.1f,", e / s, (l > 0 ? e / l : 0)
  printf "\"cpu_seconds\":%.2f,\"load_cpu_seconds\":%.2f,\"peak_rss_kib\":%d,\"batch_size\":%d}\n", c, c - cr, m, b
}'
