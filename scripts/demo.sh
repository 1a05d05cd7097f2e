#!/usr/bin/env bash
# The main job: a local demo of the StaticRoute operator on a real control plane and three simulated nodes.
# Needs root (network namespaces). See packages/demo/src/demo.ts for what it shows.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ "$(id -u)" -eq 0 ] || { echo "scripts/demo.sh: the simulated nodes are network namespaces: run as root (or with CAP_NET_ADMIN)" >&2; exit 1; }
bash scripts/bootstrap.sh
export PATH="$ROOT/.tools/node_modules/.bin:$ROOT/node_modules/.bin:$PATH"
pnpm run -s build
exec node packages/demo/dist/demo.js
