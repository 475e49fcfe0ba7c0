package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The manifest installs, as krew does, a plugin that runs: each platform's
// archive has the SHA-256 the manifest gives, and its file operations put the
// binary it names where krew runs it.
func TestManifestInstallsARunningPlugin(t *testing.T) {
	g := NewWithT(t)
	out := t.TempDir()
	host := runtime.GOOS + "/" + runtime.GOARCH
	manifestPath, err := Build(Options{Version: "v1.2.3", Out: out, Root: "../..", Platforms: []string{host},
		ReleaseURL: "https://example.com/releases/download/v1.2.3"})
	g.Expect(err).NotTo(HaveOccurred())
	raw, err := os.ReadFile(manifestPath)
	g.Expect(err).NotTo(HaveOccurred())
	var m Manifest
	g.Expect(yaml.UnmarshalStrict(raw, &m)).To(Succeed())

	g.Expect(m.APIVersion).To(Equal("krew.googlecontainertools.github.com/v1alpha2"))
	g.Expect(m.Kind).To(Equal("Plugin"))
	g.Expect(m.Metadata.Name).To(Equal(PluginName))
	g.Expect(filepath.Base(manifestPath)).To(Equal(m.Metadata.Name+".yaml"), "the index names the file after the plugin")
	g.Expect(m.Spec.Version).To(Equal("v1.2.3"))
	g.Expect(m.Spec.ShortDescription).NotTo(ContainSubstring("\n"))
	g.Expect(m.Spec.Platforms).To(HaveLen(1))

	p := m.Spec.Platforms[0]
	g.Expect(p.Selector.MatchLabels).To(Equal(map[string]string{"os": runtime.GOOS, "arch": runtime.GOARCH}))
	archive := filepath.Join(out, path.Base(p.URI))
	g.Expect(p.URI).To(HavePrefix("https://example.com/releases/download/v1.2.3/"))
	data, err := os.ReadFile(archive)
	g.Expect(err).NotTo(HaveOccurred(), "the archive the URI names was built")
	sum := sha256.Sum256(data)
	g.Expect(p.Sha256).To(Equal(hex.EncodeToString(sum[:])))

	// Unpacking and applying the file operations, as krew install does.
	unpacked, installed := t.TempDir(), t.TempDir()
	untar(t, archive, unpacked)
	for _, f := range p.Files {
		g.Expect(f.To).To(Equal("."))
		content, err := os.ReadFile(filepath.Join(unpacked, f.From))
		g.Expect(err).NotTo(HaveOccurred(), "file operation from %s", f.From)
		info, _ := os.Stat(filepath.Join(unpacked, f.From))
		g.Expect(os.WriteFile(filepath.Join(installed, f.From), content, info.Mode())).To(Succeed())
	}
	g.Expect(filepath.Join(installed, "LICENSE")).To(BeARegularFile(), "the index asks for the license in the archive")
	cmd := exec.Command(filepath.Join(installed, p.Bin), "diagnose", "--help")
	outp, err := cmd.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "%s", outp)
	g.Expect(string(outp)).To(ContainSubstring("Usage: kubectl awskubeflowprofiles diagnose"))
}

// The validator krew's index runs refuses what it should: a manifest that
// passed is not just one this package can read back.
func TestKrewsValidatorRefusesABrokenManifest(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	path := filepath.Join(dir, PluginName+".yaml")
	broken := Manifest{APIVersion: "krew.googlecontainertools.github.com/v1alpha2", Kind: "Plugin", Metadata: Metadata{Name: PluginName},
		Spec: Spec{Version: "v1.2.3", Homepage: homepage, Platforms: []Platform{{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"os": "linux", "arch": "amd64"}},
			URI:      "https://example.com/a.tar.gz", Sha256: strings.Repeat("0", 64), Bin: binary,
		}}}}
	raw, err := yaml.Marshal(broken)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.WriteFile(path, raw, 0o644)).To(Succeed())
	g.Expect(validate(path)).To(MatchError(ContainSubstring("should have a short description")))
}

func TestBuildRefusesAVersionKrewDoesNotTake(t *testing.T) {
	for _, v := range []string{"", "0.1.0", "v0.1", "latest"} {
		_, err := Build(Options{Version: v, Out: t.TempDir(), Root: "../.."})
		NewWithT(t).Expect(err).To(MatchError(ContainSubstring("semantic version with a leading v")), v)
	}
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(h.Name, "..") {
			t.Fatalf("archive entry %s leaves the directory", h.Name)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, h.Name), data, os.FileMode(h.Mode)); err != nil {
			t.Fatal(err)
		}
	}
}
