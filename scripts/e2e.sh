#!/usr/bin/env bash
# Runs the e2e suite on one target. A target whose prerequisites this machine
# lacks is skipped with the reason, and the script exits 0: skipping is not
# passing, and the output says so.
#
# Usage: scripts/e2e.sh <local|kind|eks> <envtest-assets-dir> [go test / ginkgo flags...]
set -euo pipefail

target=${1:?target: local, kind or eks}
assets=${2:?directory with kube-apiserver and etcd}
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

skip() {
  echo "SKIPPED e2e on target $target: $*"
  echo "  (this is not a pass: nothing was tested on $target)"
  exit 0
}

case "$target" in
local) ;;
kind)
  command -v docker >/dev/null 2>&1 || skip "docker not found"
  docker info >/dev/null 2>&1 || skip "the Docker engine is not reachable (docker info failed)"
  ;;
eks)
  [[ -n "${E2E_EKS_CLUSTER:-}" ]] || skip "no EKS cluster: set E2E_EKS_CLUSTER (and AWS_REGION, AWS credentials, and a kubeconfig for it)"
  [[ -n "${AWS_REGION:-}" ]] || skip "no AWS_REGION"
  ;;
*)
  echo "unknown target $target: use local, kind or eks" >&2
  exit 2
  ;;
esac

echo "== building the local environment helper"
go build -o bin/localenv ./hack/localenv

echo "== running the e2e suite on target $target"
E2E_TARGET="$target" E2E_ASSETS="$(cd "$assets" && pwd)" \
  go test ./e2e/ -count=1 -timeout 90m -v -ginkgo.v -ginkgo.no-color "$@"
