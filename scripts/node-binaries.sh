#!/usr/bin/env bash
# Puts kubelet, kube-controller-manager, kube-scheduler and kube-proxy for the
# node e2e target into a directory (the one envtest-binaries.sh fills) and
# prints it. They are built from k8s.io/kubernetes at the version of go.mod,
# pinned in hack/envtest/go.mod, with the flags of the kube-apiserver build
# so the Go build cache is shared: about 8 minutes on 2 cores the first time,
# cached in the directory afterwards.
#
# Usage: scripts/node-binaries.sh <k8s-version> <dir>
set -euo pipefail

version=${1:?kubernetes version, e.g. 1.37.2}
dir=${2:?directory for the binaries}
root=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "node-binaries: $*" >&2; }

components=(kubelet kube-controller-manager kube-scheduler kube-proxy)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cd "$root/hack/envtest"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$version \
  -X k8s.io/component-base/version.gitMajor=${version%%.*} \
  -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2) \
  -X k8s.io/component-base/version.gitTreeState=clean"
for c in "${components[@]}"; do
  if [[ -x "$dir/$c" ]]; then
    continue
  fi
  log "building $c v$version"
  go build -trimpath -ldflags "$ldflags" -o "$dir/$c.tmp" "k8s.io/kubernetes/cmd/$c"
  mv "$dir/$c.tmp" "$dir/$c"
done
echo "$dir"
