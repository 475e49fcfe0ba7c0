package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestEveryTargetBuildsTheToolsItRuns is the check on this repository: no
// make target runs a bin/ tool that it leaves to another target to install.
func TestEveryTargetBuildsTheToolsItRuns(t *testing.T) {
	root := repoRoot(t)
	targets, err := Targets(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"test", "test-e2e", "run-local", "bundle"} {
		if !slices.Contains(targets, want) {
			t.Fatalf("Targets() = %v: misses %s, so the Makefile was not read", targets, want)
		}
	}
	for _, target := range targets {
		report, err := Check(root, target)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range report.Missing {
			t.Error(m)
		}
	}
}

// TestTheCheckReachesWhatTheE2ESuiteRuns keeps the check from passing
// because it stopped seeing uses: the tools below are run by scripts and by
// the suite's Go code, each reached only by following scripts/e2e.sh.
func TestTheCheckReachesWhatTheE2ESuiteRuns(t *testing.T) {
	report, err := Check(repoRoot(t), "test-e2e")
	if err != nil {
		t.Fatal(err)
	}
	for tool, where := range map[string]string{
		"kustomize":      "scripts/kind-install.sh", // a script the Go code runs
		"nodeenv":        "e2e/framework/node.go",   // built by e2e.sh, run by the suite
		"localenv":       "e2e/framework/local.go",  // likewise
		"manager":        "e2e/framework/local.go",  // built by make build
		"images":         "e2e/framework/node.go",   // a directory hack/image writes
		"controller-gen": "recipe `" + repoRoot(t),  // run by make manifests
	} {
		if !slices.ContainsFunc(report.Uses, func(u Use) bool { return u.Tool == tool && strings.HasPrefix(u.Where, where) }) {
			t.Errorf("no use of bin/%s in %s found; uses: %v", tool, where, report.Uses)
		}
	}
}

// TestAMissingPrerequisiteIsFound drops kustomize from the prerequisites of
// test-e2e in a copy of the Makefile: the defect a clean CI runner would hit
// with exit 127 in the kind target's set-up.
func TestAMissingPrerequisiteIsFound(t *testing.T) {
	root := repoRoot(t)
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	const rule = "test-e2e: envtest build kustomize "
	if !strings.Contains(string(makefile), rule) {
		t.Fatalf("the Makefile has no line %q: update this test with the rule of test-e2e", rule)
	}
	dir := t.TempDir()
	for _, p := range []string{"scripts", "e2e", "hack", "internal", "api", "cmd", "config", "go.mod", "go.sum"} {
		if err := os.Symlink(filepath.Join(root, p), filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	broken := strings.Replace(string(makefile), rule, "test-e2e: envtest build ", 1)
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	report, err := Check(dir, "test-e2e")
	if err != nil {
		t.Fatal(err)
	}
	var where []string
	for _, m := range report.Missing {
		if m.Tool == "kustomize" {
			where = append(where, m.Where)
		}
	}
	for _, want := range []string{"scripts/kind-install.sh", "e2e/framework/node.go"} {
		if !slices.ContainsFunc(where, func(w string) bool { return strings.HasPrefix(w, want) }) {
			t.Errorf("missing kustomize not reported at %s; reported: %v", want, report.Missing)
		}
	}
}

// fixture writes a small project: files maps a path to its content.
func fixture(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCheck(t *testing.T) {
	makefile := `LOCALBIN ?= $(shell pwd)/bin
TOOL ?= $(LOCALBIN)/tool

with-tool: tool
	scripts/uses-tool.sh
without-tool:
	scripts/uses-tool.sh
suite-with-tool: tool
	scripts/suite.sh
suite-without-tool:
	scripts/suite.sh
recipe-without-tool:
	$(TOOL) run
builds-its-own:
	scripts/builds-own.sh
nested-without-tool:
	scripts/outer.sh
directory-only:
	scripts/dirs.sh

tool: $(TOOL)
$(TOOL):
	GOBIN=$(LOCALBIN) go install example.com/x/tool/v2@v2.0.0
`
	files := map[string]string{
		"Makefile": makefile,
		"go.mod":   "module example.com/project\n",
		"scripts/uses-tool.sh": "#!/usr/bin/env bash\nroot=$(cd \"$(dirname \"$0\")/..\" && pwd)\n" +
			"\"$root/bin/tool\" build | kubectl apply -f -\n",
		"scripts/suite.sh":  "#!/usr/bin/env bash\ngo test ./e2e/ -count=1\n",
		"scripts/outer.sh":  "#!/usr/bin/env bash\nscripts/uses-tool.sh\n",
		"scripts/dirs.sh":   "#!/usr/bin/env bash\nls bin/k8s/1.0/ && /usr/bin/env true\n",
		"e2e/suite_test.go": "package e2e\n\nimport _ \"example.com/project/e2e/framework\"\n",
		"e2e/framework/run.go": "package framework\n\nimport \"path/filepath\"\n\n" +
			"var Tool = filepath.Join(\"/root\", \"bin\", \"tool\")\n" +
			"var Data = filepath.Join(\"/root\", \"bin\", \"artifacts\", \"run\")\n",
		"scripts/builds-own.sh": "#!/usr/bin/env bash\ngo build -o bin/own ./own\nbin/own up\n" +
			"curl -fsSL -o \"$root/bin/dl.tmp\" https://example.com/dl\nmv \"$root/bin/dl.tmp\" \"$root/bin/dl\"\n\"$root/bin/dl\" version\n",
	}
	tests := []struct {
		target  string
		missing []string // "tool@where-prefix"
		uses    []string
	}{
		{target: "with-tool", uses: []string{"tool"}},
		{target: "without-tool", missing: []string{"tool@scripts/uses-tool.sh:3"}},
		{target: "suite-with-tool", uses: []string{"tool"}},
		{target: "suite-without-tool", missing: []string{"tool@e2e/framework/run.go:5"}},
		{target: "recipe-without-tool", missing: []string{"tool@recipe `"}},
		{target: "builds-its-own", uses: []string{"own", "dl"}},
		{target: "nested-without-tool", missing: []string{"tool@scripts/uses-tool.sh:3"}},
		{target: "directory-only"},
	}
	dir := fixture(t, files)
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			report, err := Check(dir, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			var missing []string
			for _, m := range report.Missing {
				missing = append(missing, m.Tool+"@"+m.Where)
			}
			if len(missing) != len(tt.missing) {
				t.Fatalf("missing = %q, want %q", missing, tt.missing)
			}
			for i, want := range tt.missing {
				if !strings.HasPrefix(missing[i], want) {
					t.Errorf("missing[%d] = %q, want prefix %q", i, missing[i], want)
				}
			}
			for _, tool := range tt.uses {
				if !report.UsesTool(tool) {
					t.Errorf("no use of bin/%s found; uses: %v", tool, report.Uses)
				}
			}
			if tt.target == "directory-only" && len(report.Uses) != 0 {
				t.Errorf("a directory of bin/ and /usr/bin/env are not tools; uses: %v", report.Uses)
			}
		})
	}
}

func TestInstalledName(t *testing.T) {
	for pkg, want := range map[string]string{
		"sigs.k8s.io/kustomize/kustomize/v5":              "kustomize",
		"sigs.k8s.io/controller-tools/cmd/controller-gen": "controller-gen",
		"github.com/rhysd/actionlint/cmd/actionlint":      "actionlint",
		"example.com/vet": "vet",
	} {
		if got := installedName(pkg); got != want {
			t.Errorf("installedName(%q) = %q, want %q", pkg, got, want)
		}
	}
}
