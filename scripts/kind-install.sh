#!/usr/bin/env bash
# Installs into the kind cluster of $KUBECONFIG what the e2e kind target
# needs, each step printed and safe to repeat:
#   cert-manager (for the webhook's certificate), LocalStack (IAM and STS),
#   the EKS pod identity webhook, Istio's CRDs and Kubeflow's profile
#   controller (built from a pinned commit, pointed at LocalStack), and the
#   operator (image $IMG, already loaded into kind), with kustomize or, with
#   OPERATOR_INSTALL=olm, through OLM from its bundle.
# Every version comes from e2e/kind/pins.env. Needs Docker, kubectl, internet
# and bin/kind and bin/kustomize (make test-e2e E2E_TARGET=kind builds both).
# Run by the suite; see e2e/README.md.
set -euo pipefail

: "${KUBECONFIG:?KUBECONFIG of the kind cluster}"
: "${KIND_CLUSTER:?name of the kind cluster}"
: "${IMG:?operator image loaded into kind}"
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR/.. source=e2e/kind/pins.env
source "$root/e2e/kind/pins.env"
LOCALSTACK_IN_CLUSTER=http://localstack.localstack.svc.cluster.local:4566
KUBEFLOW_DASHBOARD_GIT=https://github.com/kubeflow/dashboard.git
PROFILE_CONTROLLER_IMAGE=kubeflow-dashboard/profile-controller:$KUBEFLOW_DASHBOARD_REF
ACCESS_MANAGEMENT_IMAGE=kubeflow-dashboard/access-management:$KUBEFLOW_DASHBOARD_REF

step() { echo "== $*"; }
for tool in kubectl docker; do
  command -v "$tool" >/dev/null || { echo "kind-install: $tool not found" >&2; exit 3; }
done

step "cert-manager $CERT_MANAGER_VERSION"
kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
kubectl -n cert-manager wait --for=condition=Available deployment --all --timeout=5m

step "LocalStack ($LOCALSTACK_IMAGE: IAM, STS) on NodePort 30566"
sed "s#LOCALSTACK_IMAGE#$LOCALSTACK_IMAGE#" "$root/e2e/kind/localstack.yaml" | kubectl apply -f -
kubectl -n localstack wait --for=condition=Available deployment/localstack --timeout=5m

step "EKS pod identity webhook ($POD_IDENTITY_WEBHOOK_IMAGE)"
sed "s#POD_IDENTITY_WEBHOOK_IMAGE#$POD_IDENTITY_WEBHOOK_IMAGE#" "$root/e2e/kind/pod-identity-webhook.yaml" | kubectl apply -f -
kubectl -n pod-identity-webhook wait --for=condition=Available deployment/pod-identity-webhook --timeout=5m

step "Istio $ISTIO_VERSION CRDs (Kubeflow's profile controller writes AuthorizationPolicies)"
kubectl apply --server-side -f "https://raw.githubusercontent.com/istio/istio/$ISTIO_VERSION/manifests/charts/base/files/crd-all.gen.yaml"

step "Kubeflow's profile controller and access management, built from kubeflow/dashboard@$KUBEFLOW_DASHBOARD_REF"
docker build -t "$PROFILE_CONTROLLER_IMAGE" "$KUBEFLOW_DASHBOARD_GIT#$KUBEFLOW_DASHBOARD_REF:components/profile-controller"
docker build -t "$ACCESS_MANAGEMENT_IMAGE" -f access-management/Dockerfile "$KUBEFLOW_DASHBOARD_GIT#$KUBEFLOW_DASHBOARD_REF:components"
"$root/bin/kind" load docker-image --name "$KIND_CLUSTER" "$PROFILE_CONTROLLER_IMAGE" "$ACCESS_MANAGEMENT_IMAGE"

step "Kubeflow's profile controller, pointed at LocalStack"
# The profile controller uses the AWS SDK for Go v2, whose web-identity
# credentials call STS through the endpoint of STS, not the global one: each
# service the controller reaches gets its own endpoint variable.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
overlay="$work/kubeflow"
mkdir -p "$overlay"
cat >"$overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- https://github.com/kubeflow/dashboard/components/profile-controller/manifests/kustomize/overlays/kubeflow?ref=$KUBEFLOW_DASHBOARD_REF
images:
- name: ghcr.io/kubeflow/dashboard/profile-controller
  newName: ${PROFILE_CONTROLLER_IMAGE%:*}
  newTag: "${PROFILE_CONTROLLER_IMAGE##*:}"
- name: ghcr.io/kubeflow/dashboard/access-management
  newName: ${ACCESS_MANAGEMENT_IMAGE%:*}
  newTag: "${ACCESS_MANAGEMENT_IMAGE##*:}"
patches:
- patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: profiles-deployment, namespace: kubeflow}
    spec:
      template:
        spec:
          containers:
          - name: manager
            env:
            - {name: AWS_REGION, value: us-east-1}
            - {name: AWS_ENDPOINT_URL, value: "$LOCALSTACK_IN_CLUSTER"}
            - {name: AWS_ENDPOINT_URL_IAM, value: "$LOCALSTACK_IN_CLUSTER"}
            - {name: AWS_ENDPOINT_URL_STS, value: "$LOCALSTACK_IN_CLUSTER"}
YAML
kubectl create namespace kubeflow --dry-run=client -o yaml | kubectl apply -f -
"$root/bin/kustomize" build "$overlay" | kubectl apply --server-side -f -
kubectl -n kubeflow rollout status deployment/profiles-deployment --timeout=5m

operator_ns=awskubeflowprofiles-system
operator_deployment=awskubeflowprofiles-controller-manager

# install_with_olm installs OLM and the operator from its bundle, as a user
# of OperatorHub would, then gives the operator's CSV the kind target's
# settings (localstack-patch.yaml, with each path under the CSV's deployment).
install_with_olm() {
  # kind's local-registry recipe, with one name for every client:
  # kind-registry:5000 is the registry container to the nodes' containerd
  # (certs.d, read by node images from kind v0.27.0) and to OLM's pods (their
  # DNS reaches Docker's on the kind network), and 127.0.0.1:5000 to
  # operator-sdk and docker on this host, through an /etc/hosts entry the
  # e2e-kind workflow adds (docker treats a registry on a loopback address as
  # plain HTTP).
  step "a local registry ($REGISTRY_IMAGE) for the bundle, as kind-registry:5000"
  if [[ "$(getent hosts kind-registry | awk '{print $1}')" != 127.0.0.1 ]]; then
    echo "kind-install: kind-registry does not resolve to 127.0.0.1 on this host: add '127.0.0.1 kind-registry' to /etc/hosts (the e2e-kind workflow does)" >&2
    exit 3
  fi
  if [[ "$(docker inspect -f '{{.State.Running}}' kind-registry 2>/dev/null || true)" != true ]]; then
    docker rm -f kind-registry >/dev/null 2>&1 || true
    docker run -d --restart=always -p 127.0.0.1:5000:5000 --network bridge --name kind-registry "$REGISTRY_IMAGE"
  fi
  docker network connect kind kind-registry 2>/dev/null || true
  local nodes node
  nodes=$("$root/bin/kind" get nodes --name "$KIND_CLUSTER")
  for node in $nodes; do
    docker exec "$node" mkdir -p /etc/containerd/certs.d/kind-registry:5000
    printf '[host."http://kind-registry:5000"]\n' | docker exec -i "$node" cp /dev/stdin /etc/containerd/certs.d/kind-registry:5000/hosts.toml
  done

  step "operator-sdk $OPERATOR_SDK_VERSION, checked against the release's checksums"
  local asset release
  asset="operator-sdk_$(go env GOOS)_$(go env GOARCH)"
  release="https://github.com/operator-framework/operator-sdk/releases/download/$OPERATOR_SDK_VERSION"
  curl -fsSL -o "$root/bin/$asset" "$release/$asset"
  curl -fsSL "$release/checksums.txt" | grep " $asset\$" | (cd "$root/bin" && sha256sum -c -)
  chmod +x "$root/bin/$asset"
  mv "$root/bin/$asset" "$root/bin/operator-sdk"

  step "OLM $OLM_VERSION"
  "$root/bin/operator-sdk" olm status >/dev/null 2>&1 || "$root/bin/operator-sdk" olm install --version "$OLM_VERSION" --timeout 5m

  # The bundle make bundle writes, for $IMG, written outside the working tree
  # so that the committed bundle/ stays as it is.
  step "the bundle of $IMG, pushed to the local registry"
  local version bundle=kind-registry:5000/awskubeflowprofiles-operator-bundle:e2e
  version=$(sed -n 's/^VERSION ?= //p' "$root/Makefile")
  "$root/bin/kustomize" build "$root/config/manifests" |
    (cd "$root" && go run ./hack/bundle -version "$version" -image "$IMG" -created-at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
      -maintainer "e2e <e2e@example.com>" -out "$work/bundle" -dockerfile "$work/bundle.Dockerfile")
  docker build -f "$work/bundle.Dockerfile" -t "$bundle" "$work"
  docker push "$bundle"

  # operator-sdk serves the bundle from a file-based catalog only with its
  # default index image, quay.io/operator-framework/opm:latest: a pinned opm
  # image lacks the label that marks an FBC index and takes the deprecated
  # SQLite path. That one image is not pinned here.
  step "the operator from its bundle (operator-sdk run bundle, AllNamespaces)"
  kubectl create namespace "$operator_ns" --dry-run=client -o yaml | kubectl apply -f -
  "$root/bin/operator-sdk" run bundle "$bundle" --namespace "$operator_ns" --install-mode AllNamespaces --use-http --timeout 10m
  local csv
  csv=$(kubectl -n "$operator_ns" get csv -o name | grep awskubeflowprofiles-operator)
  kubectl -n "$operator_ns" patch "$csv" --type=json \
    -p "$(sed 's#path: /spec/#path: /spec/install/spec/deployments/0/spec/#' "$root/e2e/kind/operator/localstack-patch.yaml")"
  # OLM updates the Deployment from the patched CSV; the rollout status
  # below means something only once the Deployment carries the patch.
  local deadline=$((SECONDS + 300))
  until kubectl -n "$operator_ns" get deployment "$operator_deployment" -o jsonpath='{.spec.template.spec.containers[0].args}' | grep -q -- '--resync-period=15s'; do
    if ((SECONDS > deadline)); then
      echo "kind-install: OLM did not apply the patched CSV to deployment $operator_deployment within 5 minutes" >&2
      exit 1
    fi
    sleep 2
  done
}

case "${OPERATOR_INSTALL:-kustomize}" in
kustomize)
  step "the operator ($IMG), with kustomize (e2e/kind/operator)"
  "$root/bin/kustomize" build "$root/e2e/kind/operator" | kubectl apply --server-side -f -
  ;;
olm) install_with_olm ;;
*)
  echo "kind-install: OPERATOR_INSTALL is kustomize or olm, not $OPERATOR_INSTALL" >&2
  exit 2
  ;;
esac
kubectl -n "$operator_ns" rollout status "deployment/$operator_deployment" --timeout=5m
step "kind target ready"
