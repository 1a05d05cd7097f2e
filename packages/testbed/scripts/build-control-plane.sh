#!/usr/bin/env bash
# Builds kube-apiserver and etcd from Go modules (through the module proxy) and caches them outside the repository.
#
# Why a wrapper module: k8s.io/kubernetes replaces its staging modules with ./staging paths and requires them at
# v0.0.0, so `go install` of its commands is refused. A throwaway module that requires k8s.io/kubernetes and
# replaces every staging module with its published v0.Y.Z tag builds the same code. etcd's server module has
# replace lines too, so it gets a wrapper of its own.
#
# Usage: build-control-plane.sh            prints the folder holding both binaries (builds only what is missing)
# Env:   KUBE_VERSION, ETCD_VERSION        pinned versions (defaults below)
#        STATICROUTE_TESTBED_CACHE         cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/staticroute-testbed)
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE_ROOT="${STATICROUTE_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/staticroute-testbed}"
OUT="$CACHE_ROOT/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION"

step() { echo "[control-plane build] $*" >&2; }
fail() { echo "[control-plane build] FAILED at step: $*" >&2; exit 1; }

mkdir -p "$OUT" || fail "create the cache folder $OUT"
if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/etcd" ]; then
  echo "$OUT"
  exit 0
fi

# Several test processes may ask at once on a fresh machine: one builds, the others wait and reuse its result.
if command -v flock >/dev/null; then
  exec 9>"$OUT/.build.lock"
  if ! flock -n 9; then
    step "another build of $OUT is running; waiting for it"
    flock 9 || fail "wait for the lock $OUT/.build.lock"
  fi
fi

command -v go >/dev/null || fail "find Go: 'go' is not on PATH (Go 1.26+ is needed to build kube-apiserver and etcd)"
export CGO_ENABLED=0 GOFLAGS=-mod=mod

if [ ! -x "$OUT/kube-apiserver" ]; then
  work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
  minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  staging_version="v0.${KUBE_VERSION#v1.}"
  step "kube-apiserver $KUBE_VERSION: resolving k8s.io/kubernetes go.mod"
  gomod="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')" \
    || fail "download k8s.io/kubernetes@$KUBE_VERSION from the module proxy"
  [ -f "$gomod" ] || fail "locate go.mod of k8s.io/kubernetes@$KUBE_VERSION"
  {
    echo "module staticroute.local/kube-apiserver-build"
    echo
    grep -E '^go [0-9]' "$gomod"
    grep -E '^godebug' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    grep -oE 'k8s.io/[a-z0-9-]+ => \./staging/src/k8s.io/[a-z0-9-]+' "$gomod" \
      | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } > "$work/go.mod"
  step "kube-apiserver: $(grep -c '^replace' "$work/go.mod") staging modules pinned at $staging_version; fetching modules (minutes on a cold cache)"
  (cd "$work" && go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" >&2) || fail "go get kube-apiserver dependencies"
  step "kube-apiserver: compiling (several minutes on 2 cores)"
  pkg=k8s.io/component-base/version
  (cd "$work" && go build -trimpath -o "$OUT/kube-apiserver.tmp" \
    -ldflags "-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor" \
    k8s.io/kubernetes/cmd/kube-apiserver >&2) || fail "go build kube-apiserver"
  mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
  rm -rf "$work"; trap - EXIT
  step "kube-apiserver: done"
fi

if [ ! -x "$OUT/etcd" ]; then
  work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
  step "etcd $ETCD_VERSION: fetching modules"
  gomod="$(cd "$work" && go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')" \
    || fail "download go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  {
    echo "module staticroute.local/etcd-build"
    echo
    grep -E '^go [0-9]' "$gomod"
    echo
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  } > "$work/go.mod"
  (cd "$work" && go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2) || fail "go get etcd dependencies"
  step "etcd: compiling"
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3 >&2) || fail "go build etcd"
  mv "$OUT/etcd.tmp" "$OUT/etcd"
  rm -rf "$work"; trap - EXIT
  step "etcd: done"
fi

echo "$OUT"
