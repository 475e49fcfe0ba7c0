package framework

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func projectRoot(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readFile(t *testing.T, root, p string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// The files of the kind target that must take every version and image from
// PinsFile. The operator's own image is built by the suite.
func kindTargetFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"scripts/kind-install.sh", "scripts/e2e.sh", "e2e/framework/kind.go"}
	for _, pattern := range []string{"e2e/kind/*.yaml", "e2e/kind/*/*.yaml", ".github/workflows/e2e-kind.yaml"} {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			rel, _ := filepath.Rel(root, m)
			files = append(files, rel)
		}
	}
	return files
}

var (
	// An image reference with a tag or a digest, such as
	// localstack/localstack:4.0.3 or kindest/node:v1.37.0@sha256:….
	imageRef = regexp.MustCompile(`\b[a-z0-9][a-z0-9.-]*(?:/[a-z0-9._-]+)+(?::[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})`)
	// A release version such as v0.33.0 or 1.29.6; four parts are an IPv4
	// address and are left alone.
	releaseVersion = regexp.MustCompile(`\bv?\d+\.\d+\.\d+(?:\.\d+)?\b`)
	placeholder    = regexp.MustCompile(`image: ([A-Z][A-Z0-9_]*)\s*$`)
	shellVar       = regexp.MustCompile(`\$\{?([A-Z][A-Z0-9_]*)`)
)

// builtByTheSuite tells the images the kind target builds (the operator, its
// bundle, Kubeflow's from source), which have no version to pin.
func builtByTheSuite(ref string) bool {
	return strings.Contains(ref, "awskubeflowprofiles/operator") || strings.Contains(ref, "awskubeflowprofiles-operator-bundle") ||
		strings.HasPrefix(ref, "kubeflow-dashboard/")
}

// TestTheKindTargetTakesEveryVersionFromItsPins reads the manifests, scripts
// and workflow of the kind target: none names an image or a release version
// of its own, each image placeholder is a pin that kind-install.sh fills in,
// and every pin is read somewhere.
func TestTheKindTargetTakesEveryVersionFromItsPins(t *testing.T) {
	root := projectRoot(t)
	pins, err := LoadPins(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{PinKindVersion, PinKindNodeImage} {
		if _, err := pins.Get(key); err != nil {
			t.Error(err)
		}
	}
	install := readFile(t, root, "scripts/kind-install.sh")
	used := map[string]bool{}
	for _, file := range kindTargetFiles(t, root) {
		text := readFile(t, root, file)
		for n, line := range strings.Split(text, "\n") {
			where := file + ":" + strconv.Itoa(n+1)
			code := line
			if strings.HasSuffix(file, ".sh") || strings.HasSuffix(file, ".yaml") {
				code, _, _ = strings.Cut(line, "#") // comments may explain a version
			} else if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			// A workflow pins its actions by commit, with the release as a comment.
			if strings.Contains(code, "uses: ") {
				continue
			}
			for _, loc := range imageRef.FindAllStringIndex(code, -1) {
				ref := code[loc[0]:loc[1]]
				if loc[0] > 0 && strings.ContainsRune("./", rune(code[loc[0]-1])) {
					continue // a path such as ./e2e/workloads/pause:pause
				}
				if !builtByTheSuite(ref) {
					t.Errorf("%s: image %s: take it from %s", where, ref, PinsFile)
				}
			}
			for _, v := range releaseVersion.FindAllString(code, -1) {
				if strings.Count(v, ".") == 2 {
					t.Errorf("%s: version %s: take it from %s", where, v, PinsFile)
				}
			}
			if m := placeholder.FindStringSubmatch(code); m != nil {
				if _, ok := pins[m[1]]; !ok {
					t.Errorf("%s: image placeholder %s is not a pin", where, m[1])
				} else if base := filepath.Base(file); !strings.Contains(install, "s#"+m[1]+"#$"+m[1]+"#") || !strings.Contains(install, base) {
					t.Errorf("%s: kind-install.sh does not replace %s in %s", where, m[1], base)
				}
			}
			for _, m := range shellVar.FindAllStringSubmatch(code, -1) {
				used[m[1]] = true
			}
		}
	}
	// The Makefile reads the pins it includes as $(KEY).
	for _, m := range regexp.MustCompile(`\$\(([A-Z][A-Z0-9_]*)\)`).FindAllStringSubmatch(readFile(t, root, "Makefile"), -1) {
		used[m[1]] = true
	}
	kindGo := readFile(t, root, "e2e/framework/kind.go")
	for key := range pins {
		if !used[key] && !strings.Contains(kindGo, pinConstFor(key)) {
			t.Errorf("%s pins %s, which nothing of the kind target reads: remove it or use it", PinsFile, key)
		}
	}
}

// pinConstFor is the name of the Go constant that holds a pin's key.
func pinConstFor(key string) string {
	for _, c := range []struct{ name, key string }{{"PinKindVersion", PinKindVersion}, {"PinKindNodeImage", PinKindNodeImage}} {
		if c.key == key {
			return c.name
		}
	}
	return "\x00"
}

// TestTheNodeImageIsTheOneOfTheKindRelease keeps the two kind pins
// together: the node image must be the default of the pinned kind release,
// read from kind's Go module (the Go module proxy serves it), so that a bump
// of one without the other fails here and not on a runner.
func TestTheNodeImageIsTheOneOfTheKindRelease(t *testing.T) {
	pins, err := LoadPins(projectRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	version, _ := pins.Get(PinKindVersion)
	image, _ := pins.Get(PinKindNodeImage)
	cmd := exec.Command("go", "mod", "download", "-json", "sigs.k8s.io/kind@"+version)
	cmd.Dir = t.TempDir()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download sigs.k8s.io/kind@%s: %v\n%s", version, err, out)
	}
	var module struct{ Dir string }
	if err := json.Unmarshal(out, &module); err != nil {
		t.Fatal(err)
	}
	source, err := os.ReadFile(filepath.Join(module.Dir, "pkg", "apis", "config", "defaults", "image.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`const Image = "([^"]+)"`).FindSubmatch(source)
	if m == nil {
		t.Fatalf("no default node image in kind %s's pkg/apis/config/defaults/image.go", version)
	}
	if string(m[1]) != image {
		t.Errorf("%s = %s, but kind %s's node image is %s: pin that one", PinKindNodeImage, image, version, m[1])
	}
	if got, err := NodeImageKubernetesVersion(image); err != nil || !strings.HasPrefix(got, "v1.") {
		t.Errorf("NodeImageKubernetesVersion(%s) = %q, %v", image, got, err)
	}
}

func TestParsePins(t *testing.T) {
	tests := []struct {
		name, text string
		want       Pins
		wantErr    string
	}{
		{name: "keys, comments and blank lines", text: "# c\n\nA=1\nB_2=x/y:z@sha256:ab\n", want: Pins{"A": "1", "B_2": "x/y:z@sha256:ab"}},
		{name: "a value bash would expand", text: "A=$HOME/x\n", wantErr: "plain value"},
		{name: "a quoted value", text: "A=\"1\"\n", wantErr: "plain value"},
		{name: "a space", text: "A=1 2\n", wantErr: "plain value"},
		{name: "a lower-case key", text: "a=1\n", wantErr: "plain value"},
		{name: "a pin twice", text: "A=1\nA=2\n", wantErr: "A is pinned twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePins([]byte(tt.text))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestVersionChecks(t *testing.T) {
	const image = "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"
	tests := []struct {
		name    string
		err     error
		wantErr string
	}{
		{name: "the pinned kind", err: CheckKindVersion("kind v0.33.0 go1.26.3 linux/amd64\n", "v0.33.0")},
		{name: "another kind on PATH", err: CheckKindVersion("kind v0.26.0 go1.23.4 linux/amd64", "v0.33.0"), wantErr: "the kind binary is v0.26.0 but e2e/kind/pins.env pins v0.33.0"},
		{name: "not kind", err: CheckKindVersion("command not found", "v0.33.0"), wantErr: "cannot read a kind version"},
		{name: "the node of the pinned image", err: CheckNodeVersion("v1.37.0", image, "c")},
		{name: "a build suffix", err: CheckNodeVersion("v1.37.0+kind", image, "c")},
		{name: "a cluster left from an older image", err: CheckNodeVersion("v1.32.0", image, "c"), wantErr: "runs Kubernetes v1.32.0 but e2e/kind/pins.env pins the node image " + image + ": delete the cluster (kind delete cluster --name c)"},
		{name: "an image without a tag", err: CheckNodeVersion("v1.37.0", "kindest/node@sha256:ab", "c"), wantErr: "has no tag"},
		{name: "a registry port is no tag", err: CheckNodeVersion("v1.37.0", "localhost:5000/node", "c"), wantErr: "has no tag"},
		{name: "the patched issuer", err: CheckIssuer(kindIssuer, kindIssuer)},
		{name: "a patch kubeadm ignored", err: CheckIssuer("https://kubernetes.default.svc.cluster.local", kindIssuer), wantErr: "the kubeadm patch in e2e/kind/kind-config.yaml did not apply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantErr == "" {
				if tt.err != nil {
					t.Fatal(tt.err)
				}
				return
			}
			if tt.err == nil || !strings.Contains(tt.err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", tt.err, tt.wantErr)
			}
		})
	}
	if v, err := NodeImageKubernetesVersion(image); v != "v1.37.0" || err != nil {
		t.Errorf("NodeImageKubernetesVersion(%s) = %q, %v; want v1.37.0", image, v, err)
	}
}
