// Command bundle writes the OLM bundle (bundle/ and bundle.Dockerfile) from
// the kustomize output of config/manifests on stdin, as `operator-sdk
// generate bundle` would, so `make bundle` works where operator-sdk cannot
// be installed. The output is deterministic: running it twice on the same
// input changes nothing.
//
//	bin/kustomize build config/manifests | go run ./hack/bundle -version 0.1.0 -image IMG
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/api/pkg/lib/version"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

type options struct {
	version        string
	image          string
	pkg            string
	channels       string
	defaultChannel string
	out            string
	dockerfile     string
	createdAt      string
	maintainer     string
}

func main() {
	var o options
	flag.StringVar(&o.version, "version", "", "operator version, e.g. 0.1.0")
	flag.StringVar(&o.image, "image", "", "operator image")
	flag.StringVar(&o.pkg, "package", "awskubeflowprofiles-operator", "OLM package name")
	flag.StringVar(&o.channels, "channels", "candidate", "comma-separated channels")
	flag.StringVar(&o.defaultChannel, "default-channel", "candidate", "default channel")
	flag.StringVar(&o.out, "out", "bundle", "bundle directory")
	flag.StringVar(&o.dockerfile, "dockerfile", "bundle.Dockerfile", "bundle image Dockerfile")
	flag.StringVar(&o.createdAt, "created-at", "", "the CSV's createdAt, RFC 3339 in UTC such as 2026-12-01T00:00:00Z (stamped at release)")
	flag.StringVar(&o.maintainer, "maintainer", "", `the CSV's maintainer, "Name <email>" (a fork sets its own)`)
	flag.Parse()
	if err := run(os.Stdin, o); err != nil {
		fmt.Fprintln(os.Stderr, "bundle:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, o options) error {
	if o.version == "" || o.image == "" || o.createdAt == "" || o.maintainer == "" {
		return errors.New("-version, -image, -created-at and -maintainer are required")
	}
	if t, err := time.Parse(time.RFC3339, o.createdAt); err != nil || t.Location() != time.UTC || t.Format(createdAtLayout) != o.createdAt {
		return fmt.Errorf("-created-at %q: give a UTC time as %s", o.createdAt, createdAtLayout)
	}
	if _, err := parseMaintainer(o.maintainer); err != nil {
		return err
	}
	objs, err := decodeAll(in)
	if err != nil {
		return err
	}
	b, err := assemble(objs, o)
	if err != nil {
		return err
	}
	return b.write(o)
}

// bundle is what goes into bundle/.
type bundle struct {
	csv       *operatorsv1alpha1.ClusterServiceVersion
	manifests map[string]any // file name -> object
	scorecard any
}

func decodeAll(in io.Reader) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var out []*unstructured.Unstructured
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, err
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

func convert[T any](u *unstructured.Unstructured) (*T, error) {
	var t T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &t); err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return &t, nil
}

// assemble fills the CSV base with the deployment, the permissions of its
// service account, the CRDs and the samples, as operator-sdk does.
func assemble(objs []*unstructured.Unstructured, o options) (*bundle, error) {
	b := &bundle{manifests: map[string]any{}}
	var (
		deployments  []*appsv1.Deployment
		clusterRoles = map[string]*rbacv1.ClusterRole{}
		roles        = map[string]*rbacv1.Role{}
		crbs         []*rbacv1.ClusterRoleBinding
		rbs          []*rbacv1.RoleBinding
		samples      []map[string]any
		serviceAcct  string
	)
	for _, u := range objs {
		switch u.GetKind() {
		case "ClusterServiceVersion":
			csv, err := convert[operatorsv1alpha1.ClusterServiceVersion](u)
			if err != nil {
				return nil, err
			}
			b.csv = csv
		case "CustomResourceDefinition":
			group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
			plural, _, _ := unstructured.NestedString(u.Object, "spec", "names", "plural")
			b.manifests[fmt.Sprintf("%s_%s.yaml", group, plural)] = u.Object
		case "Deployment":
			d, err := convert[appsv1.Deployment](u)
			if err != nil {
				return nil, err
			}
			deployments = append(deployments, d)
		case "ServiceAccount":
			serviceAcct = u.GetName()
		case "ClusterRole":
			r, err := convert[rbacv1.ClusterRole](u)
			if err != nil {
				return nil, err
			}
			clusterRoles[r.Name] = r
		case "Role":
			r, err := convert[rbacv1.Role](u)
			if err != nil {
				return nil, err
			}
			roles[r.Name] = r
		case "ClusterRoleBinding":
			r, err := convert[rbacv1.ClusterRoleBinding](u)
			if err != nil {
				return nil, err
			}
			crbs = append(crbs, r)
		case "RoleBinding":
			r, err := convert[rbacv1.RoleBinding](u)
			if err != nil {
				return nil, err
			}
			rbs = append(rbs, r)
		case "Service":
			u.SetNamespace("")
			b.manifests[fmt.Sprintf("%s_v1_service.yaml", u.GetName())] = u.Object
		case "Configuration":
			b.scorecard = u.Object
		case "Namespace":
			// OLM installs into the namespace of the subscription.
		default:
			if u.GroupVersionKind().Group == "kubeflow.aws" {
				samples = append(samples, u.Object)
			}
		}
	}
	if b.csv == nil {
		return nil, errors.New("no ClusterServiceVersion in the input: build config/manifests")
	}
	if len(deployments) != 1 || serviceAcct == "" {
		return nil, fmt.Errorf("want one Deployment and one ServiceAccount, got %d and %q", len(deployments), serviceAcct)
	}

	// Rules of roles bound to the operator's service account become CSV
	// permissions; other cluster roles (for users, for metrics readers) ship
	// as bundle manifests.
	bound := map[string]bool{}
	var clusterRules, nsRules []rbacv1.PolicyRule
	for _, crb := range sorted(crbs, func(r *rbacv1.ClusterRoleBinding) string { return r.Name }) {
		if bindsTo(crb.Subjects, serviceAcct) && clusterRoles[crb.RoleRef.Name] != nil {
			clusterRules = append(clusterRules, clusterRoles[crb.RoleRef.Name].Rules...)
			bound[crb.RoleRef.Name] = true
		}
	}
	for _, rb := range sorted(rbs, func(r *rbacv1.RoleBinding) string { return r.Name }) {
		if bindsTo(rb.Subjects, serviceAcct) && roles[rb.RoleRef.Name] != nil {
			nsRules = append(nsRules, roles[rb.RoleRef.Name].Rules...)
		}
	}
	for name, r := range clusterRoles {
		if bound[name] {
			continue
		}
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(r)
		if err != nil {
			return nil, err
		}
		obj["apiVersion"], obj["kind"] = "rbac.authorization.k8s.io/v1", "ClusterRole"
		delete(obj, "metadata")
		obj["metadata"] = map[string]any{"name": name, "labels": r.Labels}
		b.manifests[fmt.Sprintf("%s_rbac.authorization.k8s.io_v1_clusterrole.yaml", name)] = obj
	}

	csv := b.csv
	csv.Name = fmt.Sprintf("%s.v%s", o.pkg, o.version)
	csv.Namespace = ""
	v, err := semver.Parse(o.version)
	if err != nil {
		return nil, fmt.Errorf("version %q: %w", o.version, err)
	}
	csv.Spec.Version = version.OperatorVersion{Version: v}
	dep := deployments[0]
	setImage(&dep.Spec.Template.Spec, o.image)
	csv.Spec.InstallStrategy = operatorsv1alpha1.NamedInstallStrategy{
		StrategyName: operatorsv1alpha1.InstallStrategyNameDeployment,
		StrategySpec: operatorsv1alpha1.StrategyDetailsDeployment{
			DeploymentSpecs: []operatorsv1alpha1.StrategyDeploymentSpec{{
				Name: dep.Name, Label: dep.Labels, Spec: dep.Spec,
			}},
			ClusterPermissions: []operatorsv1alpha1.StrategyDeploymentPermissions{{ServiceAccountName: serviceAcct, Rules: clusterRules}},
			Permissions:        []operatorsv1alpha1.StrategyDeploymentPermissions{{ServiceAccountName: serviceAcct, Rules: nsRules}},
		},
	}
	examples, err := json.MarshalIndent(samples, "", "  ")
	if err != nil {
		return nil, err
	}
	if csv.Annotations == nil {
		csv.Annotations = map[string]string{}
	}
	csv.Annotations["alm-examples"] = string(examples)
	csv.Annotations["containerImage"] = o.image
	csv.Annotations["createdAt"] = o.createdAt
	maintainer, err := parseMaintainer(o.maintainer)
	if err != nil {
		return nil, err
	}
	csv.Spec.Maintainers = []operatorsv1alpha1.Maintainer{maintainer}
	csv.Spec.RelatedImages = []operatorsv1alpha1.RelatedImage{{Name: "manager", Image: o.image}}
	return b, nil
}

// createdAtLayout is the form OperatorHub shows createdAt in.
const createdAtLayout = "2006-01-02T15:04:05Z"

// parseMaintainer reads "Name <email>".
func parseMaintainer(s string) (operatorsv1alpha1.Maintainer, error) {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name == "" {
		return operatorsv1alpha1.Maintainer{}, fmt.Errorf("-maintainer %q: give \"Name <email>\", the contact OperatorHub shows for the operator", s)
	}
	return operatorsv1alpha1.Maintainer{Name: addr.Name, Email: addr.Address}, nil
}

func bindsTo(subjects []rbacv1.Subject, sa string) bool {
	return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool { return s.Kind == "ServiceAccount" && s.Name == sa })
}

func setImage(spec *corev1.PodSpec, image string) {
	for i := range spec.Containers {
		if spec.Containers[i].Name == "manager" {
			spec.Containers[i].Image = image
		}
	}
}

func sorted[T any](in []T, key func(T) string) []T {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	return out
}

func (b *bundle) write(o options) error {
	manifests := filepath.Join(o.out, "manifests")
	if err := os.RemoveAll(manifests); err != nil {
		return err
	}
	for _, dir := range []string{manifests, filepath.Join(o.out, "metadata"), filepath.Join(o.out, "tests", "scorecard")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	csv, err := runtime.DefaultUnstructuredConverter.ToUnstructured(b.csv)
	if err != nil {
		return err
	}
	delete(csv["metadata"].(map[string]any), "creationTimestamp")
	csv["apiVersion"], csv["kind"] = "operators.coreos.com/v1alpha1", "ClusterServiceVersion"
	b.manifests[o.pkg+".clusterserviceversion.yaml"] = csv
	for name, obj := range b.manifests {
		if err := writeYAML(filepath.Join(manifests, name), obj); err != nil {
			return err
		}
	}
	if b.scorecard != nil {
		if err := writeYAML(filepath.Join(o.out, "tests", "scorecard", "config.yaml"), b.scorecard); err != nil {
			return err
		}
	}
	labels := [][2]string{
		{"operators.operatorframework.io.bundle.mediatype.v1", "registry+v1"},
		{"operators.operatorframework.io.bundle.manifests.v1", "manifests/"},
		{"operators.operatorframework.io.bundle.metadata.v1", "metadata/"},
		{"operators.operatorframework.io.bundle.package.v1", o.pkg},
		{"operators.operatorframework.io.bundle.channels.v1", o.channels},
		{"operators.operatorframework.io.bundle.channel.default.v1", o.defaultChannel},
		{"operators.operatorframework.io.metrics.builder", "hack/bundle"},
		{"operators.operatorframework.io.metrics.mediatype.v1", "metrics+v1"},
		{"operators.operatorframework.io.metrics.project_layout", "go.kubebuilder.io/v4"},
		{"operators.operatorframework.io.test.mediatype.v1", "scorecard+v1"},
		{"operators.operatorframework.io.test.config.v1", "tests/scorecard/"},
	}
	var ann, docker strings.Builder
	ann.WriteString("annotations:\n  # Core bundle annotations.\n")
	docker.WriteString("FROM scratch\n\n# Core bundle labels.\n")
	for _, l := range labels {
		fmt.Fprintf(&ann, "  %s: %s\n", l[0], l[1])
		fmt.Fprintf(&docker, "LABEL %s=%s\n", l[0], l[1])
	}
	docker.WriteString("\n# Copy files to locations specified by labels.\n")
	// Paths in the Dockerfile are relative to its directory, the build context.
	rel, err := filepath.Rel(filepath.Dir(o.dockerfile), o.out)
	if err != nil {
		return err
	}
	fmt.Fprintf(&docker, "COPY %s/manifests /manifests/\nCOPY %s/metadata /metadata/\nCOPY %s/tests/scorecard /tests/scorecard/\n", rel, rel, rel)
	if err := os.WriteFile(filepath.Join(o.out, "metadata", "annotations.yaml"), []byte(ann.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(o.dockerfile, []byte(docker.String()), 0o644)
}

func writeYAML(path string, obj any) error {
	data, err := yaml.Marshal(obj)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.WriteFile(path, data, 0o644)
}
