#!/usr/bin/env bash
# Hardens an image root file system in place; shared by the Dockerfile's final stage (ROOT=/) and the local builder.
#   bash scripts/image/harden-rootfs.sh ROOT
# - no setuid/setgid files: the container runs as uid 10001 under no_new_privs, so they could not work anyway, and
#   none should be there to try (su, passwd, mount, ...);
# - no package manager caches or lists;
# - mount points of the pod's writable volumes, and /app, exist (the root is read-only at run time). The volumes'
#   mount points are sticky and world-writable like /tmp: a runtime that mounts a tmpfs there (runc) gives the tmpfs
#   the mount point's mode, and the operator's uid must be able to write its state.
set -euo pipefail
root="${1:?usage: harden-rootfs.sh ROOT}"
root="${root%/}"
find "${root:-/}" -xdev \( -type f -o -type d \) -perm /6000 -exec chmod ug-s {} +
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/var/cache/debconf/*-old "$root"/var/log/apt/* "$root"/var/log/dpkg.log "$root"/var/log/alternatives.log
install -d -m 0755 "$root/app"
install -d -m 1777 "$root/tmp" "$root/var/lib/k8s-staticroute-operator"
left="$(find "${root:-/}" -xdev -type f -perm /6000 | head -5)"
[ -z "$left" ] || { echo "harden-rootfs.sh: setuid/setgid files left: $left" >&2; exit 1; }
