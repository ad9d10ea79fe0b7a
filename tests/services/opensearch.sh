#!/usr/bin/env bash
# Run a local, real single-node OpenSearch (plain HTTP, no security plugin,
# loopback only) for Sluice's tests. No Docker and no distribution tarball: the
# server jars and its standard modules come from Maven Central through `mvn`
# (see opensearch/pom.xml), are cached outside the repo, and a small launcher
# (opensearch/SluiceOpenSearchLauncher.java, compiled once with javac) starts an
# org.opensearch.node.Node with the modules as classpath plugins.
#
# Version: OpenSearch 3.x needs Java 21+. If a JDK >= 21 is found (see
# SLUICE_OPENSEARCH_JAVA_HOME below) the default is 3.9.0, otherwise 2.19.6 on
# the default Java 17.
#
# Usage: tests/services/opensearch.sh start|stop|status|restart|url
#
# Environment:
#   SLUICE_ROOT                     state root (default: repo root); config,
#                                   data, logs and pid live in
#                                   $SLUICE_ROOT/.sluice/opensearch/
#   SLUICE_CACHE                    download cache (default: ~/.cache/sluice)
#   SLUICE_OPENSEARCH_PORT          HTTP port (default 19200)
#   SLUICE_OPENSEARCH_TRANSPORT_PORT transport port (default 19300)
#   SLUICE_OPENSEARCH_VERSION       version(s) to try in order, space separated
#                                   (default: "3.9.0 2.19.6" with Java 21+,
#                                   else "2.19.6")
#   SLUICE_OPENSEARCH_JAVA_HOME     JDK to use for 3.x (default: JAVA_HOME if it
#                                   is 21+, else the newest JDK >= 21 under
#                                   /usr/lib/jvm)
#   SLUICE_OPENSEARCH_HEAP          JVM heap options (default: -Xms1g -Xmx1g)
#   SLUICE_OPENSEARCH_START_TIMEOUT seconds to wait for health (default 120)
#   SLUICE_OPENSEARCH_STOP_TIMEOUT  seconds before SIGKILL on stop (default 30)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
SLUICE_ROOT="${SLUICE_ROOT:-$REPO_ROOT}"
SLUICE_CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"

PORT="${SLUICE_OPENSEARCH_PORT:-19200}"
TRANSPORT_PORT="${SLUICE_OPENSEARCH_TRANSPORT_PORT:-19300}"
HEAP_OPTS="${SLUICE_OPENSEARCH_HEAP:--Xms1g -Xmx1g}"
START_TIMEOUT="${SLUICE_OPENSEARCH_START_TIMEOUT:-120}"
STOP_TIMEOUT="${SLUICE_OPENSEARCH_STOP_TIMEOUT:-30}"

SRC_DIR="$SCRIPT_DIR/opensearch"
POM="$SRC_DIR/pom.xml"
LAUNCHER_SRC="$SRC_DIR/SluiceOpenSearchLauncher.java"
LAUNCHER_CLASS="SluiceOpenSearchLauncher"

OSDIR="$SLUICE_ROOT/.sluice/opensearch"
CONF_DIR="$OSDIR/config"
DATA_DIR="$OSDIR/data"
LOGS_DIR="$OSDIR/logs"
TMP_DIR="$OSDIR/tmp"
PID_FILE="$OSDIR/opensearch.pid"
LOG_FILE="$LOGS_DIR/opensearch.log"
URL="http://127.0.0.1:$PORT"

say() { echo "[opensearch] $*"; }
err() { echo "[opensearch] $*" >&2; }
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

# Prints a java home with Java >= 21, or fails.
find_java21() {
  local h m
  for h in "${SLUICE_OPENSEARCH_JAVA_HOME:-}" "${JAVA_HOME:-}"; do
    [[ -n "$h" ]] || continue
    m="$(java_major "$h" 2>/dev/null)" || continue
    if ((m >= 21)); then echo "$h"; return 0; fi
  done
  if [[ -n "${SLUICE_OPENSEARCH_JAVA_HOME:-}" ]]; then
    err "SLUICE_OPENSEARCH_JAVA_HOME=$SLUICE_OPENSEARCH_JAVA_HOME is not a JDK >= 21"
  fi
  local best="" best_m=0
  for h in /usr/lib/jvm/*/; do
    h="${h%/}"
    [[ -L "$h" ]] && continue
    m="$(java_major "$h" 2>/dev/null)" || continue
    if ((m >= 21 && m > best_m)); then best="$h"; best_m=$m; fi
  done
  [[ -n "$best" ]] || return 1
  echo "$best"
}

# Prints the java home used for OpenSearch 2.x (Java 11+; 17 preferred).
find_java_default() {
  local h
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    echo "$JAVA_HOME"; return 0
  fi
  h="$(command -v java)" || return 1
  h="$(readlink -f "$h")"
  echo "${h%/bin/java}"
}

# --- jars + launcher -------------------------------------------------------

OS_VERSION=""
OS_JAVA_HOME=""
LIBS=""
LAUNCHER_DIR=""

# Sets OS_VERSION/OS_JAVA_HOME/LIBS: the first version out of the list that is
# cached or can be fetched, together with a JDK that runs it.
ensure_jars() {
  local java21="" versions v dir log4j
  java21="$(find_java21)" || java21=""
  if [[ -n "${SLUICE_OPENSEARCH_VERSION:-}" ]]; then
    versions="$SLUICE_OPENSEARCH_VERSION"
  elif [[ -n "$java21" ]]; then
    versions="3.9.0 2.19.6"
  else
    versions="2.19.6"
  fi
  for v in $versions; do
    if [[ "${v%%.*}" -ge 3 ]]; then
      if [[ -z "$java21" ]]; then
        err "OpenSearch $v needs Java 21+, none found; skipping it"
        continue
      fi
      OS_JAVA_HOME="$java21"
    else
      OS_JAVA_HOME="$(find_java_default)" || die "java not found"
    fi
    dir="$SLUICE_CACHE/opensearch-$v"
    if [[ -f "$dir/.complete" && -d "$dir/lib" ]]; then
      OS_VERSION="$v"; LIBS="$dir/lib"; return 0
    fi
    command -v mvn >/dev/null || die "mvn not found (needed to fetch OpenSearch)"
    say "fetching OpenSearch $v and its modules from Maven Central (cache: $SLUICE_CACHE)"
    mkdir -p "$dir"
    rm -rf "$dir/lib.tmp"
    # 1) server + modules; 2) log4j-core at the exact log4j-api version the
    # server resolved to (OpenSearch only depends on the API).
    if mvn -B -q -f "$POM" \
        -Dmaven.repo.local="$SLUICE_CACHE/m2" \
        -Dopensearch.version="$v" \
        dependency:copy-dependencies \
        -DincludeScope=runtime \
        -DexcludeClassifiers=linux-aarch_64,osx-aarch_64,osx-x86_64,windows-x86_64 \
        -DoutputDirectory="$dir/lib.tmp" >"$dir/mvn.log" 2>&1 \
       && [[ -f "$dir/lib.tmp/opensearch-$v.jar" ]] \
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
      OS_VERSION="$v"; LIBS="$dir/lib"
      say "OpenSearch $v ready ($(find "$dir/lib" -maxdepth 1 -name '*.jar' | wc -l) jars)"
      return 0
    fi
    err "could not fetch OpenSearch $v (see $dir/mvn.log):"
    tail -n 15 "$dir/mvn.log" >&2 || true
    rm -rf "$dir/lib.tmp"
  done
  die "no OpenSearch version out of '$versions' could be fetched"
}

# Compiles the launcher into the cache (once per OpenSearch version and
# launcher source); sets LAUNCHER_DIR.
ensure_launcher() {
  local dir="$SLUICE_CACHE/opensearch-$OS_VERSION/launcher" sum
  sum="$(sha256sum "$LAUNCHER_SRC" | cut -d' ' -f1)"
  LAUNCHER_DIR="$dir"
  if [[ -f "$dir/.source-sha256" && "$(cat "$dir/.source-sha256")" == "$sum" \
        && -f "$dir/$LAUNCHER_CLASS.class" ]]; then
    return 0
  fi
  [[ -x "$OS_JAVA_HOME/bin/javac" ]] || die "javac not found in $OS_JAVA_HOME (a JDK is needed)"
  say "compiling launcher"
  rm -rf "$dir"
  mkdir -p "$dir"
  "$OS_JAVA_HOME/bin/javac" -nowarn -encoding UTF-8 -cp "$LIBS/*" -d "$dir" "$LAUNCHER_SRC" \
    || { rm -rf "$dir"; die "compiling $LAUNCHER_SRC failed"; }
  echo "$sum" >"$dir/.source-sha256"
}

# --- config ----------------------------------------------------------------

write_config() {
  mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOGS_DIR" "$TMP_DIR" "$OSDIR/plugins" "$OSDIR/modules"
  # Data written by another (major) version cannot be read back: it is test
  # data, so start over.
  if [[ -f "$DATA_DIR/.sluice-version" && "$(cat "$DATA_DIR/.sluice-version")" != "$OS_VERSION" ]]; then
    say "data dir was written by OpenSearch $(cat "$DATA_DIR/.sluice-version"); wiping it for $OS_VERSION"
    rm -rf "$DATA_DIR"
    mkdir -p "$DATA_DIR"
  fi
  echo "$OS_VERSION" >"$DATA_DIR/.sluice-version"

  # Regenerated on every start so port overrides take effect.
  cat >"$CONF_DIR/opensearch.yml.tmp" <<EOF
# Generated by tests/services/opensearch.sh -- edits are overwritten on start.
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
# Test node: keep it lean and quiet.
action.destructive_requires_name: false
EOF
  mv "$CONF_DIR/opensearch.yml.tmp" "$CONF_DIR/opensearch.yml"

  cat >"$CONF_DIR/log4j2.properties" <<'EOF'
# Generated by tests/services/opensearch.sh. Everything goes to stdout, which
# the script redirects to logs/opensearch.log.
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.deprecation.name = org.opensearch.deprecation
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
    grep -qF -- "-Dsluice.opensearch.config=$CONF_DIR " || return 1
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
  mkdir -p "$OSDIR"
  if command -v flock >/dev/null; then
    exec 9>"$OSDIR/.lock"
    flock -w "$((START_TIMEOUT + STOP_TIMEOUT + 60))" 9 || die "could not lock $OSDIR/.lock"
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

    local major jvm_opts=()
    major="$(java_major "$OS_JAVA_HOME")"
    if ((major >= 21)); then
      # Lucene 10 uses the FFM API (madvise etc.) from the unnamed module.
      jvm_opts+=("--enable-native-access=ALL-UNNAMED" "-Djava.locale.providers=SPI,CLDR")
    else
      jvm_opts+=("-Djava.locale.providers=SPI,COMPAT")
    fi
    say "starting OpenSearch $OS_VERSION on $URL (transport 127.0.0.1:$TRANSPORT_PORT, java $major)"
    # The inner shell records its own pid, then execs java in place, so the pid
    # file names the JVM itself. setsid detaches it from our session.
    # shellcheck disable=SC2016,SC2086
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
      "$OS_JAVA_HOME/bin/java" $HEAP_OPTS -Xss1m \
      -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -XX:-OmitStackTraceInFastThrow \
      "${jvm_opts[@]}" \
      -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
      -Djava.io.tmpdir="$TMP_DIR" \
      -Djna.tmpdir="$TMP_DIR" \
      -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
      -Dio.netty.recycler.maxCapacityPerThread=0 \
      -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
      -Dslf4j.internal.verbosity=ERROR \
      -Dsluice.opensearch.home="$OSDIR" \
      -Dsluice.opensearch.config="$CONF_DIR" \
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
        err "OpenSearch exited during startup"
        dump_log
        rm -f "$PID_FILE"
        exit 1
      fi
    fi
    if port_open "$PORT" && healthy; then
      break
    fi
    if ((SECONDS >= deadline)); then
      err "OpenSearch did not become healthy within ${START_TIMEOUT}s"
      dump_log
      exit 1
    fi
    sleep 1
  done
  say "ready on $URL (pid $(live_pid)${OS_VERSION:+, OpenSearch $OS_VERSION}, $((SECONDS - start))s)"
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
