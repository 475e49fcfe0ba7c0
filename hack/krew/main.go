// Command krew builds the kubectl plugin's release archives, one a
// platform, and the krew manifest that installs them: what a release uploads
// and what a pull request to the krew index adds as
// plugins/awskubeflowprofiles.yaml. Each archive holds the binary and the
// LICENSE; the manifest names each archive's release URL and SHA-256.
//
//	go run ./hack/krew -version v0.1.0 -out dist/krew
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Manifest is a krew plugin manifest (krew.sigs.k8s.io/docs/developer-guide/plugin-manifest).
// krew's own types, in sigs.k8s.io/krew/pkg/index, are not used: that module
// requires k8s.io/client-go v11.0.0+incompatible, which Go's version
// selection would take over the project's v0.37.2.
// Its fields are spelled out, not embedded from metav1, which would make
// controller-gen take it for a custom resource.
type Manifest struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`
}

// Metadata is a manifest's metadata: the plugin's name.
type Metadata struct {
	Name string `json:"name"`
}

// Spec is a manifest's spec.
type Spec struct {
	Version          string     `json:"version"`
	Homepage         string     `json:"homepage"`
	ShortDescription string     `json:"shortDescription"`
	Description      string     `json:"description"`
	Caveats          string     `json:"caveats,omitempty"`
	Platforms        []Platform `json:"platforms"`
}

// Platform is the archive of one os/arch and how to install from it.
type Platform struct {
	Selector *metav1.LabelSelector `json:"selector"`
	URI      string                `json:"uri"`
	Sha256   string                `json:"sha256"`
	Files    []FileOperation       `json:"files"`
	Bin      string                `json:"bin"`
}

// FileOperation copies From, in the archive, to To, in the install directory.
type FileOperation struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// PluginName is the plugin's name in the krew index: `kubectl krew install
// awskubeflowprofiles` runs `kubectl-awskubeflowprofiles`.
const PluginName = "awskubeflowprofiles"

const (
	binary   = "kubectl-" + PluginName
	homepage = "https://github.com/awskubeflowprofiles/operator"
)

// DefaultPlatforms are those krew users run kubectl on.
var DefaultPlatforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64"}

// Options say what to build.
type Options struct {
	Version   string // vX.Y.Z, the release tag
	Out       string // directory for the archives and the manifest
	Root      string // project root, with LICENSE and the plugin's package
	Platforms []string
	// ReleaseURL is where the release's archives are downloaded from.
	ReleaseURL string
}

// defaultReleaseURL is where the project's releases are.
func defaultReleaseURL(version string) string { return homepage + "/releases/download/" + version }

var semver = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)

func main() {
	o := Options{Root: ".", Platforms: DefaultPlatforms}
	flag.StringVar(&o.Version, "version", "", "the release tag, vX.Y.Z")
	flag.StringVar(&o.Out, "out", "dist/krew", "directory for the archives and the manifest")
	platforms := flag.String("platforms", strings.Join(DefaultPlatforms, ","), "os/arch list")
	flag.StringVar(&o.ReleaseURL, "release-url", "", "where the release's archives are downloaded from (default: the project's GitHub release of -version)")
	flag.Parse()
	o.Platforms = strings.Split(*platforms, ",")
	if o.ReleaseURL == "" {
		o.ReleaseURL = defaultReleaseURL(o.Version)
	}
	manifest, err := Build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "krew:", err)
		os.Exit(1)
	}
	fmt.Println(manifest)
}

// Build writes an archive for each platform and the manifest into o.Out,
// and returns the manifest's path.
func Build(o Options) (string, error) {
	if !semver.MatchString(o.Version) {
		return "", fmt.Errorf("-version %q: krew wants a semantic version with a leading v, such as v0.1.0", o.Version)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return "", err
	}
	license, err := os.ReadFile(filepath.Join(o.Root, "LICENSE"))
	if err != nil {
		return "", fmt.Errorf("the archives carry the LICENSE: %w", err)
	}
	plugin := Manifest{
		APIVersion: "krew.googlecontainertools.github.com/v1alpha2",
		Kind:       "Plugin",
		Metadata:   Metadata{Name: PluginName},
		Spec: Spec{
			Version:          o.Version,
			Homepage:         homepage,
			ShortDescription: "Diagnose why a Kubeflow notebook has no AWS credentials",
			Description: "Walks the chain that gives a Kubeflow profile's notebook pods their AWS IAM role (IRSA):\n" +
				"the Profile's plugin, default-editor's annotation, the pod identity webhook, the pod's\n" +
				"variables and token, a token evaluated against the role's trust, the OIDC provider and the\n" +
				"role's policies. It prints each link as passed, failed with the one action that fixes it,\n" +
				"or not checked with why, and exits 0 only when the chain is whole. It reads only.",
			Caveats: "It reads the cluster with your kubeconfig and IAM with your AWS credentials: iam:GetRole,\n" +
				"iam:ListAttachedRolePolicies, iam:ListRolePolicies, iam:GetOpenIDConnectProvider and\n" +
				"sts:GetCallerIdentity. A permission it lacks is reported, naming it. Usage:\n" +
				"  kubectl awskubeflowprofiles diagnose -n <profile> [pod] [-o json]\n",
		},
	}
	for _, p := range o.Platforms {
		goos, goarch, ok := strings.Cut(p, "/")
		if !ok {
			return "", fmt.Errorf("platform %q: want os/arch", p)
		}
		name := fmt.Sprintf("%s_%s_%s_%s.tar.gz", binary, o.Version, goos, goarch)
		bin := binary
		if goos == "windows" {
			bin += ".exe"
		}
		sum, err := buildArchive(o, goos, goarch, bin, license, filepath.Join(o.Out, name))
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		plugin.Spec.Platforms = append(plugin.Spec.Platforms, Platform{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"os": goos, "arch": goarch}},
			URI:      o.ReleaseURL + "/" + name,
			Sha256:   sum,
			Files:    []FileOperation{{From: bin, To: "."}, {From: "LICENSE", To: "."}},
			Bin:      bin,
		})
	}
	raw, err := yaml.Marshal(plugin)
	if err != nil {
		return "", err
	}
	path := filepath.Join(o.Out, PluginName+".yaml")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return "", err
	}
	return path, validate(path)
}

// KrewVersion is the krew whose validator checks the manifest, as the krew
// index's own checks do. It runs as `go run module@version`, which keeps
// its dependencies (client-go v11) out of this module.
const KrewVersion = "v0.4.3"

// validate runs krew's validate-krew-manifest on the manifest, without
// installing from it (the archives are not at their release URLs yet).
func validate(manifest string) error {
	cmd := exec.Command("go", "run", "sigs.k8s.io/krew/cmd/validate-krew-manifest@"+KrewVersion, "-manifest", filepath.Base(manifest), "-skip-install")
	cmd.Dir = filepath.Dir(manifest)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	// klog's fatal line says why; the goroutine dump after it does not.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "F") && strings.Contains(line, "] ") {
			return fmt.Errorf("krew's validate-krew-manifest %s refuses %s: %s", KrewVersion, manifest, line[strings.Index(line, "] ")+2:])
		}
	}
	return fmt.Errorf("krew's validate-krew-manifest %s on %s: %w: %s", KrewVersion, manifest, err, out)
}

// buildArchive cross-compiles the plugin and packs it with the license, and
// returns the archive's SHA-256.
func buildArchive(o Options, goos, goarch, bin string, license []byte, archive string) (string, error) {
	work, err := os.MkdirTemp("", "krew-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(work, bin), "./cmd/"+binary)
	cmd.Dir = o.Root
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, out)
	}
	exe, err := os.ReadFile(filepath.Join(work, bin))
	if err != nil {
		return "", err
	}
	f, err := os.Create(archive)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	gz := gzip.NewWriter(io.MultiWriter(f, h))
	tw := tar.NewWriter(gz)
	for _, e := range []struct {
		name string
		mode int64
		data []byte
	}{{bin, 0o755, exe}, {"LICENSE", 0o644, license}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			return "", err
		}
		if _, err := tw.Write(e.data); err != nil {
			return "", err
		}
	}
	if err := errors.Join(tw.Close(), gz.Close(), f.Close()); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
