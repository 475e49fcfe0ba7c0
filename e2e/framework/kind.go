package framework

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/e2e-framework/support/kind"

	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
)

// Versions and names of the kind target; scripts/kind-install.sh pins the
// versions of what it installs.
const (
	kindVersion    = "v0.33.0"
	kindIssuer     = "https://kind.awskubeflowprofiles.local/e2e"
	localstackURL  = "http://127.0.0.1:4566"
	localstackAcct = "000000000000"
	operatorImage  = "awskubeflowprofiles/operator:e2e"
	operatorNS     = "awskubeflowprofiles-system"
	// kindResync is set in e2e/kind/operator/kustomization.yaml.
	kindResync      = "15s"
	kindClusterName = "awskubeflowprofiles-e2e"
)

// kindTarget is a kind cluster whose API server issues service-account
// tokens for IRSA, with LocalStack (IAM and STS), the EKS pod identity
// webhook, Kubeflow's profile controller and the operator, built into an
// image and loaded into kind. LocalStack enforces no IAM policy.
type kindTarget struct {
	root    string
	cluster *kind.Cluster
}

func (*kindTarget) Name() string { return "kind" }

func (*kindTarget) Has(c Capability) (bool, string) {
	if c == NeedsRealIAM || c == NeedsSTSTrust {
		return false, "LocalStack enforces no IAM policy"
	}
	return true, ""
}

func (*kindTarget) Unavailable(ctx context.Context) string {
	if _, err := exec.LookPath("docker"); err != nil {
		return "kind: docker not found"
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return fmt.Sprintf("kind: the Docker engine is not reachable (docker info: %v %s)", err, strings.TrimSpace(firstLine(string(out))))
	}
	return ""
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func (t *kindTarget) Start(ctx context.Context) (*Env, error) {
	artifacts, err := artifactsDir(t.root, "kind")
	if err != nil {
		return nil, err
	}
	name := envOr("E2E_KIND_CLUSTER", kindClusterName)
	t.cluster = kind.NewCluster(name)
	t.cluster.WithVersion(kindVersion)
	kubeconfig, err := t.cluster.CreateWithConfig(ctx, filepath.Join(t.root, "e2e", "kind", "kind-config.yaml"))
	if err != nil {
		return nil, fmt.Errorf("creating kind cluster %s: %w", name, err)
	}
	if err := run(ctx, t.root, artifacts, "docker-build", nil, "make", "docker-build", "IMG="+operatorImage); err != nil {
		return nil, err
	}
	if err := t.cluster.LoadImage(ctx, operatorImage); err != nil {
		return nil, err
	}
	if err := run(ctx, t.root, artifacts, "kind-install",
		[]string{"KUBECONFIG=" + kubeconfig, "IMG=" + operatorImage},
		filepath.Join(t.root, "scripts", "kind-install.sh")); err != nil {
		return nil, err
	}
	env, err := connectKubeconfig(kubeconfig, awsiamtest.Config(localstackURL, nil))
	if err != nil {
		return nil, err
	}
	env.Cluster = Cluster{
		Name: name, Region: env.AWS.Region,
		// No EKS here: the spec names the issuer and LocalStack's account.
		AccountID: localstackAcct, ExpectAccountID: localstackAcct,
		IssuerURL: kindIssuer, ExpectIssuerURL: kindIssuer,
	}
	env.ResyncPeriod, env.Artifacts = kindResync, artifacts
	env.Logs = func() string { return podLogs(ctx, env.Clientset, operatorNS, "control-plane=controller-manager") }
	return env, nil
}

func (t *kindTarget) Stop(ctx context.Context) error {
	if t.cluster == nil || os.Getenv("E2E_KEEP_CLUSTER") != "" {
		return nil
	}
	return t.cluster.Destroy(ctx)
}

// run runs a command in the project root with extra environment, logging
// its output to the artifacts directory.
func run(ctx context.Context, root, artifacts, name string, env []string, bin string, args ...string) error {
	logFile, err := os.Create(filepath.Join(artifacts, name+".log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = io.MultiWriter(logFile, &buf)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		out := buf.String()
		if len(out) > 4000 {
			out = out[len(out)-4000:]
		}
		return fmt.Errorf("%s failed: %w\n%s", name, err, out)
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// podLogs returns the tail of the logs of the pods matching selector.
func podLogs(ctx context.Context, c kubernetes.Interface, namespace, selector string) string {
	pods, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	tail := int64(60)
	for _, p := range pods.Items {
		data, err := c.CoreV1().Pods(namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &tail}).DoRaw(ctx)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p.Name, err)
			continue
		}
		fmt.Fprintf(&b, "== %s\n%s\n", p.Name, data)
	}
	return b.String()
}
