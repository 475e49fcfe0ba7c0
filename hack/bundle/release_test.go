package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
	"sigs.k8s.io/yaml"
)

const releaseCSV = "bundle/manifests/awskubeflowprofiles-operator.clusterserviceversion.yaml"

const committedCSV = `metadata:
  annotations:
    containerImage: ghcr.io/awskubeflowprofiles/operator:v0.1.0
    createdAt: "2026-12-01T00:00:00Z"
spec:
  install:
    spec:
      deployments:
      - spec:
          template:
            spec:
              containers:
              - image: ghcr.io/awskubeflowprofiles/operator:v0.1.0
  maintainers:
  - email: maintainers@awskubeflowprofiles.dev
  relatedImages:
  - image: ghcr.io/awskubeflowprofiles/operator:v0.1.0
`

// TestCheckReleaseBundle runs scripts/check-release-bundle.sh in a small git
// repository shaped like this one: a release may only stamp the committed
// bundle.
func TestCheckReleaseBundle(t *testing.T) {
	pushed := "ghcr.io/awskubeflowprofiles/operator:v0.1.0@sha256:" + strings.Repeat("a", 64)
	stamped := strings.NewReplacer(
		"ghcr.io/awskubeflowprofiles/operator:v0.1.0", pushed,
		`createdAt: "2026-12-01T00:00:00Z"`, `createdAt: "2027-01-05T10:11:12Z"`,
	).Replace(committedCSV)
	tests := []struct {
		name, version, csv, wantErr string
	}{
		{name: "the committed bundle, stamped", version: "0.1.0", csv: stamped},
		{name: "a tag the Makefile does not carry", version: "0.2.0", csv: stamped, wantErr: "tag v0.2.0 but the Makefile's VERSION is 0.1.0"},
		{name: "a maintainer that was not committed", version: "0.1.0",
			csv: strings.Replace(stamped, "maintainers@awskubeflowprofiles.dev", "someone@example.com", 1), wantErr: "differs from the committed one beyond createdAt"},
		{name: "an image other than the one pushed", version: "0.1.0",
			csv: strings.Replace(stamped, pushed, "ghcr.io/someone/else@sha256:"+strings.Repeat("b", 64), 1), wantErr: "names an image other than " + pushed},
	}
	script, err := os.ReadFile(filepath.Join("..", "..", "scripts", "check-release-bundle.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(p, content string, mode os.FileMode) {
				t.Helper()
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, p), []byte(content), mode); err != nil {
					t.Fatal(err)
				}
			}
			git := func(args ...string) {
				t.Helper()
				cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("git %v: %v\n%s", args, err, out)
				}
			}
			write("Makefile", "VERSION ?= 0.1.0\n", 0o644)
			write("scripts/check-release-bundle.sh", string(script), 0o755)
			write(releaseCSV, committedCSV, 0o644)
			git("init", "-q")
			git("add", ".")
			git("commit", "-q", "-m", "bundle")
			write(releaseCSV, tt.csv, 0o644)
			cmd := exec.Command(filepath.Join(dir, "scripts", "check-release-bundle.sh"), tt.version, pushed)
			out, err := cmd.CombinedOutput()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(string(out), tt.wantErr) {
				t.Fatalf("err = %v, output %q, want %q", err, out, tt.wantErr)
			}
		})
	}
}

// TestCommunityOperatorsLayout lays the committed bundle out as a
// community-operators pull request and reads it back as their pipeline
// would: the versioned bundle validates, and ci.yaml has the keys of their
// schema (operator-pipelines' ci-schema.json) with the reviewers given.
func TestCommunityOperatorsLayout(t *testing.T) {
	checkout := t.TempDir()
	if err := os.Mkdir(filepath.Join(checkout, "operators"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join("..", "..", "scripts", "community-operators.sh"), filepath.Join("..", "..", "bundle"), checkout, "alice,bob")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), `git commit -s -m "operator awskubeflowprofiles-operator (0.1.0)"`) {
		t.Errorf("the steps lack the signed-off commit with the title the pipeline parses:\n%s", out)
	}
	operator := filepath.Join(checkout, "operators", "awskubeflowprofiles-operator")
	b, err := manifests.GetBundleFromDir(filepath.Join(operator, "0.1.0"))
	if err != nil || b.CSV == nil {
		t.Fatalf("the laid-out bundle does not load: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(operator, "ci.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ci struct {
		UpdateGraph string   `json:"updateGraph"`
		Reviewers   []string `json:"reviewers"`
	}
	if err := yaml.UnmarshalStrict(data, &ci); err != nil {
		t.Fatalf("ci.yaml: %v", err)
	}
	if ci.UpdateGraph != "replaces-mode" || strings.Join(ci.Reviewers, ",") != "alice,bob" {
		t.Errorf("ci.yaml = %+v", ci)
	}
	if out, err := exec.Command(filepath.Join("..", "..", "scripts", "community-operators.sh"), filepath.Join("..", "..", "bundle"), checkout).CombinedOutput(); err == nil {
		t.Errorf("no reviewers given, yet it wrote ci.yaml:\n%s", out)
	}
}
