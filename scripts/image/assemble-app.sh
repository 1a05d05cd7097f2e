#!/usr/bin/env bash
# Assembles the image's /app: the operator's compiled dist/ and its production dependencies (`pnpm deploy --prod`),
# pruned to what runs. Shared by the Dockerfile's build stage and the local builder (scripts/image/build-rootfs.sh),
# so both images hold the same tree.
#   bash scripts/image/assemble-app.sh OUT_DIR [extra pnpm deploy flags, e.g. --offline]
# Run from anywhere; needs pnpm and the workspace's dependencies installed. OUT_DIR must not exist.
# Result: OUT_DIR/{package.json,dist/,node_modules/}; workspace packages inside node_modules keep package.json and
# dist/*.js only; no sources, tests, type declarations, source maps, lockfiles, .bin links or build-host paths.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:?usage: assemble-app.sh OUT_DIR [pnpm deploy flags]}"
shift
[ ! -e "$out" ] || { echo "assemble-app.sh: $out already exists" >&2; exit 1; }
cd "$ROOT"
pnpm exec tsc -b packages/staticroute-operator
pnpm --filter staticroute-operator deploy --prod "$@" "$out" >/dev/null

# Workspace packages (the operator itself, and opkit injected under node_modules/.pnpm/<name>@file+...).
prune_workspace_package() {
  local dir="$1"
  find "$dir" -mindepth 1 -maxdepth 1 ! -name package.json ! -name dist ! -name node_modules -exec rm -rf {} +
  [ -d "$dir/dist" ] && find "$dir/dist" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.tsbuildinfo' \) -delete
  return 0
}
prune_workspace_package "$out"
for injected in "$out"/node_modules/.pnpm/*@file+*/node_modules/*; do
  [ -L "$injected" ] || prune_workspace_package "$injected"
done
# pnpm's bookkeeping: records of the build host's store path and lockfile copies; nothing reads them at run time.
rm -rf "$out/node_modules/.bin" "$out/node_modules/.pnpm/node_modules/.bin" "$out/node_modules/.modules.yaml" \
  "$out/node_modules/.pnpm-workspace-state-v1.json" "$out/node_modules/.pnpm/lock.yaml"
find "$out/node_modules/.pnpm" -path '*/node_modules/.bin' -prune -exec rm -rf {} +
[ -f "$out/dist/main.js" ] || { echo "assemble-app.sh: $out/dist/main.js is missing" >&2; exit 1; }
