package framework

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// PinsFile holds every version and image of the kind target that is not
// built from this repository; scripts/kind-install.sh sources it.
const PinsFile = "e2e/kind/pins.env"

// The pins the suite itself reads; kind-install.sh reads the others.
const (
	PinKindVersion   = "KIND_VERSION"
	PinKindNodeImage = "KIND_NODE_IMAGE"
)

// Pins are the KEY=value lines of PinsFile.
type Pins map[string]string

// LoadPins reads PinsFile under root.
func LoadPins(root string) (Pins, error) {
	data, err := os.ReadFile(filepath.Join(root, PinsFile))
	if err != nil {
		return nil, fmt.Errorf("reading the kind target's pins: %w", err)
	}
	return ParsePins(data)
}

var pinLine = regexp.MustCompile(`^([A-Z][A-Z0-9_]*)=(\S+)$`)

// ParsePins reads KEY=value lines; blank lines and # comments are skipped.
// Anything else is refused, so the file stays one that bash sources to the
// same values without quoting or expansion.
func ParsePins(data []byte) (Pins, error) {
	pins := Pins{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := pinLine.FindStringSubmatch(line)
		if m == nil || strings.ContainsAny(m[2], `$"'`+"`\\") {
			return nil, fmt.Errorf("%s:%d: %q is not KEY=value with a plain value", PinsFile, n, line)
		}
		if _, dup := pins[m[1]]; dup {
			return nil, fmt.Errorf("%s:%d: %s is pinned twice", PinsFile, n, m[1])
		}
		pins[m[1]] = m[2]
	}
	return pins, sc.Err()
}

// Get returns a pin, or an error naming the file to add it to.
func (p Pins) Get(key string) (string, error) {
	v, ok := p[key]
	if !ok {
		return "", fmt.Errorf("%s pins no %s: add it there", PinsFile, key)
	}
	return v, nil
}

// CheckKindVersion compares the output of `kind version` (such as
// "kind v0.33.0 go1.26.3 linux/amd64") with the pinned release.
func CheckKindVersion(output, pinned string) error {
	fields := strings.Fields(output)
	if len(fields) < 2 || fields[0] != "kind" {
		return fmt.Errorf("cannot read a kind version from %q", strings.TrimSpace(output))
	}
	if fields[1] != pinned {
		return fmt.Errorf("the kind binary is %s but %s pins %s: delete bin/kind and run make test-e2e E2E_TARGET=kind to install the pinned one", fields[1], PinsFile, pinned)
	}
	return nil
}

// NodeImageKubernetesVersion returns the Kubernetes version a kind node
// image's tag names: v1.37.0 for kindest/node:v1.37.0@sha256:….
func NodeImageKubernetesVersion(image string) (string, error) {
	ref, _, _ := strings.Cut(image, "@")
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return "", fmt.Errorf("node image %q has no tag", image)
	}
	tag := ref[i+1:]
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(tag) {
		return "", fmt.Errorf("node image %q: tag %q is not a Kubernetes version", image, tag)
	}
	return tag, nil
}

// CheckNodeVersion compares a node's kubelet version with the version of
// the pinned node image. A cluster left by an earlier run (kind reuses a
// cluster of the same name) or created by hand with another image is caught
// here, before any spec reads it.
func CheckNodeVersion(kubelet, pinnedImage, cluster string) error {
	want, err := NodeImageKubernetesVersion(pinnedImage)
	if err != nil {
		return err
	}
	// A kubelet reports v1.37.0, or v1.37.0+build on some builds.
	if got, _, _ := strings.Cut(kubelet, "+"); got != want {
		return fmt.Errorf("the kind node runs Kubernetes %s but %s pins the node image %s: delete the cluster (kind delete cluster --name %s) and run again", kubelet, PinsFile, pinnedImage, cluster)
	}
	return nil
}

// CheckIssuer compares the issuer of a service-account token of the kind
// cluster with the one kind-config.yaml sets. kubeadm ignores a config patch
// of another API version without a word, which would leave the default
// issuer and make every trust the suite checks name the wrong one.
func CheckIssuer(tokenIssuer, want string) error {
	if tokenIssuer != want {
		return fmt.Errorf("the kind cluster issues tokens for %q, not %q: the kubeadm patch in e2e/kind/kind-config.yaml did not apply; its apiVersion must match the kubeadm config of the node image pinned in %s", tokenIssuer, want, PinsFile)
	}
	return nil
}
