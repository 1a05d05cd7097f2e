# syntax=docker/dockerfile:1
# k8s-staticroute-operator image: the StaticRoute operator (packages/staticroute-operator) on opkit.
#   docker build -t ghcr.io/opkit/k8s-staticroute-operator:v1.0.0 .
# Expects a .dockerignore that keeps host build output out of the context: node_modules, **/node_modules, **/dist,
# .tools, .git, coverage.
# Runs as uid 10001 with only CAP_NET_ADMIN, granted to the node binary as a file capability (see the DaemonSet).

ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
RUN npm install --global pnpm@12.4.2
# Dependencies from the lockfile alone first (pnpm's recommended Docker pattern): cached across source changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch
COPY . .
RUN pnpm install --offline --frozen-lockfile \
 && pnpm exec tsc -b packages/staticroute-operator \
 && rm -rf node_modules packages/*/node_modules examples/*/node_modules \
 && pnpm install --offline --frozen-lockfile --prod \
 && rm -rf packages/testbed examples deploy docs scripts packages/*/src packages/*/test packages/*/bench \
           packages/*/*.tsbuildinfo

FROM ${NODE_IMAGE}
# cap_net_admin on the node binary: Kubernetes gives a non-root process no ambient capabilities, so the process gets
# NET_ADMIN from the file capability (the pod's bounding set allows it; allowPrivilegeEscalation lets it apply).
RUN apt-get update \
 && apt-get install --yes --no-install-recommends libcap2-bin \
 && setcap cap_net_admin+ep "$(readlink -f "$(command -v node)")" \
 && apt-get purge --yes --auto-remove libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src /app
ENV NODE_ENV=production \
    OPKIT_STATE_DIR=/var/lib/k8s-staticroute-operator
USER 10001:10001
EXPOSE 9860
ENTRYPOINT ["node", "/app/packages/staticroute-operator/dist/main.js"]
