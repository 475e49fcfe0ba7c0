// Command tooldeps checks that every tool a make target runs from bin/ is
// built by that target before it is run: by the target's own recipe, by a
// prerequisite, or by a script earlier in the same run. A tool that is only
// there because another target happened to install it passes on a developer's
// machine and fails with "No such file" on a clean CI runner.
//
// make itself is the parser: `make -n -B <target>` prints, in order, every
// command the target and its prerequisites would run, with the variables
// expanded. The check follows what those commands reach:
//
//   - a script under scripts/ is read where it is run, and the scripts it
//     runs in turn;
//   - `go test` and `go run` of one package (not a `...` pattern) reach that
//     package's Go files and the packages of this module it imports;
//     `filepath.Join(…, "bin", "<tool>")` there is a use of bin/<tool>, and
//     `filepath.Join(…, "scripts", "<name>.sh")` reaches that script (a
//     path further down, such as a file in a directory of bin/, is data);
//   - `GOBIN=<bin> go install <module>/<tool>@<version>`, `-o` or `-out`
//     naming a path under bin/, and `mv` or `cp` into one, put a tool there.
//
// Usage: go run ./hack/tooldeps [target ...]   (default: every target)
package main

import (
	"bufio"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

func main() {
	root, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	targets := os.Args[1:]
	if len(targets) == 0 {
		if targets, err = Targets(root); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	failed := false
	for _, t := range targets {
		report, err := Check(root, t)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, m := range report.Missing {
			failed = true
			fmt.Println(m)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// Use is one place that runs a tool from bin/.
type Use struct {
	Tool  string // the path under bin/, such as "kustomize"
	Where string // the recipe line, script or Go file that runs it
}

// Missing is a use of a tool that nothing run before it builds.
type Missing struct {
	Target string
	Use
}

func (m Missing) String() string {
	return fmt.Sprintf("make %s: %s runs bin/%s, which no prerequisite of %s builds: add the target that installs it to the prerequisites of %s",
		m.Target, m.Where, m.Tool, m.Target, m.Target)
}

// Report is what the check found for one target.
type Report struct {
	Target string
	// Uses are every use of a bin/ tool the target reaches, in order.
	Uses []Use
	// Built are the tools put under bin/, in the order they are built.
	Built   []string
	Missing []Missing
}

// UsesTool tells whether the target reaches a use of bin/<tool>.
func (r Report) UsesTool(tool string) bool {
	return slices.ContainsFunc(r.Uses, func(u Use) bool { return u.Tool == tool })
}

// Targets lists the explicit targets of the Makefile in root, sorted.
func Targets(root string) ([]string, error) {
	// -p prints the database; -q with the empty-rule target ":" runs nothing.
	cmd := exec.Command("make", "-C", root, "--no-print-directory", "-pRrq", ":")
	out, _ := cmd.Output() // -q exits 1 when ":" is not up to date; the database is printed anyway
	if len(out) == 0 {
		return nil, fmt.Errorf("make -p printed no database in %s", root)
	}
	rule := regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_.-]*):(?:[^=]|$)`)
	seen := map[string]bool{}
	notATarget := false
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "# Not a target:" {
			notATarget = true
			continue
		}
		if m := rule.FindStringSubmatch(line); m != nil && !notATarget && !strings.HasPrefix(m[1], ".") {
			seen[m[1]] = true
		}
		notATarget = false
	}
	targets := make([]string, 0, len(seen))
	for t := range seen {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	return targets, nil
}

// Check dry-runs target in root and follows every command it would run.
func Check(root, target string) (Report, error) {
	cmd := exec.Command("make", "-C", root, "--no-print-directory", "-n", "-B", target)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Report{}, fmt.Errorf("make -n -B %s: %w\n%s", target, err, stderr.String())
	}
	w := &walker{root: root, target: target, built: map[string]bool{}, inScript: map[string]bool{}, inPackage: map[string]bool{}}
	if w.module, err = modulePath(root); err != nil {
		return Report{}, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "make[") {
			continue
		}
		if err := w.command(line, "recipe `"+strings.TrimSpace(line)+"`", root); err != nil {
			return Report{}, err
		}
	}
	return w.report, nil
}

type walker struct {
	root, target, module string
	built                map[string]bool
	inScript             map[string]bool // scripts being read, so a cycle ends
	inPackage            map[string]bool // Go packages already read
	report               Report
}

var (
	goInstall  = regexp.MustCompile(`GOBIN=("?)(\S+?)("?) go install (\S+)@\S+`)
	outputFlag = regexp.MustCompile(`(?:^|\s)(?:-o|-out|--out|mkdir -p)[ =]"?((?:\$\{?root\}?/|\$\(pwd\)/|\./)?\S*?bin/[A-Za-z0-9_.-]+)`)
	moveInto   = regexp.MustCompile(`(?:^|[\s;&|])(?:mv|cp)\s+(?:-\S+\s+)*\S+\s+"?((?:\$\{?root\}?/|\./)?\S*?bin/[A-Za-z0-9_.-]+)"?\s*(?:$|[;&|])`)
	binUse     = regexp.MustCompile(`(?:^|[\s"'=(])((?:\$\{?root\}?/|\./)?\S*?bin/([A-Za-z0-9_.-]+))(/?)`)
	scriptRun  = regexp.MustCompile(`(?:^|[\s"'=(;&|])((?:\$\{?root\}?/|\./|\S*/)?scripts/[A-Za-z0-9_.-]+\.sh)`)
	goPackage  = regexp.MustCompile(`\bgo (?:test|run)\b((?:\s+-\S+(?:[ =][^-\s.]\S*)?)*)((?:\s+\./[A-Za-z0-9_./-]+)+)`)
)

// command follows one shell command line; dir is where relative paths in it
// are taken from.
func (w *walker) command(line, where, dir string) error {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return nil
	}
	// What the line builds counts for what it runs after it, and a path it
	// builds is not a use of that path.
	produced := map[string]bool{}
	for _, m := range goInstall.FindAllStringSubmatch(line, -1) {
		if w.isBinDir(m[2], dir) {
			w.build(installedName(m[4]))
		}
	}
	for _, m := range append(outputFlag.FindAllStringSubmatch(line, -1), moveInto.FindAllStringSubmatch(line, -1)...) {
		if tool, ok := w.binTool(m[1], dir); ok {
			produced[m[1]] = true
			w.build(tool)
		}
	}
	for _, m := range binUse.FindAllStringSubmatch(line, -1) {
		if m[3] == "/" || produced[m[1]] {
			continue
		}
		if tool, ok := w.binTool(m[1], dir); ok {
			w.use(tool, where)
		}
	}
	for _, m := range goPackage.FindAllStringSubmatch(line, -1) {
		for _, pkg := range strings.Fields(m[2]) {
			if strings.Contains(pkg, "...") {
				continue
			}
			if err := w.goPackage(filepath.Join(dir, pkg)); err != nil {
				return err
			}
		}
	}
	for _, m := range scriptRun.FindAllStringSubmatch(line, -1) {
		if err := w.script(w.resolve(m[1], dir)); err != nil {
			return err
		}
	}
	return nil
}

// script reads a shell script and follows each of its lines.
func (w *walker) script(file string) error {
	if w.inScript[file] {
		return nil
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("make %s runs %s, which does not exist", w.target, w.rel(file))
	}
	if err != nil {
		return err
	}
	w.inScript[file] = true
	defer delete(w.inScript, file)
	// Scripts here take the project root as $root and run from it.
	for i, line := range strings.Split(string(data), "\n") {
		if err := w.command(line, fmt.Sprintf("%s:%d", w.rel(file), i+1), w.root); err != nil {
			return err
		}
	}
	return nil
}

// goPackage reads the Go files of the package in dir and of the packages of
// this module it imports.
func (w *walker) goPackage(dir string) error {
	dir = filepath.Clean(dir)
	if w.inPackage[dir] {
		return nil
	}
	w.inPackage[dir] = true
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("make %s reaches Go package %s, which has no Go files", w.target, w.rel(dir))
	}
	sort.Strings(files)
	fset := token.NewFileSet()
	var imports []string
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("reading %s: %w", w.rel(f), err)
		}
		for _, imp := range file.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if rest, ok := strings.CutPrefix(p, w.module+"/"); ok {
				imports = append(imports, filepath.Join(w.root, filepath.FromSlash(rest)))
			}
		}
		var walkErr error
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || !isFilepathJoin(call) {
				return true
			}
			where := fmt.Sprintf("%s:%d", w.rel(f), fset.Position(call.Pos()).Line)
			// Only a path directly under bin/ or scripts/ is a tool or a
			// script; a file inside a directory of bin/ is data.
			args := stringArgs(call)
			if n := len(args); n >= 2 && args[n-1] != "" {
				switch {
				case args[n-2] == "bin":
					w.use(args[n-1], where)
				case args[n-2] == "scripts" && strings.HasSuffix(args[n-1], ".sh") && walkErr == nil:
					walkErr = w.script(filepath.Join(w.root, "scripts", args[n-1]))
				}
			}
			return true
		})
		if walkErr != nil {
			return walkErr
		}
	}
	for _, imp := range imports {
		if err := w.goPackage(imp); err != nil {
			return err
		}
	}
	return nil
}

func isFilepathJoin(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Join" {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && (pkg.Name == "filepath" || pkg.Name == "path")
}

// stringArgs returns the call's arguments, each a string literal's value or
// "" where it is not a literal.
func stringArgs(call *ast.CallExpr) []string {
	args := make([]string, len(call.Args))
	for i, a := range call.Args {
		if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			args[i], _ = strconv.Unquote(lit.Value)
		}
	}
	return args
}

func (w *walker) use(tool, where string) {
	w.report.Uses = append(w.report.Uses, Use{Tool: tool, Where: where})
	if !w.built[tool] {
		w.report.Missing = append(w.report.Missing, Missing{Target: w.target, Use: Use{Tool: tool, Where: where}})
	}
}

func (w *walker) build(tool string) {
	if !w.built[tool] {
		w.built[tool] = true
		w.report.Built = append(w.report.Built, tool)
	}
}

// binTool returns the name under bin/ that p (a path as written on a
// command line, relative to dir) names, if p is directly under the
// project's bin/.
func (w *walker) binTool(p, dir string) (string, bool) {
	abs := w.resolve(p, dir)
	rel, err := filepath.Rel(filepath.Join(w.root, "bin"), abs)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") || strings.ContainsRune(rel, filepath.Separator) {
		return "", false
	}
	return rel, true
}

func (w *walker) isBinDir(p, dir string) bool {
	return w.resolve(p, dir) == filepath.Join(w.root, "bin")
}

// resolve makes a path from a command line absolute, reading $root and
// ${root} as the project root, as the scripts here set it.
func (w *walker) resolve(p, dir string) string {
	p = strings.Trim(p, `"'`)
	for _, prefix := range []string{"$root/", "${root}/", "$(pwd)/"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			return filepath.Join(w.root, rest)
		}
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

func (w *walker) rel(p string) string {
	if r, err := filepath.Rel(w.root, p); err == nil {
		return r
	}
	return p
}

// installedName is the binary `go install` makes of a package path: its
// last element, or the one before a major-version suffix such as /v5.
func installedName(pkg string) string {
	base := path.Base(pkg)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" {
		return path.Base(path.Dir(pkg))
	}
	return base
}

func modulePath(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("reading the module path: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	return "", fmt.Errorf("go.mod in %s names no module", root)
}
