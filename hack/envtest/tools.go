//go:build tools

// Package envtest pins the Kubernetes sources that scripts/envtest-binaries.sh
// builds when setup-envtest cannot download (kube-apiserver), and those that
// scripts/node-binaries.sh builds for the node e2e target (kubelet,
// kube-controller-manager, kube-scheduler, kube-proxy).
package envtest

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
