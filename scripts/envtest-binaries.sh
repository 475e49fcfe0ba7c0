#!/usr/bin/env bash
# Puts kube-apiserver and etcd for envtest into a directory and prints it.
#
# First choice: setup-envtest downloads the release binaries. Where it cannot
# (no internet), they are built from Go modules: kube-apiserver from
# k8s.io/kubernetes at the version of go.mod and etcd from
# go.etcd.io/etcd/server/v3, both pinned in hack/envtest/go.mod. A cold build
# takes about 7 minutes on 2 cores; the result is cached in the directory.
#
# Usage: scripts/envtest-binaries.sh <k8s-version> <dir> <setup-envtest-binary>
set -euo pipefail

version=${1:?kubernetes version, e.g. 1.37.2}
dir=${2:?directory for the binaries}
setup_envtest=${3:-}
root=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "envtest-binaries: $*" >&2; }

if [[ -x "$dir/kube-apiserver" && -x "$dir/etcd" ]]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"

if [[ -n "$setup_envtest" && -x "$setup_envtest" ]]; then
  log "trying setup-envtest for Kubernetes $version"
  # Its own store, not bin/setup-envtest: that is the binary, and a --bin-dir
  # that is a file made every download fail and every runner build from source.
  mkdir -p "$root/bin/envtest-releases"
  if found=$(timeout 120 "$setup_envtest" use "$version" --bin-dir "$root/bin/envtest-releases" -p path 2>/dev/null) \
      && [[ -x "$found/kube-apiserver" && -x "$found/etcd" ]]; then
    cp "$found/kube-apiserver" "$found/etcd" "$dir/"
    log "using the release binaries from setup-envtest"
    echo "$dir"
    exit 0
  fi
  log "setup-envtest could not download (no internet?); building from Go modules instead"
fi

cd "$root/hack/envtest"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$version \
  -X k8s.io/component-base/version.gitMajor=${version%%.*} \
  -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2) \
  -X k8s.io/component-base/version.gitTreeState=clean"
log "building etcd (under a minute)"
go build -trimpath -ldflags "-s -w" -o "$dir/etcd.tmp" ./etcd
log "building kube-apiserver v$version (about 7 minutes on 2 cores the first time)"
go build -trimpath -ldflags "$ldflags" -o "$dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$dir/etcd.tmp" "$dir/etcd"
mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
log "built $dir/kube-apiserver and $dir/etcd"
echo "$dir"
