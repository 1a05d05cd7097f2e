#!/usr/bin/env bash
# Runs every benchmark of the repository: each package's `bench/run.sh`, in turn (they share the machine, so never
# in parallel). Benchmarks are scripts to rerun, not timed tests; each prints its tables and writes its results under
# its package's bench/results/. On a shared machine, compare figures only with the baselines measured in the same run.
#
# Usage: bash scripts/bench.sh [--quick] [options passed to every package's run.sh]
# Run as root from the repository root (like the tests), after scripts/bootstrap.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PWD/.tools/node_modules/.bin:$PWD/node_modules/.bin:$PATH"

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
