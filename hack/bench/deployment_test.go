package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The bench runs the manager with the environment the shipped Deployment
// gives it; its GOMEMLIMIT leaves a tenth of the memory limit to what Go
// does not count.
func TestDeploymentEnvIsTheShippedManifests(t *testing.T) {
	g := NewWithT(t)
	c, env, err := managerContainer(filepath.Join("..", "..", "config", "manager", "manager.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(env).To(ConsistOf("GOGC=50", HavePrefix("GOMEMLIMIT=")))
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "GOMEMLIMIT="); ok {
			limit := resource.MustParse(strings.TrimSuffix(v, "B"))
			memory := c.Resources.Limits[corev1.ResourceMemory]
			g.Expect(limit.Value()).To(BeNumerically("<=", memory.Value()*9/10), "GOMEMLIMIT against limits.memory %s", memory.String())
		}
	}
	g.Expect(withEnv(env, "GOGC", "100")).To(ContainElements("GOGC=100"))
	g.Expect(withEnv(env, "GOGC", "100")).NotTo(ContainElement("GOGC=50"))
	g.Expect(withEnv(env, "GOGC", "")).To(Equal(env))
}

// The downward API's memory limit is given in bytes, rounded up by the
// divisor as the kubelet rounds it.
func TestDeploymentEnvFromTheMemoryLimit(t *testing.T) {
	c := corev1.Container{Name: "manager", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1000")}}}
	for divisor, want := range map[string]string{"": "X=1000", "1": "X=1000", "3": "X=334"} {
		ref := &corev1.ResourceFieldSelector{Resource: "limits.memory"}
		if divisor != "" {
			ref.Divisor = resource.MustParse(divisor)
		}
		c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: ref}}}
		env, err := containerEnv(c)
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		NewWithT(t).Expect(env).To(Equal([]string{want}), "divisor %q", divisor)
	}
}

// A value the bench cannot work out is refused, not dropped.
func TestDeploymentEnvRefusesWhatItCannotGive(t *testing.T) {
	for name, env := range map[string]string{
		"a CPU limit":       "valueFrom: {resourceFieldRef: {resource: limits.cpu}}",
		"a field":           "valueFrom: {fieldRef: {fieldPath: metadata.name}}",
		"no such limit":     "valueFrom: {resourceFieldRef: {resource: limits.memory}}",
		"another container": "valueFrom: {resourceFieldRef: {containerName: sidecar, resource: limits.memory}}",
	} {
		t.Run(name, func(t *testing.T) {
			limits := "resources: {limits: {memory: 256Mi}}"
			if name == "no such limit" {
				limits = "resources: {}"
			}
			manifest := "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: manager\n        " + limits +
				"\n        env:\n        - name: X\n          " + env + "\n"
			path := filepath.Join(t.TempDir(), "manager.yaml")
			NewWithT(t).Expect(os.WriteFile(path, []byte(manifest), 0o600)).To(Succeed())
			_, err := deploymentEnv(path)
			NewWithT(t).Expect(err).To(MatchError(ContainSubstring("env X")))
		})
	}
}
