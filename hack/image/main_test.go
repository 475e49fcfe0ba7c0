package main

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// dockerfileStage is what the final stage of the Dockerfile says about the
// image: its working directory, user, entrypoint and the files it copies in.
type dockerfileStage struct {
	workdir, user string
	entrypoint    []string
	files         []string
}

func readDockerfile(t *testing.T) dockerfileStage {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st dockerfileStage
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			st = dockerfileStage{workdir: "/"} // a new stage starts over
		case "WORKDIR":
			st.workdir = fields[1]
		case "USER":
			st.user = fields[1]
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(sc.Text(), fields[0]))), &st.entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT is not in exec form: %v", err)
			}
		case "COPY":
			args := fields[1:]
			for len(args) > 0 && strings.HasPrefix(args[0], "--") {
				args = args[1:]
			}
			dst := args[len(args)-1]
			for _, src := range args[:len(args)-1] {
				target := dst
				if strings.HasSuffix(dst, "/") || dst == "." {
					target = path.Join(dst, path.Base(src))
				}
				if !path.IsAbs(target) {
					target = path.Join(st.workdir, target)
				}
				st.files = append(st.files, target)
			}
		}
	}
	return st
}

// The image the node target runs is the one the Dockerfile describes: the
// same entrypoint, user, working directory and files.
func TestOperatorImageAgreesWithTheDockerfile(t *testing.T) {
	g := NewWithT(t)
	want := readDockerfile(t)
	g.Expect(want.files).NotTo(BeEmpty())

	manager := filepath.Join(t.TempDir(), "manager")
	g.Expect(os.WriteFile(manager, []byte("#!/bin/true\n"), 0o755)).To(Succeed())
	img, err := Build(Operator("awskubeflowprofiles.local/operator:test", manager))
	g.Expect(err).NotTo(HaveOccurred())
	cfg, err := img.ConfigFile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.Config.Entrypoint).To(Equal(want.entrypoint))
	g.Expect(cfg.Config.User).To(Equal(want.user))
	g.Expect(cfg.Config.WorkingDir).To(Equal(want.workdir))

	layers, err := img.Layers()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(layers).To(HaveLen(1))
	rc, err := layers[0].Uncompressed()
	g.Expect(err).NotTo(HaveOccurred())
	defer rc.Close()
	modes := map[string]int64{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		g.Expect(err).NotTo(HaveOccurred())
		modes["/"+h.Name] = h.Mode
	}
	for _, f := range want.files {
		g.Expect(modes).To(HaveKey(f), "the Dockerfile copies %s into the image", f)
	}
	g.Expect(modes[want.entrypoint[0]]&0o111).NotTo(BeZero(), "the entrypoint is executable")
}

// The same binaries make the same image, so a rebuild imports nothing new.
func TestBuildIsReproducible(t *testing.T) {
	g := NewWithT(t)
	bin := filepath.Join(t.TempDir(), "pause")
	g.Expect(os.WriteFile(bin, []byte("binary"), 0o755)).To(Succeed())
	a, err := Build(Workload("awskubeflowprofiles.local/pause:test", bin))
	g.Expect(err).NotTo(HaveOccurred())
	b, err := Build(Workload("awskubeflowprofiles.local/pause:test", bin))
	g.Expect(err).NotTo(HaveOccurred())
	da, err := a.Digest()
	g.Expect(err).NotTo(HaveOccurred())
	db, err := b.Digest()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(da).To(Equal(db))
}
