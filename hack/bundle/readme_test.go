package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/awskubeflowprofiles/operator/internal/controller"
)

// TestTheREADMENamesWhatKustomizeDeploys keeps the docs' object names the
// ones `make deploy` creates: a name an admin copies into `kubectl create
// clusterrolebinding` must exist. The package name of the bundle is the one
// name that is not an object.
func TestTheREADMENamesWhatKustomizeDeploys(t *testing.T) {
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join("..", "..", "config", "default"))
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	// Names that are not objects: the OLM package, and the SDK application
	// ID in the user agent of the verifier's AWS calls.
	deployed := map[string]bool{"awskubeflowprofiles-operator": true, controller.VerifierAppID: true}
	for _, r := range resources.Resources() {
		deployed[r.GetName()] = true
	}
	name := regexp.MustCompile(`awskubeflowprofiles-[a-z0-9-]*[a-z0-9]`)
	for _, doc := range []string{"README.md", "e2e/README.md"} {
		text, err := os.ReadFile(filepath.Join("..", "..", doc))
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, n := range name.FindAllString(string(text), -1) {
			found++
			if !deployed[n] {
				t.Errorf("%s names %s, which config/default does not deploy", doc, n)
			}
		}
		if doc == "README.md" && found == 0 {
			t.Errorf("%s names no object of the operator: the pattern no longer matches", doc)
		}
	}
	if !deployed["awskubeflowprofiles-admin-role"] {
		t.Error("config/default deploys no awskubeflowprofiles-admin-role, the ClusterRole the README tells admins to bind")
	}
}
