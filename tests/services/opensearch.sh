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

NAME=opensearch
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$SCRIPT_DIR/jvm.sh"

PORT="${SLUICE_OPENSEARCH_PORT:-19200}"
TRANSPORT_PORT="${SLUICE_OPENSEARCH_TRANSPORT_PORT:-19300}"
HEAP_OPTS="${SLUICE_OPENSEARCH_HEAP:--Xms1g -Xmx1g}"
START_TIMEOUT="${SLUICE_OPENSEARCH_START_TIMEOUT:-120}"
STOP_TIMEOUT="${SLUICE_OPENSEARCH_STOP_TIMEOUT:-30}"

SRC_DIR="$SCRIPT_DIR/opensearch"
POM="$SRC_DIR/pom.xml"
LAUNCHER_SRC="$SRC_DIR/SluiceOpenSearchLauncher.java"
LAUNCHER_CLASS="SluiceOpenSearchLauncher"

OSDIR="$STATE_DIR/opensearch"
CONF_DIR="$OSDIR/config"
DATA_DIR="$OSDIR/data"
LOGS_DIR="$OSDIR/logs"
TMP_DIR="$OSDIR/tmp"
PID_FILE="$OSDIR/opensearch.pid"
LOG_FILE="$LOGS_DIR/opensearch.log"
URL="http://127.0.0.1:$PORT"

# For jvm.sh.
ENGINE=OpenSearch
NODE_DIR="$OSDIR"
PID_MATCH="-Dsluice.opensearch.config=$CONF_DIR "

# --- java ------------------------------------------------------------------

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
  compile_launcher "$LAUNCHER_SRC" "$LAUNCHER_CLASS" \
    "$SLUICE_CACHE/opensearch-$OS_VERSION/launcher" "$OS_JAVA_HOME" "$LIBS"
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

# --- start -----------------------------------------------------------------

# Fetches, configures and spawns the node (called by search_cmd_start).
launch_node() {
  ensure_jars
  ensure_launcher
  write_config

  local major jvm_opts=()
  major="$(java_major "$OS_JAVA_HOME")"
  if ((major >= 21)); then
    # Lucene 10 uses the FFM API (madvise etc.) from the unnamed module.
    jvm_opts+=("--enable-native-access=ALL-UNNAMED" "-Djava.locale.providers=SPI,CLDR")
  else
    jvm_opts+=("-Djava.locale.providers=SPI,COMPAT")
  fi
  say "starting OpenSearch $OS_VERSION on $URL (transport 127.0.0.1:$TRANSPORT_PORT, java $major)"
  # shellcheck disable=SC2086 # HEAP_OPTS is a word list
  spawn_jvm "$OS_JAVA_HOME/bin/java" $HEAP_OPTS -Xss1m \
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
    -cp "$LAUNCHER_DIR:$LIBS/*" "$LAUNCHER_CLASS"
}

# Suffix of the "ready" message.
ready_note() {
  echo "${OS_VERSION:+, OpenSearch $OS_VERSION}"
}

search_node_main "$@"
