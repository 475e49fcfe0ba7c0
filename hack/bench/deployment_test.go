package main

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

// The bench runs the manager with the environment the shipped Deployment
// gives it, GOMEMLIMIT from the container's memory limit included.
func TestDeploymentEnvIsTheShippedManifests(t *testing.T) {
	g := NewWithT(t)
	env, err := deploymentEnv(filepath.Join("..", "..", "config", "manager", "manager.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(env).To(ConsistOf("GOGC=50", "GOMEMLIMIT=268435456"))
	g.Expect(withEnv(env, "GOGC", "100")).To(ConsistOf("GOGC=100", "GOMEMLIMIT=268435456"))
	g.Expect(withEnv(env, "GOGC", "")).To(Equal(env))
}

// A value the bench cannot work out is refused, not dropped.
func TestDeploymentEnvRefusesWhatItCannotGive(t *testing.T) {
	for name, env := range map[string]string{
		"a CPU limit":   "valueFrom: {resourceFieldRef: {resource: limits.cpu}}",
		"a field":       "valueFrom: {fieldRef: {fieldPath: metadata.name}}",
		"no such limit": "valueFrom: {resourceFieldRef: {resource: limits.memory}}",
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
