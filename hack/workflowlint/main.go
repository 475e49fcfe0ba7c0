// Command workflowlint checks what actionlint does not about the GitHub
// workflows: every action is pinned by a full commit SHA with its release
// as a comment (a tag can be moved to other code, a SHA cannot), the
// workflow's own permissions are read-only with anything more granted per
// job, and every job has a timeout. `make lint-workflows` runs it after
// actionlint.
//
// Usage: go run ./hack/workflowlint [dir]   (default .github/workflows)
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

func main() {
	dir := ".github/workflows"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	problems, err := LintDir(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}

// LintDir lints every workflow file in dir.
func LintDir(dir string) ([]string, error) {
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no workflows in %s", dir)
	}
	sort.Strings(files)
	var problems []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		p, err := Lint(filepath.Base(f), data)
		if err != nil {
			return nil, err
		}
		problems = append(problems, p...)
	}
	return problems, nil
}

var (
	usesLine = regexp.MustCompile(`^\s*(?:-\s+)?uses:\s*(\S+)(.*)$`)
	pinned   = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$`)
	release  = regexp.MustCompile(`^\s+#\s+v\d+(\.\d+)*\S*\s*$`)
)

type workflow struct {
	Permissions any            `json:"permissions"`
	Jobs        map[string]job `json:"jobs"`
}

type job struct {
	Permissions    any    `json:"permissions"`
	TimeoutMinutes any    `json:"timeout-minutes"`
	Uses           string `json:"uses"`
}

// Lint checks one workflow.
func Lint(name string, data []byte) ([]string, error) {
	var problems []string
	for i, line := range strings.Split(string(data), "\n") {
		m := usesLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		m[1] = strings.Trim(m[1], `"'`)
		if strings.HasPrefix(m[1], "./") || strings.HasPrefix(m[1], "docker://") {
			continue
		}
		if !pinned.MatchString(m[1]) {
			problems = append(problems, fmt.Sprintf("%s:%d: %s is not pinned by a full commit SHA: use owner/repo@<40-hex SHA> # vX.Y.Z", name, i+1, m[1]))
		} else if !release.MatchString(m[2]) {
			problems = append(problems, fmt.Sprintf("%s:%d: %s: add the release the SHA is, as a comment (# vX.Y.Z), so updates can be reviewed", name, i+1, m[1]))
		}
	}
	var w workflow
	if err := yaml.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if w.Permissions == nil {
		problems = append(problems, fmt.Sprintf("%s: no top-level permissions: set `permissions: {contents: read}` and grant more per job", name))
	} else if writes := writeScopes(w.Permissions); len(writes) > 0 {
		problems = append(problems, fmt.Sprintf("%s: the top-level permissions grant %s to every job: grant them in the jobs that need them", name, strings.Join(writes, ", ")))
	}
	jobs := make([]string, 0, len(w.Jobs))
	for id := range w.Jobs {
		jobs = append(jobs, id)
	}
	sort.Strings(jobs)
	for _, id := range jobs {
		if j := w.Jobs[id]; j.TimeoutMinutes == nil && j.Uses == "" {
			problems = append(problems, fmt.Sprintf("%s: job %s has no timeout-minutes: a hung job holds a runner for 6 hours", name, id))
		}
	}
	return problems, nil
}

// writeScopes lists the scopes a permissions value grants write (or
// id-token) access to; write-all grants all of them.
func writeScopes(p any) []string {
	switch v := p.(type) {
	case string:
		if v == "write-all" {
			return []string{"write-all"}
		}
	case map[string]any:
		var out []string
		for scope, access := range v {
			if access == "write" {
				out = append(out, scope+": write")
			}
		}
		sort.Strings(out)
		return out
	}
	return nil
}
