package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// The committed CRD is what controller-gen writes plus this patch, and
// patching it again changes nothing, so `make manifests` leaves the tree
// clean.
func TestPatchIsIdempotentOnTheCommittedCRD(t *testing.T) {
	g := NewWithT(t)
	crd, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "kubeflow.aws_awskubeflowprofiles.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	out, n, err := Patch(crd)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(2), "spec.profileDefaults.inlinePolicies and spec.profiles[].inlinePolicies")
	g.Expect(string(out)).To(Equal(string(crd)))
}

func TestPatchOnlyTouchesInlinePolicyDocuments(t *testing.T) {
	g := NewWithT(t)
	in := strings.Join([]string{
		"properties:",
		"  other:",
		"    properties:",
		"      document:",
		"        type: string",
		"  inlinePolicies:",
		"    items:",
		"      properties:",
		"        document:",
		"          description: the document.",
		"          type: object",
		"          x-kubernetes-preserve-unknown-fields: true",
		"        name:",
		"          type: string",
		"",
	}, "\n")
	out, n, err := Patch([]byte(in))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(1))
	g.Expect(string(out)).To(ContainSubstring("      document:\n        type: string\n"), "a property named document elsewhere is left alone")
	g.Expect(string(out)).To(ContainSubstring("          description: the document.\n"))
	g.Expect(string(out)).To(ContainSubstring("          - Version\n"))
	g.Expect(string(out)).To(ContainSubstring("        name:\n          type: string\n"), "the next property follows")
}
