package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	"sigs.k8s.io/yaml"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
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
	csv := bundle.CSV
	if _, err := time.Parse(time.RFC3339, csv.Annotations["createdAt"]); err != nil {
		t.Errorf("createdAt %q: %v", csv.Annotations["createdAt"], err)
	}
	image := got[0].Spec.Template.Spec.Containers[0].Image
	if csv.Annotations["containerImage"] != image || len(csv.Spec.RelatedImages) != 1 || csv.Spec.RelatedImages[0].Image != image {
		t.Errorf("containerImage %q and relatedImages %v must name the deployment's image %q", csv.Annotations["containerImage"], csv.Spec.RelatedImages, image)
	}
	links := map[string]string{}
	for _, l := range csv.Spec.Links {
		links[l.Name] = l.URL
	}
	for _, name := range []string{"Documentation", "Source"} {
		if !strings.HasPrefix(links[name], "https://") {
			t.Errorf("no %s link in the CSV: %v", name, csv.Spec.Links)
		}
	}
	if len(csv.Spec.Maintainers) != 1 || !strings.Contains(csv.Spec.Maintainers[0].Email, "@") {
		t.Errorf("maintainers %v: one with an email, set by MAINTAINER", csv.Spec.Maintainers)
	}
	checkDescription(t, csv.Spec.Description)

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

// checkDescription holds the CSV's description to OperatorHub's order: what
// it does with a link to learn more, then features, a usage example that is
// a valid object, and the prerequisites with a link to the IAM policy.
func checkDescription(t *testing.T, d string) {
	t.Helper()
	headings := []string{"## Features", "## Usage", "## Prerequisites"}
	last := 0
	for _, h := range headings {
		i := strings.Index(d, "\n"+h+"\n")
		if i < last {
			t.Fatalf("description: %q missing or out of order (want %v)", h, headings)
		}
		last = i
	}
	intro := d[:strings.Index(d, "\n## Features")]
	if !strings.Contains(intro, "](https://") {
		t.Error("description: the introduction links nowhere to learn more")
	}
	usage := d[strings.Index(d, "## Usage"):strings.Index(d, "## Prerequisites")]
	start, end := strings.Index(usage, "```yaml\n"), strings.LastIndex(usage, "```")
	if start < 0 || end <= start {
		t.Fatal("description: the usage section has no ```yaml example")
	}
	var example v1alpha1.AwsKubeflowProfiles
	if err := yaml.UnmarshalStrict([]byte(usage[start+len("```yaml\n"):end]), &example); err != nil {
		t.Fatalf("description: the usage example is not an AwsKubeflowProfiles: %v", err)
	}
	if example.Kind != "AwsKubeflowProfiles" || example.Spec.Cluster.Name == "" || len(example.Spec.Profiles) == 0 {
		t.Errorf("description: the usage example %+v names no cluster or profile", example)
	}
	prereqs := d[strings.Index(d, "## Prerequisites"):]
	for _, want := range []string{"EKS", "Kubeflow", "IAM policy", "](https://"} {
		if !strings.Contains(prereqs, want) {
			t.Errorf("description: the prerequisites do not mention %q", want)
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
			createdAt: "2026-12-01T00:00:00Z", maintainer: "Team <team@example.com>",
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
