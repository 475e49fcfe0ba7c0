package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sha = "3d3c42e5aac5ba805825da76410c181273ba90b1"

func TestLint(t *testing.T) {
	good := `name: x
on: push
permissions:
  contents: read
jobs:
  a:
    runs-on: ubuntu-24.04
    timeout-minutes: 10
    permissions:
      id-token: write
    steps:
      - uses: actions/checkout@` + sha + ` # v7.0.1
      - uses: ./.github/actions/local
      - run: echo hi
  reusable:
    uses: octo/repo/.github/workflows/w.yaml@` + sha + ` # v1.0.0
`
	tests := []struct {
		name, workflow string
		want           []string // substrings, one per problem
	}{
		{name: "pinned, read-only, with timeouts", workflow: good},
		{name: "a quoted pin", workflow: strings.Replace(good, "actions/checkout@"+sha, `"actions/checkout@`+sha+`"`, 1)},
		{name: "a tag", workflow: strings.Replace(good, "actions/checkout@"+sha, "actions/checkout@v7", 1), want: []string{"x.yaml:12: actions/checkout@v7 is not pinned by a full commit SHA"}},
		{name: "a short SHA", workflow: strings.Replace(good, sha+" # v7.0.1", sha[:12]+" # v7.0.1", 1), want: []string{"is not pinned by a full commit SHA"}},
		{name: "no release comment", workflow: strings.Replace(good, " # v7.0.1", "", 1), want: []string{"add the release the SHA is"}},
		{name: "no top-level permissions", workflow: strings.Replace(good, "permissions:\n  contents: read\n", "", 1), want: []string{"no top-level permissions"}},
		{name: "a write for every job", workflow: strings.Replace(good, "  contents: read\n", "  contents: write\n", 1), want: []string{"grant contents: write to every job"}},
		{name: "write-all", workflow: strings.Replace(good, "permissions:\n  contents: read\n", "permissions: write-all\n", 1), want: []string{"grant write-all"}},
		{name: "no timeout", workflow: strings.Replace(good, "    timeout-minutes: 10\n", "", 1), want: []string{"job a has no timeout-minutes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Lint("x.yaml", []byte(tt.workflow))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("problems = %q, want %d like %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %q lacks %q", got[i], w)
				}
			}
		})
	}
}

// TestTheRepositoryWorkflows lints .github/workflows, which must hold the
// four workflows the project ships.
func TestTheRepositoryWorkflows(t *testing.T) {
	problems, err := LintDir("../../.github/workflows")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	for _, w := range []string{"ci.yaml", "e2e-kind.yaml", "e2e-eks.yaml", "release.yaml"} {
		if _, err := os.Stat(filepath.Join("../../.github/workflows", w)); err != nil {
			t.Error(err)
		}
	}
}
