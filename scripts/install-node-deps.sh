#!/usr/bin/env bash
# Installs node-postgres (npm `pg`, with pg-copy-streams and pg-cursor) for the client scenario tests
# into tests/clients/node_modules, from tests/clients/package-lock.json, when it is missing.
set -euo pipefail
dir="$(cd "$(dirname "$0")/../tests/clients" && pwd)"
if [ -d "$dir/node_modules/pg" ] && [ -d "$dir/node_modules/pg-copy-streams" ] && [ -d "$dir/node_modules/pg-cursor" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "npm is missing: run scripts/install-system-deps.sh first" >&2
  exit 1
fi
cd "$dir"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
