# shellcheck shell=bash
# Shared lifecycle of the JVM services (kafka.sh, opensearch.sh,
# elasticsearch.sh). Sourced after lib.sh, not run.
#
# The sourcing script sets:
#   ENGINE         display name for messages ("OpenSearch", "Kafka", ...)
#   NODE_DIR       state dir under .sluice/ (holds the pid file and the lock)
#   PID_FILE       pid file of the JVM
#   PID_MATCH      fixed string the JVM's command line must contain (guards
#                  against pid reuse); matched against the NUL->space cmdline
#   LOG_FILE       stdout/stderr of the JVM
#   START_TIMEOUT  seconds to wait for readiness
#   STOP_TIMEOUT   seconds before SIGKILL on stop
# and defines node_probe (see wait_ready).
#
# Elasticsearch-API nodes (opensearch.sh, elasticsearch.sh) also set PORT,
# TRANSPORT_PORT and URL, define launch_node and ready_note, and call
# search_node_main "$@".

# --- java --------------------------------------------------------------------

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

# compile_launcher SRC CLASS OUT_DIR JAVA_HOME LIBS: compiles the launcher
# source into OUT_DIR (a cache dir) unless it is there already for this exact
# source; sets LAUNCHER_DIR.
compile_launcher() {
  local src="$1" class="$2" dir="$3" java_home="$4" libs="$5" sum
  sum="$(sha256sum "$src" | cut -d' ' -f1)"
  # shellcheck disable=SC2034 # read by the sourcing script
  LAUNCHER_DIR="$dir"
  if [[ -f "$dir/.source-sha256" && "$(cat "$dir/.source-sha256")" == "$sum" \
        && -f "$dir/$class.class" ]]; then
    return 0
  fi
  [[ -x "$java_home/bin/javac" ]] || die "javac not found in $java_home (a JDK is needed)"
  say "compiling launcher"
  rm -rf "$dir"
  mkdir -p "$dir"
  "$java_home/bin/javac" -nowarn -encoding UTF-8 -cp "$libs/*" -d "$dir" "$src" \
    || { rm -rf "$dir"; die "compiling $src failed"; }
  echo "$sum" >"$dir/.source-sha256"
}

# --- process -----------------------------------------------------------------

# Prints the pid from the pid file if that process is alive and is our JVM.
live_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(tr -d '[:space:]' <"$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse: the command line must be our JVM.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$PID_MATCH" || return 1
  echo "$pid"
}

# For a start with no live JVM: drops a stale pid file and dies when one of
# the ports is taken by someone else.
clear_stale() {
  if [[ -f "$PID_FILE" ]]; then
    say "removing stale pid file"
    rm -f "$PID_FILE"
  fi
  local p list=""
  for p in "$@"; do list="${list:+$list or }$p"; done
  for p in "$@"; do
    port_open "$p" && die "port $list is already in use by another process"
  done
  return 0
}

# Serialises start/stop of NODE_DIR (concurrent starts would race on the pid
# file). Holds fd 9 until the script exits.
take_lock() {
  mkdir -p "$NODE_DIR"
  if command -v flock >/dev/null; then
    exec 9>"$NODE_DIR/.lock"
    flock -w "$((START_TIMEOUT + STOP_TIMEOUT + 60))" 9 || die "could not lock $NODE_DIR/.lock"
  fi
}

# spawn_jvm JAVA ARGS...: starts the JVM in the background, detached, with
# output to LOG_FILE (the previous one is kept as LOG_FILE.1).
spawn_jvm() {
  if [[ -f "$LOG_FILE" ]]; then mv -f "$LOG_FILE" "$LOG_FILE.1"; fi
  # The inner shell records its own pid, then execs java in place, so the pid
  # file names the JVM itself. setsid detaches it from our session; the lock
  # (fd 9) is not inherited.
  # shellcheck disable=SC2016 # single quotes on purpose
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" "$@" \
    </dev/null >"$LOG_FILE" 2>&1 9>&- &
  disown || true
}

dump_log() {
  if [[ -f "$LOG_FILE" ]]; then
    err "last 50 lines of $LOG_FILE:"
    tail -n 50 "$LOG_FILE" >&2 || true
  fi
}

# Waits until node_probe succeeds; exits 1 (with the log) when the JVM dies or
# START_TIMEOUT passes. node_probe returns 0 when ready, 2 to be asked again
# soon (0.25s) and anything else to be asked again in 1s; it may read
# $deadline.
wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT)) rc
  while :; do
    if ! live_pid >/dev/null; then
      # Give the wrapper a moment to write the pid file on the first pass.
      sleep 0.5
      if ! live_pid >/dev/null; then
        err "$ENGINE exited during startup"
        dump_log
        rm -f "$PID_FILE"
        exit 1
      fi
    fi
    rc=0
    node_probe || rc=$?
    ((rc == 0)) && break
    if ((SECONDS >= deadline)); then
      err "$ENGINE did not become healthy within ${START_TIMEOUT}s"
      dump_log
      exit 1
    fi
    if ((rc == 2)); then sleep 0.25; else sleep 1; fi
  done
}

# SIGTERM, then SIGKILL after STOP_TIMEOUT; removes the pid file.
stop_node() {
  local pid
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

# --- Elasticsearch-API nodes (OpenSearch, Elasticsearch) ---------------------

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

search_node_probe() {
  port_open "$PORT" && healthy
}

search_cmd_start() {
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
    clear_stale "$PORT" "$TRANSPORT_PORT"
  fi
  # launch_node (the script's) fetches, configures and spawns the JVM.
  [[ -n "$pid" ]] || launch_node
  local start=$SECONDS
  wait_ready
  say "ready on $URL (pid $(live_pid)$(ready_note), $((SECONDS - start))s)"
}

search_cmd_status() {
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

search_node_main() {
  # shellcheck disable=SC2317 # called by wait_ready
  node_probe() { search_node_probe; }
  case "${1:-}" in
    start) search_cmd_start ;;
    stop) take_lock; stop_node ;;
    restart) take_lock; stop_node; search_cmd_start ;;
    status) search_cmd_status ;;
    url) echo "$URL" ;;
    *) echo "usage: $0 start|stop|status|restart|url" >&2; exit 2 ;;
  esac
}
