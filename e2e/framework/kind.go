package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/e2e-framework/support/kind"

	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// Names of the kind target; every version it runs is pinned in PinsFile.
const (
	kindIssuer     = "https://kind.awskubeflowprofiles.local/e2e"
	localstackURL  = "http://127.0.0.1:4566"
	localstackAcct = "000000000000"
	operatorImage  = "awskubeflowprofiles/operator:e2e"
	// kindResync is set in e2e/kind/operator/localstack-patch.yaml.
	kindResync      = "15s"
	kindClusterName = "awskubeflowprofiles-e2e"
)

// kindTarget is a kind cluster whose API server issues service-account
// tokens for IRSA, with LocalStack (IAM and STS), the EKS pod identity
// webhook, Kubeflow's profile controller and the operator, built into an
// image and loaded into kind. LocalStack enforces no IAM policy.
//
//	E2E_KIND_CLUSTER  the cluster's name (default awskubeflowprofiles-e2e)
//	E2E_KIND_INSTALL  how the operator is installed: kustomize (default) or
//	                  olm, from its bundle through OLM
//	E2E_KEEP_CLUSTER  keep the cluster after the run
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

func (t *kindTarget) Start(ctx context.Context) (_ *Env, err error) {
	artifacts, err := artifactsDir(t.root, "kind")
	if err != nil {
		return nil, err
	}
	pins, err := LoadPins(t.root)
	if err != nil {
		return nil, err
	}
	version, err := pins.Get(PinKindVersion)
	if err != nil {
		return nil, err
	}
	nodeImage, err := pins.Get(PinKindNodeImage)
	if err != nil {
		return nil, err
	}
	// e2e-framework runs whatever kind it finds first; the suite runs the
	// one scripts/e2e.sh installed from the pin, and checks it is.
	kindBin := filepath.Join(t.root, "bin", "kind")
	out, err := exec.CommandContext(ctx, kindBin, "version").Output()
	if err != nil {
		return nil, fmt.Errorf("running %s version: %w (make test-e2e E2E_TARGET=kind installs kind %s there)", kindBin, err, version)
	}
	if err := CheckKindVersion(string(out), version); err != nil {
		return nil, err
	}
	name := envOr("E2E_KIND_CLUSTER", kindClusterName)
	t.cluster = kind.NewCluster(name)
	t.cluster.WithPath(kindBin)
	t.cluster.WithOpts(kind.WithImage(nodeImage))
	kubeconfig, err := t.cluster.CreateWithConfig(ctx, filepath.Join(t.root, "e2e", "kind", "kind-config.yaml"))
	if err != nil {
		return nil, fmt.Errorf("creating kind cluster %s: %w", name, err)
	}
	// A set-up that fails leaves no Env for the suite to collect from.
	defer func() {
		if err != nil {
			if exportErr := t.cluster.ExportLogs(context.WithoutCancel(ctx), filepath.Join(artifacts, "kind-logs")); exportErr != nil {
				err = fmt.Errorf("%w (and kind export logs: %v)", err, exportErr)
			}
		}
	}()
	env, err := connectKubeconfig(kubeconfig, awsiamtest.Config(localstackURL, nil))
	if err != nil {
		return nil, err
	}
	if err := checkKindCluster(ctx, env, nodeImage, name); err != nil {
		return nil, err
	}
	if err := run(ctx, t.root, artifacts, "docker-build", nil, "make", "docker-build", "IMG="+operatorImage); err != nil {
		return nil, err
	}
	if err := t.cluster.LoadImage(ctx, operatorImage); err != nil {
		return nil, err
	}
	if err := run(ctx, t.root, artifacts, "kind-install",
		[]string{"KUBECONFIG=" + kubeconfig, "KIND_CLUSTER=" + name, "IMG=" + operatorImage, "OPERATOR_INSTALL=" + envOr("E2E_KIND_INSTALL", "kustomize")},
		filepath.Join(t.root, "scripts", "kind-install.sh")); err != nil {
		return nil, err
	}
	env.Cluster = Cluster{
		Name: name, Region: env.AWS.Region,
		// No EKS here: the spec names the issuer and LocalStack's account.
		AccountID: localstackAcct, ExpectAccountID: localstackAcct,
		IssuerURL: kindIssuer, ExpectIssuerURL: kindIssuer,
	}
	env.ResyncPeriod, env.Artifacts = kindResync, artifacts
	// ctx ends with the suite's set-up; a failure report comes later.
	env.Logs = func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return podLogs(ctx, env.Clientset, OperatorNamespace, "control-plane=controller-manager")
	}
	env.CollectLogs = func(ctx context.Context, dir string) error {
		return errors.Join(
			t.cluster.ExportLogs(ctx, filepath.Join(dir, "kind-logs")),
			writeDeploymentLogs(ctx, env.Clientset, dir, clusterComponentLogs))
	}
	return env, nil
}

// checkKindCluster fails fast on a cluster that is not the pinned one: a
// node of another Kubernetes version (kind reuses an existing cluster of the
// same name) or an issuer kind-config.yaml's patch did not set.
func checkKindCluster(ctx context.Context, env *Env, nodeImage, name string) error {
	nodes, err := env.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the kind cluster's nodes: %w", err)
	}
	for _, n := range nodes.Items {
		if err := CheckNodeVersion(n.Status.NodeInfo.KubeletVersion, nodeImage, name); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	// The service-account controller creates kube-system/default soon after
	// the API server starts.
	var claims Claims
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, c, err := env.ServiceAccountToken(ctx, "kube-system", "default", policy.Audience)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		claims = c
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("asking the kind cluster for a service-account token: %w", err)
	}
	return CheckIssuer(claims.Issuer, kindIssuer)
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
