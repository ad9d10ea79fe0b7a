#!/usr/bin/env bash
# Builds the console into web/dist for `sluice serve` to embed. Installs the exact locked
# packages (npm ci) only when package-lock.json changed since the last install; npm's cache
# lives outside the clone so reinstalls are fast. `web/build.sh test` also runs the unit tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export npm_config_cache="${SLUICE_CACHE:-$HOME/.cache/sluice}/npm"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
stamp=node_modules/.sluice-lock
if [[ ! -f $stamp ]] || ! cmp -s package-lock.json "$stamp"; then
  echo "[web] npm ci"
  npm ci --no-progress --loglevel=error
  cp package-lock.json "$stamp"
fi
echo "[web] building web/dist"
npm run --silent build
if [[ "${1:-}" == test ]]; then
  echo "[web] unit tests"
  npm test --silent
fi
