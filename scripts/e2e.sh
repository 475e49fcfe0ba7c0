#!/usr/bin/env bash
# Runs the e2e suite on one target. A target whose prerequisites this machine
# lacks is skipped with the reason, and the script exits 0: skipping is not
# passing, and the output says so.
#
# Usage: scripts/e2e.sh <local|node|kind|eks> <envtest-assets-dir> [go test / ginkgo flags...]
set -euo pipefail

target=${1:?target: local, node, kind or eks}
assets=${2:?directory with kube-apiserver and etcd}
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# E2E_REQUIRE_TARGET=1 (set by the workflows that exist to run a target)
# turns a skip into a failure.
skip() {
  if [[ -n "${E2E_REQUIRE_TARGET:-}" ]]; then
    echo "FAILED e2e on target $target: $* (E2E_REQUIRE_TARGET is set)" >&2
    exit 1
  fi
  echo "SKIPPED e2e on target $target: $*"
  echo "  (this is not a pass: nothing was tested on $target)"
  exit 0
}

case "$target" in
local) ;;
node)
  [[ "$(id -u)" == 0 ]] || skip "it needs root, for containerd, the kubelet, kube-proxy and the CNI bridge"
  for c in containerd runc; do
    command -v "$c" >/dev/null 2>&1 || command -v apt-get >/dev/null 2>&1 || skip "$c is not installed and apt-get is not here to install it"
  done
  ;;
kind)
  command -v docker >/dev/null 2>&1 || skip "docker not found"
  docker info >/dev/null 2>&1 || skip "the Docker engine is not reachable (docker info failed)"
  command -v kubectl >/dev/null 2>&1 || skip "kubectl not found (the kind set-up applies its manifests with it)"
  ;;
eks)
  [[ -n "${E2E_EKS_CLUSTER:-}" ]] || skip "no EKS cluster: set E2E_EKS_CLUSTER (and AWS_REGION, AWS credentials, and a kubeconfig for it)"
  [[ -n "${AWS_REGION:-}" ]] || skip "no AWS_REGION"
  ;;
*)
  echo "unknown target $target: use local, node, kind or eks" >&2
  exit 2
  ;;
esac

echo "== building the local environment helper"
go build -o bin/localenv ./hack/localenv
if [[ "$target" == node ]]; then
  echo "== building the node: its components, nodeenv, and the images (without Docker)"
  scripts/node-binaries.sh "${E2E_K8S_VERSION:?the Kubernetes version of the assets}" "$assets" >/dev/null
  go build -o bin/nodeenv ./hack/nodeenv
  mkdir -p bin/static
  for p in ./cmd:manager ./e2e/workloads/pause:pause ./e2e/workloads/notebook:notebook; do
    CGO_ENABLED=0 go build -trimpath -o "bin/static/${p#*:}" "${p%%:*}"
  done
  go run ./hack/image -out bin/images -manager bin/static/manager -pause bin/static/pause -notebook bin/static/notebook
fi

if [[ "$target" == kind ]]; then
  # shellcheck source-path=SCRIPTDIR/.. source=e2e/kind/pins.env
  source e2e/kind/pins.env
  echo "== installing kind $KIND_VERSION into bin/ (the suite runs that one, not the first kind on PATH)"
  GOBIN="$root/bin" go install "sigs.k8s.io/kind@$KIND_VERSION"
fi

echo "== running the e2e suite on target $target"
E2E_TARGET="$target" E2E_ASSETS="$(cd "$assets" && pwd)" \
  go test ./e2e/ -count=1 -timeout 90m -v -ginkgo.v -ginkgo.no-color "$@"
