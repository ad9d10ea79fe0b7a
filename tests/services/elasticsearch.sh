#!/usr/bin/env bash
# Run a local, real single-node Elasticsearch 7.17 (plain HTTP, no x-pack,
# loopback only) for Sluice's tests. No Docker and no distribution tarball: the
# server jars and those of its standard modules that are published (netty4,
# mapper-extras, reindex) come from Maven Central through `mvn` (see
# elasticsearch/pom.xml), are cached outside the repo, and a small launcher
# (elasticsearch/SluiceElasticsearchLauncher.java, compiled once with javac)
# starts an org.elasticsearch.node.Node with the modules as classpath plugins.
#
# Not available (not on Maven Central for 7.x): analysis-common (only the
# built-in analyzers such as "standard", "simple", "whitespace", "keyword"
# work) and lang-painless (no scripts). There is no x-pack on the classpath,
# so there is no security, ILM, SQL, ... either.
#
# Usage: tests/services/elasticsearch.sh start|stop|status|restart|url
#
# Environment:
#   SLUICE_ROOT                          state root (default: repo root);
#                                        config, data, logs and pid live in
#                                        $SLUICE_ROOT/.sluice/elasticsearch/
#   SLUICE_CACHE                         download cache (default: ~/.cache/sluice)
#   SLUICE_ELASTICSEARCH_PORT            HTTP port (default 19201)
#   SLUICE_ELASTICSEARCH_TRANSPORT_PORT  transport port (default 19301)
#   SLUICE_ELASTICSEARCH_VERSION         7.x version (default 7.17.29)
#   SLUICE_ELASTICSEARCH_JAVA_HOME       JDK to use (default: JAVA_HOME, else
#                                        the `java` on PATH; Java 17 is tested)
#   SLUICE_ELASTICSEARCH_HEAP            JVM heap options
#                                        (default: -Xms512m -Xmx512m)
#   SLUICE_ELASTICSEARCH_START_TIMEOUT   seconds to wait for health (default 120)
#   SLUICE_ELASTICSEARCH_STOP_TIMEOUT    seconds before SIGKILL on stop (default 30)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
SLUICE_ROOT="${SLUICE_ROOT:-$REPO_ROOT}"
SLUICE_CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"

PORT="${SLUICE_ELASTICSEARCH_PORT:-19201}"
TRANSPORT_PORT="${SLUICE_ELASTICSEARCH_TRANSPORT_PORT:-19301}"
ES_VERSION="${SLUICE_ELASTICSEARCH_VERSION:-7.17.29}"
HEAP_OPTS="${SLUICE_ELASTICSEARCH_HEAP:--Xms512m -Xmx512m}"
START_TIMEOUT="${SLUICE_ELASTICSEARCH_START_TIMEOUT:-120}"
STOP_TIMEOUT="${SLUICE_ELASTICSEARCH_STOP_TIMEOUT:-30}"

SRC_DIR="$SCRIPT_DIR/elasticsearch"
POM="$SRC_DIR/pom.xml"
LAUNCHER_SRC="$SRC_DIR/SluiceElasticsearchLauncher.java"
LAUNCHER_CLASS="SluiceElasticsearchLauncher"

ESDIR="$SLUICE_ROOT/.sluice/elasticsearch"
CONF_DIR="$ESDIR/config"
DATA_DIR="$ESDIR/data"
LOGS_DIR="$ESDIR/logs"
TMP_DIR="$ESDIR/tmp"
PID_FILE="$ESDIR/elasticsearch.pid"
LOG_FILE="$LOGS_DIR/elasticsearch.log"
URL="http://127.0.0.1:$PORT"

say() { echo "[elasticsearch] $*"; }
err() { echo "[elasticsearch] $*" >&2; }
die() { err "error: $*"; exit 1; }

# --- java ------------------------------------------------------------------

# Prints the major version of the JDK/JRE at $1 (a java home), or nothing.
java_major() {
  local v=""
  [[ -x "$1/bin/java" ]] || return 1
  # The JDK's release file is much cheaper than starting a JVM.
  if [[ -f "$1/release" ]]; then
    v="$(sed -n 's/^JAVA_VERSION="\([0-9.]*\).*/\1/p' "$1/release" | head -n 1)"
    v="${v#1.}"
    v="${v%%.*}"
  fi
  if ! [[ "$v" =~ ^[0-9]+$ ]]; then
    v="$("$1/bin/java" -XshowSettings:properties -version 2>&1 |
      sed -n 's/^ *java\.specification\.version = //p' | head -n 1)"
    v="${v#1.}"
  fi
  [[ "$v" =~ ^[0-9]+$ ]] || return 1
  echo "$v"
}

# Prints the java home to run Elasticsearch with.
find_java() {
  local h
  if [[ -n "${SLUICE_ELASTICSEARCH_JAVA_HOME:-}" ]]; then
    [[ -x "$SLUICE_ELASTICSEARCH_JAVA_HOME/bin/java" ]] ||
      die "SLUICE_ELASTICSEARCH_JAVA_HOME=$SLUICE_ELASTICSEARCH_JAVA_HOME has no bin/java"
    echo "$SLUICE_ELASTICSEARCH_JAVA_HOME"; return 0
  fi
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    echo "$JAVA_HOME"; return 0
  fi
  h="$(command -v java)" || return 1
  h="$(readlink -f "$h")"
  echo "${h%/bin/java}"
}

# --- jars + launcher -------------------------------------------------------

ES_JAVA_HOME=""
LIBS=""
LAUNCHER_DIR=""

# Sets ES_JAVA_HOME/LIBS, fetching the jars of $ES_VERSION unless cached.
ensure_jars() {
  local v="$ES_VERSION" dir log4j
  ES_JAVA_HOME="$(find_java)" || die "java not found"
  dir="$SLUICE_CACHE/elasticsearch-$v"
  if [[ -f "$dir/.complete" && -d "$dir/lib" ]]; then
    LIBS="$dir/lib"; return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed to fetch Elasticsearch)"
  say "fetching Elasticsearch $v and its modules from Maven Central (cache: $SLUICE_CACHE)"
  mkdir -p "$dir"
  rm -rf "$dir/lib.tmp"
  # 1) server + modules; 2) log4j-core at the exact log4j-api version the
  # server resolved to (Elasticsearch only depends on the API).
  if mvn -B -q -f "$POM" \
      -Dmaven.repo.local="$SLUICE_CACHE/m2" \
      -Delasticsearch.version="$v" \
      dependency:copy-dependencies \
      -DincludeScope=runtime \
      -DoutputDirectory="$dir/lib.tmp" >"$dir/mvn.log" 2>&1 \
     && [[ -f "$dir/lib.tmp/elasticsearch-$v.jar" ]] \
     && log4j="$(find "$dir/lib.tmp" -maxdepth 1 -name 'log4j-api-*.jar' -printf '%f\n' |
                 sed 's/^log4j-api-\(.*\)\.jar$/\1/' | head -n 1)" \
     && [[ -n "$log4j" ]] \
     && mvn -B -q -f "$POM" \
      -Dmaven.repo.local="$SLUICE_CACHE/m2" \
      dependency:copy \
      -Dartifact="org.apache.logging.log4j:log4j-core:$log4j" \
      -DoutputDirectory="$dir/lib.tmp" >>"$dir/mvn.log" 2>&1 \
     && [[ -f "$dir/lib.tmp/log4j-core-$log4j.jar" ]]; then
    rm -rf "${dir:?}/lib" "${dir:?}/launcher"
    mv "$dir/lib.tmp" "$dir/lib"
    touch "$dir/.complete"
    LIBS="$dir/lib"
    say "Elasticsearch $v ready ($(find "$dir/lib" -maxdepth 1 -name '*.jar' | wc -l) jars)"
    return 0
  fi
  err "could not fetch Elasticsearch $v (see $dir/mvn.log):"
  tail -n 15 "$dir/mvn.log" >&2 || true
  rm -rf "$dir/lib.tmp"
  die "Elasticsearch $v could not be fetched"
}

# Compiles the launcher into the cache (once per Elasticsearch version and
# launcher source); sets LAUNCHER_DIR.
ensure_launcher() {
  local dir="$SLUICE_CACHE/elasticsearch-$ES_VERSION/launcher" sum
  sum="$(sha256sum "$LAUNCHER_SRC" | cut -d' ' -f1)"
  LAUNCHER_DIR="$dir"
  if [[ -f "$dir/.source-sha256" && "$(cat "$dir/.source-sha256")" == "$sum" \
        && -f "$dir/$LAUNCHER_CLASS.class" ]]; then
    return 0
  fi
  [[ -x "$ES_JAVA_HOME/bin/javac" ]] || die "javac not found in $ES_JAVA_HOME (a JDK is needed)"
  say "compiling launcher"
  rm -rf "$dir"
  mkdir -p "$dir"
  "$ES_JAVA_HOME/bin/javac" -nowarn -encoding UTF-8 -cp "$LIBS/*" -d "$dir" "$LAUNCHER_SRC" \
    || { rm -rf "$dir"; die "compiling $LAUNCHER_SRC failed"; }
  echo "$sum" >"$dir/.source-sha256"
}

# --- config ----------------------------------------------------------------

write_config() {
  mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOGS_DIR" "$TMP_DIR" "$ESDIR/plugins" "$ESDIR/modules"
  # Data written by another version may not be readable: it is test data, so
  # start over.
  if [[ -f "$DATA_DIR/.sluice-version" && "$(cat "$DATA_DIR/.sluice-version")" != "$ES_VERSION" ]]; then
    say "data dir was written by Elasticsearch $(cat "$DATA_DIR/.sluice-version"); wiping it for $ES_VERSION"
    rm -rf "$DATA_DIR"
    mkdir -p "$DATA_DIR"
  fi
  echo "$ES_VERSION" >"$DATA_DIR/.sluice-version"

  # Regenerated on every start so port overrides take effect. There is no
  # x-pack on the classpath, so security is off without any xpack.* setting
  # (which would be rejected as unknown).
  cat >"$CONF_DIR/elasticsearch.yml.tmp" <<EOF
# Generated by tests/services/elasticsearch.sh -- edits are overwritten on start.
cluster.name: sluice-test
node.name: sluice-node
path.data: $DATA_DIR
path.logs: $LOGS_DIR
network.host: 127.0.0.1
http.port: $PORT
transport.port: $TRANSPORT_PORT
discovery.type: single-node
# The disk may be fairly full; never block writes or shard allocation on it.
cluster.routing.allocation.disk.threshold_enabled: false
# Test node: allow wildcard deletes.
action.destructive_requires_name: false
EOF
  mv "$CONF_DIR/elasticsearch.yml.tmp" "$CONF_DIR/elasticsearch.yml"

  cat >"$CONF_DIR/log4j2.properties" <<'EOF'
# Generated by tests/services/elasticsearch.sh. Everything goes to stdout,
# which the script redirects to logs/elasticsearch.log.
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.deprecation.name = org.elasticsearch.deprecation
logger.deprecation.level = warn
EOF
}

# --- process helpers -------------------------------------------------------

# Prints the pid from the pid file if that process is alive and is our node.
live_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(tr -d '[:space:]' <"$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse: the command line must be our launcher + config.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
    grep -qF -- "-Dsluice.elasticsearch.config=$CONF_DIR " || return 1
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# GET $1 (a path) from the node; prints the body.
http_get() {
  if command -v curl >/dev/null; then
    curl -sS --max-time 10 "$URL$1" 2>/dev/null
  else
    # Fallback without curl: HTTP/1.0 over bash's /dev/tcp.
    (
      exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
      printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
      timeout 10 cat <&3 | sed '1,/^\r\{0,1\}$/d'
    ) 2>/dev/null
  fi
}

# Cluster health is green or yellow.
healthy() {
  local body
  body="$(http_get "/_cluster/health?wait_for_status=yellow&timeout=2s")" || return 1
  [[ "$body" =~ \"status\":\"(green|yellow)\" && "$body" == *'"timed_out":false'* ]]
}

dump_log() {
  if [[ -f "$LOG_FILE" ]]; then
    err "last 50 lines of $LOG_FILE:"
    tail -n 50 "$LOG_FILE" >&2 || true
  fi
}

# --- subcommands -----------------------------------------------------------

# Serialises start/stop of this state dir (concurrent starts would race on
# the pid file).
take_lock() {
  mkdir -p "$ESDIR"
  if command -v flock >/dev/null; then
    exec 9>"$ESDIR/.lock"
    flock -w "$((START_TIMEOUT + STOP_TIMEOUT + 60))" 9 || die "could not lock $ESDIR/.lock"
  fi
}

cmd_start() {
  local pid=""
  take_lock
  if pid="$(live_pid)"; then
    if healthy; then
      say "already running and healthy (pid $pid, $URL)"
      return 0
    fi
    say "pid $pid is alive but $URL is not healthy yet; waiting"
  else
    pid=""
    if [[ -f "$PID_FILE" ]]; then
      say "removing stale pid file"
      rm -f "$PID_FILE"
    fi
    if port_open "$PORT" || port_open "$TRANSPORT_PORT"; then
      die "port $PORT or $TRANSPORT_PORT is already in use by another process"
    fi
  fi

  if [[ -z "$pid" ]]; then
    ensure_jars
    ensure_launcher
    write_config
    if [[ -f "$LOG_FILE" ]]; then mv -f "$LOG_FILE" "$LOG_FILE.1"; fi

    local major
    major="$(java_major "$ES_JAVA_HOME")" || major="?"
    say "starting Elasticsearch $ES_VERSION on $URL (transport 127.0.0.1:$TRANSPORT_PORT, java $major)"
    # The inner shell records its own pid, then execs java in place, so the pid
    # file names the JVM itself. setsid detaches it from our session.
    # shellcheck disable=SC2016,SC2086
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
      "$ES_JAVA_HOME/bin/java" $HEAP_OPTS -Xss1m \
      -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -XX:-OmitStackTraceInFastThrow \
      -Djava.locale.providers=SPI,COMPAT \
      -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
      -Djava.io.tmpdir="$TMP_DIR" \
      -Djna.tmpdir="$TMP_DIR" \
      -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
      -Dio.netty.recycler.maxCapacityPerThread=0 \
      -Dio.netty.allocator.numDirectArenas=0 \
      -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
      -Dlog4j2.formatMsgNoLookups=true \
      -Dsluice.elasticsearch.home="$ESDIR" \
      -Dsluice.elasticsearch.config="$CONF_DIR" \
      -cp "$LAUNCHER_DIR:$LIBS/*" "$LAUNCHER_CLASS" \
      </dev/null >"$LOG_FILE" 2>&1 9>&- &
    disown || true
  fi

  local start=$SECONDS deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ! live_pid >/dev/null; then
      # Give the wrapper a moment to write the pid file on the first pass.
      sleep 0.5
      if ! live_pid >/dev/null; then
        err "Elasticsearch exited during startup"
        dump_log
        rm -f "$PID_FILE"
        exit 1
      fi
    fi
    if port_open "$PORT" && healthy; then
      break
    fi
    if ((SECONDS >= deadline)); then
      err "Elasticsearch did not become healthy within ${START_TIMEOUT}s"
      dump_log
      exit 1
    fi
    sleep 1
  done
  say "ready on $URL (pid $(live_pid), Elasticsearch $ES_VERSION, $((SECONDS - start))s)"
}

cmd_stop() {
  local pid
  take_lock
  if ! pid="$(live_pid)"; then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  say "stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      err "still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.2
  done
  rm -f "$PID_FILE"
  say "stopped"
}

cmd_status() {
  local pid
  if ! pid="$(live_pid)"; then
    say "not running"
    return 1
  fi
  if ! port_open "$PORT"; then
    say "pid $pid alive but $URL not answering"
    return 1
  fi
  if healthy; then
    say "healthy (pid $pid, $URL)"
    return 0
  fi
  say "pid $pid alive but cluster health is not green/yellow"
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|status|restart|url" >&2; exit 2 ;;
esac
