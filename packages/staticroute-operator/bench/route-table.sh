#!/usr/bin/env bash
# Route programming throughput of the operator's netlink adapter (plan + pipelined apply), in a throwaway network
# namespace: installs COUNT host routes via one gateway, re-plans (expecting no change), dumps, then removes them.
# Usage (root): bash packages/staticroute-operator/bench/route-table.sh [COUNT=50000] [RUNS=3]
set -euo pipefail
COUNT="${1:-50000}"
RUNS="${2:-3}"
PKG="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$PKG/../.." && pwd)"
NS="srbench-$$"
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT

"$ROOT/node_modules/.bin/tsc" --outDir "$PKG/dist" --rootDir "$PKG/src" --module nodenext --moduleResolution nodenext \
  --target es2022 --lib es2023 --types node --strict --esModuleInterop --skipLibCheck --verbatimModuleSyntax \
  "$PKG/src/adapters/route-table.ts" "$PKG/src/adapters/route-monitor.ts"

ip netns add "$NS"
ip -n "$NS" link add eth0 type veth peer name peer0
ip -n "$NS" addr add 10.116.0.10/20 dev eth0
ip -n "$NS" link set eth0 up
ip -n "$NS" link set peer0 up
ip -n "$NS" link set lo up

echo "node $(node --version), kernel $(uname -r), $(nproc) CPUs; $COUNT host routes per run"
for run in $(seq 1 "$RUNS"); do
  printf '{"id":1,"cmd":"bench","count":%s,"gateway":"10.116.0.5"}\n' "$COUNT" |
    ip netns exec "$NS" node "$PKG/test/support/netlink-agent.mjs" |
    node -e '
      let buffer = "";
      process.stdin.on("data", (chunk) => (buffer += chunk));
      process.stdin.on("end", () => {
        for (const line of buffer.split("\n")) {
          if (!line.includes("\"id\":1")) continue;
          const { result: r, error } = JSON.parse(line);
          if (error) { console.error(error); process.exit(1); }
          const rate = (ms) => Math.round((r.count / ms) * 1000).toLocaleString("en-US");
          console.log(`run '"$run"': add ${r.addMs.toFixed(0)} ms (${rate(r.addMs)} routes/s), dump ${r.listMs.toFixed(0)} ms,` +
            ` no-op re-plan ${r.noopMs.toFixed(0)} ms (${r.operationsOnSecondPass} ops), delete ${r.deleteMs.toFixed(0)} ms` +
            ` (${rate(r.deleteMs)} routes/s), failures ${r.addFailures + r.deleteFailures}, listed ${r.listed}`);
        }
      });'
done
