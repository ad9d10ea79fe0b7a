#!/usr/bin/env bash
# Runs every test of the workspace, as `make test` does, and when some fail ends with a
# digest: each failed test's name and what it panicked with. A long run's log is often read
# from its head and tail only, and a panic's message sits in the middle, above its captured
# output's end and its backtrace.
# Usage: tests/tools/cargo-test.sh [CARGO TEST ARGS...]
set -uo pipefail
cargo="${CARGO:-cargo}"
log="$(mktemp "${TMPDIR:-/tmp}/sluice-test.XXXXXX")"
trap 'rm -f "$log"' EXIT

"$cargo" test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

if [[ $status -ne 0 ]]; then
  echo
  echo "==> failed tests, and what each panicked with"
  # A failure's section opens with `---- NAME stdout ----`; its panic is the
  # `panicked at FILE:LINE:COL:` line and the message lines below it, up to the backtrace.
  awk '
    /^---- .* stdout ----$/ { name = $2; next }
    /panicked at / && name != "" {
      print "--- " name; print "    " $0; inmsg = 1; lines = 0; next
    }
    inmsg {
      if ($0 ~ /^stack backtrace:/ || $0 ~ /^note: / || $0 ~ /^---- / || lines >= 40) { inmsg = 0; next }
      print "    " $0; lines++
    }
  ' "$log"
  grep -E '^error: [0-9]+ targets? failed' -A 20 "$log" | grep -E '^\s+`' || true
fi
exit "$status"
