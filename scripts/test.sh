#!/usr/bin/env bash
# Runs every check and test of the project: build, typecheck, lint and format, unit, integration and end-to-end tests,
# and the short forms of the reliability suites (faults and bad input; the long forms: bash scripts/chaos.sh --long).
# Needs root (or CAP_NET_ADMIN) for the simulated nodes' network namespaces.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ "$(id -u)" -eq 0 ] || { echo "scripts/test.sh: the end-to-end tests create network namespaces: run as root (or with CAP_NET_ADMIN)" >&2; exit 1; }
bash scripts/bootstrap.sh
# Node.js 24 (installed by bootstrap) first: vitest, tsc and the operator processes the tests start all run on it.
export PATH="$ROOT/.tools/node24/bin:$ROOT/.tools/node_modules/.bin:$ROOT/node_modules/.bin:$PATH"
node --version | grep -q '^v24\.' || { echo "scripts/test.sh: expected Node.js 24 from .tools/node24" >&2; exit 1; }
step() { echo; echo "=== $* ==="; }
step "build";        pnpm run -s build
step "typecheck tests"; tsc -p tsconfig.test.json
step "lint";         pnpm run -s lint
step "unit tests";   vitest run --project unit
step "integration tests"; vitest run --project integration
step "end-to-end tests";  vitest run --project e2e
step "reliability suites (short forms)"; vitest run --project reliability
