// Command image assembles the container images of the node e2e target
// without Docker: each is one layer holding a static binary (and, for the
// operator, what its distroless base gives it), written as a docker-archive
// tarball that `ctr images import` loads into containerd. The operator's
// image follows the Dockerfile (same entrypoint, user, working directory and
// file); a test reads the Dockerfile so the two cannot drift apart.
//
//	image -out DIR -manager BIN -pause BIN -notebook BIN
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image is what one image holds: files from the host at paths in the image,
// and the runtime configuration.
type Image struct {
	Ref        string
	Files      []File
	Entrypoint []string
	User       string
	WorkingDir string
}

// File is a regular file of an image.
type File struct {
	// Path in the image, absolute.
	Path string
	// Source on the host; Content is used when empty.
	Source  string
	Content []byte
	Mode    int64
}

// nonroot is distroless' unprivileged user, the operator's USER.
const nonroot = "65532:65532"

// distrolessFiles are the files of gcr.io/distroless/static:nonroot that the
// operator relies on: the user database naming its user. (The base's CA
// bundle matters only for real AWS endpoints, which the node target does
// not reach.)
var distrolessFiles = []File{
	{Path: "/etc/passwd", Content: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), Mode: 0o644},
	{Path: "/etc/group", Content: []byte("root:x:0:\nnonroot:x:65532:\n"), Mode: 0o644},
}

// Operator is the operator's image as the Dockerfile builds it: the manager
// binary at /manager, run as nonroot from /.
func Operator(ref, manager string) Image {
	return Image{
		Ref:        ref,
		Files:      append([]File{{Path: "/manager", Source: manager, Mode: 0o755}}, distrolessFiles...),
		Entrypoint: []string{"/manager"},
		User:       nonroot,
		WorkingDir: "/",
	}
}

// Workload is a test workload's image: one static binary as entrypoint, run
// as nonroot.
func Workload(ref, binary string) Image {
	path := "/" + filepath.Base(binary)
	return Image{Ref: ref, Files: []File{{Path: path, Source: binary, Mode: 0o755}}, Entrypoint: []string{path}, User: nonroot, WorkingDir: "/"}
}

// Build assembles the image.
func Build(img Image) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A fixed time keeps the image, and so its digest, the same for the
	// same binaries.
	epoch := time.Unix(0, 0).UTC()
	for _, f := range img.Files {
		content := f.Content
		if f.Source != "" {
			var err error
			if content, err = os.ReadFile(f.Source); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.Path[1:], Mode: f.Mode, Size: int64(len(content)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return nil, fmt.Errorf("building the layer of %s: %w", img.Ref, err)
	}
	image, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := image.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	// The binaries are built for this machine, as the node that runs them.
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Entrypoint = img.Entrypoint
	cfg.Config.User = img.User
	cfg.Config.WorkingDir = img.WorkingDir
	return mutate.ConfigFile(image, cfg)
}

// Write builds the image and writes it as a docker-archive tarball.
func Write(img Image, path string) error {
	image, err := Build(img)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(img.Ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, tag, image)
}

func main() {
	out := flag.String("out", "bin/images", "directory for the image tarballs")
	manager := flag.String("manager", "", "static manager binary (CGO_ENABLED=0)")
	pause := flag.String("pause", "", "static pause binary")
	notebook := flag.String("notebook", "", "static notebook binary")
	tag := flag.String("tag", "e2e", "tag of every image")
	flag.Parse()
	if *manager == "" || *pause == "" || *notebook == "" {
		fmt.Fprintln(os.Stderr, "usage: image -out DIR -manager BIN -pause BIN -notebook BIN")
		os.Exit(2)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(err)
	}
	for file, img := range map[string]Image{
		"operator.tar": Operator("awskubeflowprofiles.local/operator:"+*tag, *manager),
		"pause.tar":    Workload("awskubeflowprofiles.local/pause:"+*tag, *pause),
		"notebook.tar": Workload("awskubeflowprofiles.local/notebook:"+*tag, *notebook),
	} {
		if err := Write(img, filepath.Join(*out, file)); err != nil {
			fail(fmt.Errorf("%s: %w", img.Ref, err))
		}
		fmt.Println(filepath.Join(*out, file), img.Ref)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "image:", err)
	os.Exit(1)
}
