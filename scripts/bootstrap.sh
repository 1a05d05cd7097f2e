#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine; idempotent and quick when all is in place.
#   - pnpm (pinned) into .tools/, then the workspace's locked dependencies
#   - Debian packages the test bed uses (iproute2, kmod-free tools), only when missing
#   - kube-apiserver and etcd (built from Go modules and cached outside the repo, unless KUBEBUILDER_ASSETS is set)
# Prints nothing but progress; exits non-zero naming the step that failed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PNPM_VERSION=12.4.2
say() { echo "[bootstrap] $*" >&2; }
die() { echo "[bootstrap] FAILED: $*" >&2; exit 1; }

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)" || die "Node.js is not installed (need 20.19+ or 22+)"
[ "$node_major" -ge 20 ] || die "Node.js $node_major is too old (need 20.19+)"

missing=()
for tool in ip:iproute2 openssl:openssl ping:iputils-ping; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]}"
fi

if [ "$(.tools/node_modules/.bin/pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  say "installing pnpm $PNPM_VERSION into .tools/"
  npm install --prefix .tools --no-save --no-package-lock --no-audit --no-fund "pnpm@$PNPM_VERSION" >/dev/null \
    || die "npm install pnpm@$PNPM_VERSION"
fi
say "installing workspace dependencies (locked)"
.tools/node_modules/.bin/pnpm install --frozen-lockfile >/dev/null || die "pnpm install --frozen-lockfile"

if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
  bash packages/testbed/scripts/build-control-plane.sh >/dev/null || die "building kube-apiserver/etcd (see above)"
fi
