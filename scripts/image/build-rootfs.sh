#!/usr/bin/env bash
# Builds the release image as an OCI runtime bundle (rootfs/ + config.json) on this machine, equivalent to the
# Dockerfile's final stage, and prints the bundle's folder (cached under ~/.cache/staticroute-image, keyed by inputs).
#   sudo bash scripts/image/build-rootfs.sh [--strict-debian-pin]
# --strict-debian-pin: fail when snapshot.debian.org (the pinned Debian snapshot) is unreachable instead of building
# from the live archive of the same suite. Pins: scripts/image/pins.env. Details: scripts/image/README.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
[ "$(id -u)" -eq 0 ] || { echo "build-rootfs.sh: run as root (mmdebstrap, setcap)" >&2; exit 1; }
export PATH="$ROOT/.tools/node24/bin:$ROOT/.tools/node_modules/.bin:$ROOT/node_modules/.bin:$PATH"
tsc -b packages/testbed >&2
exec node packages/testbed/dist/container/cli.js build "$@"
