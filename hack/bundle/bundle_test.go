package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
)

// TestCommittedBundleIsValid runs operator-framework/api's validators (the
// ones `operator-sdk bundle validate --select-optional
// name=operatorhub,good-practices` runs) on the committed bundle/.
func TestCommittedBundleIsValid(t *testing.T) {
	bundle, err := manifests.GetBundleFromDir(filepath.Join("..", "..", "bundle"))
	if err != nil {
		t.Fatalf("loading bundle/: %v", err)
	}
	validators := validation.DefaultBundleValidators.WithValidators(
		validation.OperatorHubV2Validator, validation.GoodPracticesValidator, validation.AlphaDeprecatedAPIsValidator,
	)
	objs := append(bundle.ObjectsToValidate(), bundle)
	results := validators.Validate(objs...)
	for _, r := range results {
		for _, e := range r.Errors {
			t.Errorf("%s: %s", r.Name, e)
		}
		// A warning fails too: operator-framework/api v0.43.0 stopped
		// flagging events.k8s.io/v1 events as the v1beta1 API removed in
		// Kubernetes 1.25, the one warning this bundle had, so none is left
		// to accept.
		for _, w := range r.Warnings {
			t.Errorf("warning: %s: %s", r.Name, w)
		}
	}
	if bundle.CSV == nil || len(bundle.V1CRDs) != 1 {
		t.Fatalf("want a CSV and one CRD, got CSV=%v, %d CRDs", bundle.CSV != nil, len(bundle.V1CRDs))
	}
	got := bundle.CSV.Spec.InstallStrategy.StrategySpec.DeploymentSpecs
	if len(got) != 1 {
		t.Fatalf("want one deployment in the CSV, got %d", len(got))
	}
	// Each object's IAM calls use its cluster's region and so partition; a
	// region fixed in the manager would send a China or GovCloud cluster's
	// calls to the wrong partition's credentials chain.
	for _, c := range got[0].Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == "AWS_REGION" || e.Name == "AWS_DEFAULT_REGION" {
				t.Errorf("container %s fixes %s=%s; the region comes from each object's spec.cluster.region", c.Name, e.Name, e.Value)
			}
		}
	}
}

// TestGenerateIsDeterministic regenerates the bundle twice from the same
// input into a temporary directory: the two runs must agree byte for byte,
// or `make bundle` could never leave the tree clean.
func TestGenerateIsDeterministic(t *testing.T) {
	kustomize := filepath.Join("..", "..", "bin", "kustomize")
	if _, err := os.Stat(kustomize); err != nil {
		t.Skipf("bin/kustomize is not installed (make kustomize): %v", err)
	}
	input, err := exec.Command(kustomize, "build", filepath.Join("..", "..", "config", "manifests")).Output()
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	dirs := [2]string{t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		o := options{version: "0.1.0", image: "example.com/operator:v0.1.0", pkg: "awskubeflowprofiles-operator",
			channels: "candidate", defaultChannel: "candidate", out: filepath.Join(dir, "bundle"), dockerfile: filepath.Join(dir, "bundle.Dockerfile")}
		if err := run(bytes.NewReader(input), o); err != nil {
			t.Fatal(err)
		}
	}
	err = filepath.Walk(dirs[0], func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dirs[0], path)
		a, _ := os.ReadFile(path)
		b, err := os.ReadFile(filepath.Join(dirs[1], rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
