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

NAME=elasticsearch
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$SCRIPT_DIR/jvm.sh"

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

ESDIR="$STATE_DIR/elasticsearch"
CONF_DIR="$ESDIR/config"
DATA_DIR="$ESDIR/data"
LOGS_DIR="$ESDIR/logs"
TMP_DIR="$ESDIR/tmp"
PID_FILE="$ESDIR/elasticsearch.pid"
LOG_FILE="$LOGS_DIR/elasticsearch.log"
URL="http://127.0.0.1:$PORT"

# For jvm.sh.
ENGINE=Elasticsearch
NODE_DIR="$ESDIR"
PID_MATCH="-Dsluice.elasticsearch.config=$CONF_DIR "

# --- java ------------------------------------------------------------------

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
  compile_launcher "$LAUNCHER_SRC" "$LAUNCHER_CLASS" \
    "$SLUICE_CACHE/elasticsearch-$ES_VERSION/launcher" "$ES_JAVA_HOME" "$LIBS"
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

# --- start -----------------------------------------------------------------

# Fetches, configures and spawns the node (called by search_cmd_start).
launch_node() {
  ensure_jars
  ensure_launcher
  write_config

  local major
  major="$(java_major "$ES_JAVA_HOME")" || major="?"
  say "starting Elasticsearch $ES_VERSION on $URL (transport 127.0.0.1:$TRANSPORT_PORT, java $major)"
  # shellcheck disable=SC2086 # HEAP_OPTS is a word list
  spawn_jvm "$ES_JAVA_HOME/bin/java" $HEAP_OPTS -Xss1m \
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
    -cp "$LAUNCHER_DIR:$LIBS/*" "$LAUNCHER_CLASS"
}

# Suffix of the "ready" message.
ready_note() {
  echo ", Elasticsearch $ES_VERSION"
}

search_node_main "$@"
