package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/klient/decoder"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"

	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
)

// OperatorNamespace is where config/default installs the operator.
const OperatorNamespace = "awskubeflowprofiles-system"

// nodeTarget is a real single-node cluster on this machine (bin/nodeenv
// up): the control plane, containerd, kubelet and kube-proxy as processes,
// and kumo on the host, which pods reach at the bridge's gateway. The
// operator runs as a pod, installed from config/default with its image
// built without Docker. There is no Kubeflow and no pod identity webhook:
// the suite stands in for them, and says so.
type nodeTarget struct {
	root     string
	env      *process
	vars     map[string]string
	deployed *Env
}

func (*nodeTarget) Name() string { return "node" }

func (*nodeTarget) Has(c Capability) (bool, string) {
	switch c {
	case NeedsPod, NeedsSTSTrust:
		return true, ""
	case NeedsKubeflow:
		return false, "Kubeflow's profile controller is not installed on the node; the suite stands in for it"
	case NeedsRealIAM:
		return false, "kumo enforces no IAM policy"
	}
	return false, "unknown capability"
}

func (t *nodeTarget) assets() string { return os.Getenv("E2E_ASSETS") }

// Unavailable checks only what the runner builds: root and the Debian
// packages are nodeenv's to check (and install), and it says so by exiting
// 3, which Start turns into an UnavailableError.
func (t *nodeTarget) Unavailable(context.Context) string {
	need := []string{filepath.Join(t.root, "bin", "nodeenv"), filepath.Join(t.root, "bin", "kustomize"), filepath.Join(t.root, "bin", "kubectl-awskubeflowprofiles")}
	for _, c := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"} {
		need = append(need, filepath.Join(t.assets(), c))
	}
	for _, img := range []string{"operator.tar", "pause.tar", "notebook.tar"} {
		need = append(need, filepath.Join(t.root, "bin", "images", img))
	}
	return missing("node", need...)
}

func (t *nodeTarget) Start(ctx context.Context) (*Env, error) {
	artifacts, err := artifactsDir(t.root, "node")
	if err != nil {
		return nil, err
	}
	envFile := filepath.Join(artifacts, "node.env")
	_ = os.Remove(envFile)
	t.env, err = startProcess("nodeenv", artifacts, os.Environ(), filepath.Join(t.root, "bin", "nodeenv"),
		"up", "--assets", t.assets(), "--images", filepath.Join(t.root, "bin", "images"), "--env-file", envFile,
		"--logs", filepath.Join(artifacts, "node-logs"))
	if err != nil {
		return nil, err
	}
	// nodeenv bounds each step of its bring-up; this deadline only has to
	// outlast them all, a package installation and another run's lock.
	if err := waitForFile(ctx, envFile, t.env, 25*time.Minute); err != nil {
		if why := t.nodeenvRefusal(); why != "" {
			return nil, &UnavailableError{Reason: "node: " + why}
		}
		return nil, fmt.Errorf("waiting for the node: %w", err)
	}
	if t.vars, err = readEnvFile(envFile); err != nil {
		return nil, err
	}
	env, err := connectKubeconfig(t.vars["KUBECONFIG"], awsiamtest.Config(t.vars["AWS_ENDPOINT_URL"], nil))
	if err != nil {
		return nil, err
	}
	env.Cluster = Cluster{
		Name:            t.vars["NODE_CLUSTER"],
		Region:          "us-east-1",
		ExpectAccountID: t.vars["NODE_ACCOUNT_ID"],
		ExpectIssuerURL: t.vars["NODE_OIDC_ISSUER"],
	}
	env.ResyncPeriod, env.Artifacts = "5s", artifacts
	env.PodAWSEndpoint = t.vars["NODE_POD_AWS_ENDPOINT_URL"]
	env.NotebookImage = t.vars["NODE_NOTEBOOK_IMAGE"]
	env.PauseImage = t.vars["NODE_PAUSE_IMAGE"]
	env.Tools = filepath.Join(t.root, "bin")
	env.Logs = func() string { return t.operatorLogs(env) }
	env.MetricsURL = func(ctx context.Context) (string, error) { return metricsServiceURL(ctx, env) }
	env.CollectLogs = func(ctx context.Context, dir string) error {
		return writeDeploymentLogs(ctx, env.Clientset, dir, []deploymentLogs{operatorDeployment})
	}
	if err := t.standInForKubeflow(ctx, env); err != nil {
		return env, err
	}
	if err := t.deployOperator(ctx, env, artifacts); err != nil {
		return env, err
	}
	t.deployed = env
	return env, nil
}

// standInForKubeflow installs what the operator needs of Kubeflow, which
// is not installed here: its namespace and its Profile CRD.
func (t *nodeTarget) standInForKubeflow(ctx context.Context, env *Env) error {
	if err := env.Kube.Resources().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubeflow"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	crd, err := os.ReadFile(filepath.Join(t.root, "hack", "crds", "kubeflow.org_profiles.yaml"))
	if err != nil {
		return err
	}
	if err := decoder.DecodeEach(ctx, bytes.NewReader(crd), decoder.CreateHandler(env.Kube.Resources())); err != nil {
		return fmt.Errorf("installing Kubeflow's Profile CRD: %w", err)
	}
	return nil
}

// deployOperator installs the operator from config/default, as a user
// would: its image replaced by the one built for the node, its AWS endpoint
// the host's kumo, and its credentials in a Secret, as in a cluster without
// IRSA.
func (t *nodeTarget) deployOperator(ctx context.Context, env *Env, artifacts string) error {
	overlay := filepath.Join(artifacts, "deploy")
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		return err
	}
	base, err := filepath.Rel(overlay, filepath.Join(t.root, "config", "default"))
	if err != nil {
		return err
	}
	creds := awsiamtest.Config("", nil).Credentials
	key, err := creds.Retrieve(ctx)
	if err != nil {
		return err
	}
	kustomization := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- %s
secretGenerator:
- name: aws-credentials
  namespace: %s
  literals:
  - AWS_ACCESS_KEY_ID=%s
  - AWS_SECRET_ACCESS_KEY=%s
patches:
- target:
    kind: Deployment
  patch: |-
    - op: replace
      path: /spec/template/spec/containers/0/image
      value: %s
    - op: add
      path: /spec/template/spec/containers/0/imagePullPolicy
      value: Never
    - op: add
      path: /spec/template/spec/containers/0/envFrom
      value: [{secretRef: {name: aws-credentials}}]
    - op: add
      path: /spec/template/spec/containers/0/env
      value: [{name: AWS_ENDPOINT_URL, value: %q}, {name: AWS_REGION, value: us-east-1}]
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --resync-period=%s
`, base, OperatorNamespace, key.AccessKeyID, key.SecretAccessKey, t.vars["NODE_OPERATOR_IMAGE"], env.PodAWSEndpoint, env.ResyncPeriod)
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		return err
	}
	manifests, err := exec.CommandContext(ctx, filepath.Join(t.root, "bin", "kustomize"), "build", overlay).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("kustomize build %s: %w: %s", overlay, err, ee.Stderr)
		}
		return err
	}
	if err := os.WriteFile(filepath.Join(artifacts, "operator.yaml"), manifests, 0o644); err != nil {
		return err
	}
	if err := decoder.DecodeEach(ctx, bytes.NewReader(manifests), decoder.CreateHandler(env.Kube.Resources())); err != nil {
		return fmt.Errorf("installing the operator from config/default: %w", err)
	}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: OperatorNamespace, Name: "awskubeflowprofiles-controller-manager"}}
	err = wait.For(conditions.New(env.Kube.Resources()).DeploymentConditionMatch(dep, appsv1.DeploymentAvailable, corev1.ConditionTrue),
		wait.WithTimeout(3*time.Minute), wait.WithInterval(time.Second), wait.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("waiting for the operator's Deployment to be available: %w\n%s", err, t.operatorLogs(env))
	}
	return nil
}

// operatorLogs is the tail of the operator pod's log, read through the
// kubelet.
func (t *nodeTarget) operatorLogs(env *Env) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods := &corev1.PodList{}
	if err := env.Kube.Resources(OperatorNamespace).List(ctx, pods); err != nil || len(pods.Items) == 0 {
		return fmt.Sprintf("no operator pod (%v)", err)
	}
	tail := int64(60)
	pod := pods.Items[0]
	// A container that crashed has its last words in its previous run.
	previous := len(pod.Status.ContainerStatuses) > 0 && pod.Status.ContainerStatuses[0].RestartCount > 0 && pod.Status.ContainerStatuses[0].State.Running == nil
	raw, err := env.Clientset.CoreV1().Pods(OperatorNamespace).GetLogs(pod.Name, &corev1.PodLogOptions{TailLines: &tail, Previous: previous}).DoRaw(ctx)
	if err != nil {
		return err.Error()
	}
	return string(raw)
}

func (t *nodeTarget) Stop(ctx context.Context) error {
	if t.deployed != nil {
		_ = os.WriteFile(filepath.Join(t.deployed.Artifacts, "operator.log"), []byte(t.operatorLogs(t.deployed)), 0o644)
	}
	// nodeenv stops the node, restores the host and fails if the host then
	// differs from before the run.
	if err := t.env.stop(5 * time.Minute); err != nil {
		return err
	}
	if _, err := t.env.exited(); err != nil && t.nodeenvRefusal() == "" {
		return fmt.Errorf("nodeenv: %w:\n%s", err, t.env.tail(20))
	}
	return nil
}

// nodeUnavailablePrefix is how nodeenv says, before it exits 3, what this
// machine lacks for a node (installing a package failed, say).
const nodeUnavailablePrefix = "nodeenv: this machine cannot run a node: "

// nodeenvRefusal is the reason nodeenv gave if it exited 3, or "".
func (t *nodeTarget) nodeenvRefusal() string {
	ended, err := t.env.exited()
	var exit *exec.ExitError
	if !ended || !errors.As(err, &exit) || exit.ExitCode() != 3 {
		return ""
	}
	for _, line := range strings.Split(t.env.tail(30), "\n") {
		if why, ok := strings.CutPrefix(line, nodeUnavailablePrefix); ok {
			return why
		}
	}
	return "nodeenv exited 3 without a reason; see " + t.env.logPath
}

// metricsServiceURL is the operator's metrics endpoint through the Service
// config/default installs, which kube-proxy routes from the host too.
func metricsServiceURL(ctx context.Context, env *Env) (string, error) {
	svc, err := env.Clientset.CoreV1().Services(OperatorNamespace).Get(ctx, operatorMetricsService, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading the operator's metrics Service: %w", err)
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == "https" {
			return fmt.Sprintf("https://%s/metrics", net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(p.Port)))), nil
		}
	}
	return "", fmt.Errorf("the Service %s/%s has no https port", OperatorNamespace, operatorMetricsService)
}

// operatorMetricsService is config/default's metrics Service, prefixed.
const operatorMetricsService = "awskubeflowprofiles-controller-manager-metrics-service"
