package framework

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// csvDeploymentPrefix is where an OLM install keeps the operator's
// Deployment spec; kind-install.sh puts it before each path of
// localstack-patch.yaml.
const csvDeploymentPrefix = "/spec/install/spec/deployments/0"

// wantKindOperator checks the operator's container as the kind target runs
// it, however it was installed.
func wantKindOperator(t *testing.T, c corev1.Container) {
	t.Helper()
	if !slices.Contains(c.Args, "--resync-period="+kindResync) {
		t.Errorf("args %v lack --resync-period=%s, which the drift spec waits on", c.Args, kindResync)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	const localstack = "http://localstack.localstack.svc.cluster.local:4566"
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS"} {
		if env[k] != localstack {
			t.Errorf("%s = %q, want %s", k, env[k], localstack)
		}
	}
	if env["AWS_ACCESS_KEY_ID"] == "" || env["AWS_SECRET_ACCESS_KEY"] == "" {
		t.Errorf("no static keys for LocalStack in %v", env)
	}
	if c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("imagePullPolicy = %q: the image is loaded into kind, not pulled", c.ImagePullPolicy)
	}
}

// TestTheKindOperatorOverlayBuilds builds e2e/kind/operator as
// kind-install.sh does: a patch that does not apply fails the kind target
// only on a runner with Docker, so it is built here.
func TestTheKindOperatorOverlayBuilds(t *testing.T) {
	root := projectRoot(t)
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(root, "e2e", "kind", "operator"))
	if err != nil {
		t.Fatalf("kustomize build e2e/kind/operator: %v", err)
	}
	var found bool
	for _, r := range resources.Resources() {
		if r.GetKind() != "Deployment" || r.GetName() != operatorDeployment.Name {
			continue
		}
		found = true
		data, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var dep appsv1.Deployment
		if err := yaml.Unmarshal(data, &dep); err != nil {
			t.Fatal(err)
		}
		if dep.Namespace != OperatorNamespace {
			t.Errorf("namespace %q, want %s", dep.Namespace, OperatorNamespace)
		}
		c := dep.Spec.Template.Spec.Containers[0]
		if c.Image != operatorImage {
			t.Errorf("image %q, want %s, the one the suite builds and loads", c.Image, operatorImage)
		}
		wantKindOperator(t, c)
	}
	if !found {
		t.Fatalf("no Deployment %s in the overlay", operatorDeployment.Name)
	}
}

// TestTheKindPatchAppliesToTheBundle applies localstack-patch.yaml to the
// committed CSV the way kind-install.sh does for an OLM install.
func TestTheKindPatchAppliesToTheBundle(t *testing.T) {
	root := projectRoot(t)
	install := readFile(t, root, "scripts/kind-install.sh")
	if !strings.Contains(install, csvDeploymentPrefix) {
		t.Fatalf("kind-install.sh no longer patches the CSV under %s: keep this test in step", csvDeploymentPrefix)
	}
	patchYAML := readFile(t, root, "e2e/kind/operator/localstack-patch.yaml")
	patchYAML = strings.ReplaceAll(patchYAML, "path: /spec/", "path: "+csvDeploymentPrefix+"/spec/")
	patchJSON, err := yaml.YAMLToJSON([]byte(patchYAML))
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(patchJSON)
	if err != nil {
		t.Fatal(err)
	}
	matches, err := filepath.Glob(filepath.Join(root, "bundle", "manifests", "*.clusterserviceversion.yaml"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("one CSV in bundle/manifests, found %v (%v)", matches, err)
	}
	csvYAML, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	csvJSON, err := yaml.YAMLToJSON(csvYAML)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := patch.Apply(csvJSON)
	if err != nil {
		t.Fatalf("the CSV does not take localstack-patch.yaml: %v", err)
	}
	var csv operatorsv1alpha1.ClusterServiceVersion
	if err := yaml.Unmarshal(patched, &csv); err != nil {
		t.Fatal(err)
	}
	wantKindOperator(t, csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs[0].Spec.Template.Spec.Containers[0])
}
