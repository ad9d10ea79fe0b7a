#!/usr/bin/env bash
# The cargo target dir lives outside the clone and is shared by every checkout on this
# machine, so dependencies build once. Cargo judges the workspace's own crates fresh by
# file times with paths relative to the workspace, so a build made from another checkout
# can pass for fresh here and run that checkout's code. When the checkout using the target
# dir changes, this one's files are made newer than anything built, so its own crates are
# rebuilt (dependencies stay cached).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
owner="$target/.sluice-checkout"
mkdir -p "$target"
if [[ "$(cat "$owner" 2>/dev/null || true)" != "$root" ]]; then
  find "$root" \( -path "$root/.git" -o -path "$root/.sluice" -o -path "$root/target" -o -path "$root/web/node_modules" \) -prune \
    -o -type f -print0 | xargs -0 touch
  echo "$root" > "$owner"
fi
