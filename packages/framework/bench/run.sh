#!/usr/bin/env bash
# The opkit framework's benchmarks (scripts to rerun, not timed tests): throughput, latency, API requests per change,
# operator memory, and the memory breakdown of bench/rss.ts; then a summary table. Each benchmark starts its own
# control plane (@opkit/testbed), prints a table and writes results/<name>.json.
#
# Usage: bash packages/framework/bench/run.sh [--quick] [--only=throughput,latency,...]
#   --quick  fewer runs and samples (a few minutes instead of ~15)
# Needs the compiled packages (this script runs `tsc -b` for the framework and the testbed first); no root: the
# control plane runs on loopback. Node >= 20.19: the runner (register.mjs) transpiles the benchmark sources with the
# workspace's TypeScript, and the framework is imported from its dist/, so nothing extra is installed.
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$bench_dir/../../.." && pwd)"
export PATH="$repo_dir/.tools/node_modules/.bin:$repo_dir/node_modules/.bin:$PATH"

only=""
args=()
for arg in "$@"; do
  case "$arg" in
    --only=*) only="${arg#--only=}" ;;
    *) args+=("$arg") ;;
  esac
done

tsc -b "$repo_dir/packages/testbed" "$repo_dir/packages/framework"

status=0
for name in throughput latency requests memory rss-breakdown; do
  if [[ -n "$only" && ",$only," != *",$name,"* ]]; then continue; fi
  echo
  echo "=== framework: $name ($(date -u +%H:%M:%S), load average $(cut -d' ' -f1-3 /proc/loadavg))"
  if ! node --import "$bench_dir/register.mjs" "$bench_dir/$name.ts" "${args[@]}"; then
    echo "framework: $name FAILED" >&2
    status=1
  fi
done
echo
node --import "$bench_dir/register.mjs" "$bench_dir/summary.ts"
exit $status
