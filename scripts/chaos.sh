#!/usr/bin/env bash
# Reliability suites of the StaticRoute operator (vitest project "reliability"): bad input (fuzz, garbage state),
# control-plane and process faults, network and routing-table faults. scripts/test.sh runs the short forms after the
# end-to-end tests; this script runs them alone, one group, or the long forms. Figures go to $RELIABILITY_RESULTS
# (default $TMPDIR/opkit-reliability/results.jsonl). Needs root (network namespaces).
#
# Usage: bash scripts/chaos.sh [--long] [--seed N] [--fuzz-count N] [SUITE...] [-- VITEST-ARGS...]
#   --long        5 API server restarts, 2 etcd restarts, 200 changes, 50 SIGKILLs, a 60 s API cut, 400 fuzz cases
#   --seed N      replay a run (CHAOS_SEED and FUZZ_SEED)
#   SUITE         bad-input | process-faults | network-faults | hostile-routes (default: all)
#                 (process and network faults share one cluster in faults.test.ts; naming one runs its group only)
#   -- ARGS       passed to vitest (e.g. -- --reporter verbose)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
DIR=packages/staticroute-operator/test/reliability
files=()
groups=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --long) export CHAOS_LONG=1; shift ;;
    --seed) export CHAOS_SEED="$2" FUZZ_SEED="$2"; shift 2 ;;
    --fuzz-count) export FUZZ_COUNT="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    --) shift; extra=("$@"); break ;;
    bad-input|hostile-routes) files+=("$DIR/$1.test.ts"); shift ;;
    process-faults) groups+=("process faults"); shift ;;
    network-faults) groups+=("network faults"); shift ;;
    *) echo "scripts/chaos.sh: unknown argument $1" >&2; usage 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "scripts/chaos.sh: the simulated nodes are network namespaces: run as root (or with CAP_NET_ADMIN)" >&2; exit 1; }
export PATH="$ROOT/.tools/node_modules/.bin:$ROOT/node_modules/.bin:$PATH"
command -v vitest >/dev/null || bash scripts/bootstrap.sh
pnpm run -s build
# The long forms run for tens of minutes: raise vitest's per-test bound (each test sets its own as well).
run() { vitest run --project reliability --testTimeout 7200000 "$@" ${extra[@]+"${extra[@]}"}; }
if [ ${#files[@]} -eq 0 ] && [ ${#groups[@]} -eq 0 ]; then run "$DIR"; exit; fi
status=0
[ ${#files[@]} -eq 0 ] || run "${files[@]}" || status=$?
if [ ${#groups[@]} -eq 2 ]; then run "$DIR/faults.test.ts" || status=$?
elif [ ${#groups[@]} -eq 1 ]; then run "$DIR/faults.test.ts" -t "^${groups[0]} " || status=$?
fi
exit "$status"
