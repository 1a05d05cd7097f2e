#!/usr/bin/env bash
# Runs every benchmark of the repository: each package's `bench/run.sh`, in turn (they share the machine, so never
# in parallel). Benchmarks are scripts to rerun, not timed tests; each prints its tables and writes its results under
# its package's bench/results/. On a shared machine, compare figures only with the baselines measured in the same run.
#
# Usage: bash scripts/bench.sh [--quick] [options passed to every package's run.sh]
#        bash scripts/bench.sh node-scale --nodes N [options of node-scale.ts]
#        bash scripts/bench.sh gateway-health [--repetitions N] [options of gateway-health.ts]
# Run as root from the repository root (like the tests), after scripts/bootstrap.sh.
#
# node-scale: N simulated nodes, one StaticRoute agent per node and the aggregator, as the release runs them; a
# create, a gateway change, a delete, bursts of 20 and 200 creates; writes, conflicts and throttling counted by the
# API server, time to routes and to READY N/N on every node, watch bytes, RSS. Its last line is the figures' JSON
# (details: packages/staticroute-operator/bench/node-scale.ts; results/node-scale-<N>.json). About 70 MB per node.
#
# gateway-health: 3 simulated nodes with an ECMP StaticRoute over the two gateways; a gateway taken off the VPC and put
# back N times (--repetitions N, default 5): time until every node withdrew it from the route and until it is back,
# median and max; then ARP probes per node per minute over a quiet minute (--quiet-s). About 6 minutes at 5
# repetitions (details: packages/staticroute-operator/bench/gateway-health.ts; results/gateway-health.json).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PWD/.tools/node_modules/.bin:$PWD/node_modules/.bin:$PATH"

# One of the operator's benchmarks with simulated nodes (packages/staticroute-operator/bench/<name>.ts), built first and
# run on the image's runtime (Node.js 24, installed by bootstrap), like the agents and the aggregator it starts.
# `--<flag> N` is passed on as `--<flag>=N`.
operator_bench() {
  local name="$1" flag="$2"
  shift 2
  local args=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      "--$flag") [[ $# -ge 2 ]] || { echo "scripts/bench.sh $name: --$flag needs a number" >&2; exit 2; }
        args+=("--$flag=$2"); shift 2 ;;
      *) args+=("$1"); shift ;;
    esac
  done
  [ "$(id -u)" -eq 0 ] || { echo "scripts/bench.sh $name: the simulated nodes are network namespaces: run as root" >&2; exit 1; }
  if [[ -x .tools/node24/bin/node ]]; then export PATH="$PWD/.tools/node24/bin:$PATH"; fi
  tsc -b packages/testbed packages/staticroute-operator
  # One agent, one `ip monitor` and their files per node.
  ulimit -n 65536 2>/dev/null || true
  exec node --import ./packages/staticroute-operator/bench/lib/register.mjs \
    "packages/staticroute-operator/bench/$name.ts" "${args[@]}"
}

case "${1:-}" in
  node-scale) shift; operator_bench node-scale nodes "$@" ;;
  gateway-health) shift; operator_bench gateway-health repetitions "$@" ;;
esac

status=0
# ---------------------------------------------------------------------------------------------------------------
# Package benchmarks. To add a package's benchmarks, create packages/<pkg>/bench/run.sh (it receives this script's
# arguments, builds what it needs, and exits non-zero only if a benchmark could not run): it is picked up here.
# Current: packages/framework/bench/run.sh. The StaticRoute operator's goes in packages/staticroute-operator/bench/.
# ---------------------------------------------------------------------------------------------------------------
for run in packages/*/bench/run.sh; do
  [[ -e "$run" ]] || continue
  echo "##### $run"
  if ! bash "$run" "$@"; then
    echo "##### $run FAILED" >&2
    status=1
  fi
done
# ---------------------------------------------------------------------------------------------------------------
# Other benchmarks (outside packages/*/bench/run.sh) go here.
# ---------------------------------------------------------------------------------------------------------------
exit $status
