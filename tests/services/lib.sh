# Shared helpers for the service scripts in tests/services/. Sourced, not run.
# Each service script sets NAME before sourcing this file.

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
SLUICE_ROOT="${SLUICE_ROOT:-$REPO_ROOT}"
SLUICE_CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
STATE_DIR="$SLUICE_ROOT/.sluice"

say() { echo "[$NAME] $*"; }
err() { echo "[$NAME] $*" >&2; }
die() { err "error: $*"; exit 1; }

# Prints the last lines of a log to stderr, for a failed start.
log_tail() {
  local file="$1"
  if [[ -f "$file" ]]; then
    err "last lines of $file:"
    tail -n 50 "$file" >&2 || true
  else
    err "(no log at $file)"
  fi
}

# A random password of URL-safe characters, kept in FILE once made.
password_in() {
  local file="$1"
  if [[ ! -s "$file" ]]; then
    mkdir -p "$(dirname "$file")"
    (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' 'xy' | tr -d '=\n' > "$file")
  fi
  cat "$file"
}

# True when PID_FILE names a live process whose command line contains PATTERN.
pid_alive() {
  local pid_file="$1" pattern="$2" pid
  [[ -s "$pid_file" ]] || return 1
  pid="$(head -n 1 "$pid_file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

# True when something listens on 127.0.0.1:PORT.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True when nothing listens on 127.0.0.1:PORT.
port_free() {
  ! port_open "$1"
}
