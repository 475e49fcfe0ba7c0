//go:build tools

// Package envtest pins the Kubernetes control-plane sources that
// scripts/envtest-binaries.sh builds when setup-envtest cannot download.
package envtest

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
