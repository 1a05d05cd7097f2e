#!/usr/bin/env bash
# Soak of the StaticRoute operator (on demand; not part of scripts/test.sh): simulated nodes, many StaticRoutes,
# churned in bursts. Prints memory, convergence, API load and Warning events; see docs/RELIABILITY.md.
# Needs root (network namespaces).
#
# Usage: bash scripts/soak.sh [--nodes N] [--objects N] [--duration SECONDS] [--max-destinations N] [--burst N]
#                             [--converge-timeout SECONDS] [--status-wait SECONDS] [--seed N] [--out FILE]
# Defaults: 20 nodes, 2000 objects with 1-50 destinations, 600 s of churn, bursts of 40 changes.
# Shorter run: bash scripts/soak.sh --nodes 6 --objects 200 --duration 120 --burst 10
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) export SOAK_NODES="$2"; shift 2 ;;
    --objects) export SOAK_OBJECTS="$2"; shift 2 ;;
    --duration) export SOAK_DURATION_S="$2"; shift 2 ;;
    --max-destinations) export SOAK_MAX_DESTINATIONS="$2"; shift 2 ;;
    --burst) export SOAK_BURST="$2"; shift 2 ;;
    --converge-timeout) export SOAK_CONVERGE_TIMEOUT_S="$2"; shift 2 ;;
    --status-wait) export SOAK_STATUS_WAIT_S="$2"; shift 2 ;;
    --seed) export SOAK_SEED="$2"; shift 2 ;;
    --out) export SOAK_OUT="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "scripts/soak.sh: unknown argument $1" >&2; usage 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "scripts/soak.sh: the simulated nodes are network namespaces: run as root (or with CAP_NET_ADMIN)" >&2; exit 1; }
export PATH="$ROOT/.tools/node_modules/.bin:$ROOT/node_modules/.bin:$PATH"
command -v vitest >/dev/null || bash scripts/bootstrap.sh
# Many nodes mean many processes and namespaces: more open files than the usual default.
ulimit -n 65536 2>/dev/null || true
pnpm run -s build
exec vitest run --config packages/staticroute-operator/bench/soak.config.ts
