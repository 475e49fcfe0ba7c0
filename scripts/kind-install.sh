#!/usr/bin/env bash
# Installs into the kind cluster of $KUBECONFIG what the e2e kind target
# needs, each step printed and safe to repeat:
#   cert-manager (for the webhook's certificate), LocalStack (IAM and STS),
#   the EKS pod identity webhook, Istio's CRDs and Kubeflow's profile
#   controller (pinned upstream manifests, pointed at LocalStack), and the
#   operator (image $IMG, already loaded into kind).
# Needs Docker, kind, kubectl and internet. Run by the suite; see e2e/README.md.
set -euo pipefail

: "${KUBECONFIG:?KUBECONFIG of the kind cluster}"
: "${IMG:?operator image loaded into kind}"
CERT_MANAGER_VERSION=${CERT_MANAGER_VERSION:-v1.16.2}
ISTIO_VERSION=${ISTIO_VERSION:-1.24.2}
POD_IDENTITY_WEBHOOK_IMAGE=${POD_IDENTITY_WEBHOOK_IMAGE:-amazon/amazon-eks-pod-identity-webhook:v0.5.5}
# kubeflow/dashboard after its profile controller moved to the AWS SDK for Go
# v2 (#251), which honours AWS_ENDPOINT_URL.
KUBEFLOW_DASHBOARD_REF=${KUBEFLOW_DASHBOARD_REF:-d84246482d865a2bbd7e782ccafa6cd842bf6999}
LOCALSTACK_IN_CLUSTER=http://localstack.localstack.svc.cluster.local:4566

root=$(cd "$(dirname "$0")/.." && pwd)
step() { echo "== $*"; }
for tool in kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-install: $tool not found" >&2; exit 3; }
done

step "cert-manager $CERT_MANAGER_VERSION"
kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
kubectl -n cert-manager wait --for=condition=Available deployment --all --timeout=5m

step "LocalStack (IAM, STS) on NodePort 30566"
kubectl apply -f "$root/e2e/kind/localstack.yaml"
kubectl -n localstack wait --for=condition=Available deployment/localstack --timeout=5m

step "EKS pod identity webhook ($POD_IDENTITY_WEBHOOK_IMAGE)"
sed "s#POD_IDENTITY_WEBHOOK_IMAGE#$POD_IDENTITY_WEBHOOK_IMAGE#" "$root/e2e/kind/pod-identity-webhook.yaml" | kubectl apply -f -
kubectl -n pod-identity-webhook wait --for=condition=Available deployment/pod-identity-webhook --timeout=5m

step "Istio $ISTIO_VERSION CRDs (Kubeflow's profile controller writes AuthorizationPolicies)"
kubectl apply -f "https://raw.githubusercontent.com/istio/istio/$ISTIO_VERSION/manifests/charts/base/files/crd-all.gen.yaml"

step "Kubeflow's profile controller (kubeflow/dashboard@$KUBEFLOW_DASHBOARD_REF), pointed at LocalStack"
kubectl create namespace kubeflow --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -k "https://github.com/kubeflow/dashboard/components/profile-controller/manifests/kustomize/overlays/kubeflow?ref=$KUBEFLOW_DASHBOARD_REF"
kubectl -n kubeflow set env deployment/profiles-deployment -c manager \
  AWS_REGION=us-east-1 AWS_ENDPOINT_URL="$LOCALSTACK_IN_CLUSTER"
kubectl -n kubeflow rollout status deployment/profiles-deployment --timeout=5m

step "the operator ($IMG)"
"$root/bin/kustomize" build "$root/e2e/kind/operator" | kubectl apply --server-side -f -
kubectl -n awskubeflowprofiles-system rollout status deployment/awskubeflowprofiles-controller-manager --timeout=5m
step "kind target ready"
