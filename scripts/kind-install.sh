#!/usr/bin/env bash
# Installs into the kind cluster of $KUBECONFIG what the e2e kind target
# needs, each step printed and safe to repeat:
#   cert-manager (for the webhook's certificate), LocalStack (IAM and STS),
#   the EKS pod identity webhook, Istio's CRDs and Kubeflow's profile
#   controller (built from a pinned commit, pointed at LocalStack), and the
#   operator (image $IMG, already loaded into kind).
# Every version comes from e2e/kind/pins.env. Needs Docker, kubectl, internet
# and bin/kind and bin/kustomize (make test-e2e E2E_TARGET=kind builds both).
# Run by the suite; see e2e/README.md.
set -euo pipefail

: "${KUBECONFIG:?KUBECONFIG of the kind cluster}"
: "${KIND_CLUSTER:?name of the kind cluster}"
: "${IMG:?operator image loaded into kind}"
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../e2e/kind/pins.env
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
overlay=$(mktemp -d)
trap 'rm -rf "$overlay"' EXIT
cat >"$overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- https://github.com/kubeflow/dashboard/components/profile-controller/manifests/kustomize/overlays/kubeflow?ref=$KUBEFLOW_DASHBOARD_REF
images:
- name: ghcr.io/kubeflow/dashboard/profile-controller
  newName: ${PROFILE_CONTROLLER_IMAGE%:*}
  newTag: ${PROFILE_CONTROLLER_IMAGE##*:}
- name: ghcr.io/kubeflow/dashboard/access-management
  newName: ${ACCESS_MANAGEMENT_IMAGE%:*}
  newTag: ${ACCESS_MANAGEMENT_IMAGE##*:}
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

step "the operator ($IMG)"
"$root/bin/kustomize" build "$root/e2e/kind/operator" | kubectl apply --server-side -f -
kubectl -n awskubeflowprofiles-system rollout status deployment/awskubeflowprofiles-controller-manager --timeout=5m
step "kind target ready"
