#!/usr/bin/env bash
# Run one named phase of a build or test run and print how long it took.
# Usage: tests/tools/phase.sh NAME COMMAND [ARGS...]
set -uo pipefail
name="$1"; shift
start=$(date +%s.%N)
echo "==> $name"
"$@"
status=$?
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
if [[ $status -eq 0 ]]; then
  echo "<== $name: ok in ${elapsed}s"
else
  echo "<== $name: FAILED (exit $status) after ${elapsed}s" >&2
fi
exit $status
