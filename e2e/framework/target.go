// Package framework gives the e2e specs one view of a cluster and an AWS
// account, whatever the target: local (a real control plane and kumo, the
// operator as a process), kind (LocalStack, the pod identity webhook and
// Kubeflow's profile controller in a kind cluster), node (a real single-node
// cluster on this machine, kumo on the host, the operator as a pod) or eks
// (an existing EKS cluster and real IAM). Specs declare what they need with
// labels; a target that cannot provide it skips them with the reason.
package framework

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/klient"
)

// Capability is something only some targets can do. Specs that need one
// carry it as a label.
type Capability string

const (
	// NeedsPod: a kubelet runs pods, and the pod identity webhook mutates
	// them.
	NeedsPod Capability = "needs:pod"
	// NeedsKubeflow: Kubeflow's profile controller reconciles Profiles.
	NeedsKubeflow Capability = "needs:kubeflow"
	// NeedsRealIAM: IAM and STS enforce policies.
	NeedsRealIAM Capability = "needs:real-iam"
	// NeedsSTSTrust: STS decides sts:AssumeRoleWithWebIdentity by the
	// role's trust policy and answers sts:GetCallerIdentity with the assumed
	// role, as real STS does (kumo behind awsiamtest's guard does too).
	NeedsSTSTrust Capability = "needs:sts-trust"
)

// Target is where the suite runs.
type Target interface {
	// Name is the target's label: local, kind or eks.
	Name() string
	// Has reports whether the target provides a capability, and if not,
	// why, for the skip message.
	Has(Capability) (bool, string)
	// Unavailable is a reason the target cannot run on this machine (no
	// Docker, no AWS credentials), or "".
	Unavailable(ctx context.Context) string
	// Start brings up what the target needs and returns how to reach it.
	Start(ctx context.Context) (*Env, error)
	// Stop tears down what Start brought up.
	Stop(ctx context.Context) error
}

// Cluster describes the cluster the operator manages.
type Cluster struct {
	Name   string
	Region string
	// AccountID and IssuerURL are what the spec should say; empty means the
	// operator must discover them (sts:GetCallerIdentity, eks:DescribeCluster).
	AccountID string
	IssuerURL string
	// ExpectAccountID and ExpectIssuerURL are what discovery should find.
	ExpectAccountID string
	ExpectIssuerURL string
}

// Env is how the specs reach the cluster and AWS.
type Env struct {
	Kube      klient.Client
	Clientset kubernetes.Interface
	AWS       aws.Config
	IAM       *iam.Client
	STS       *sts.Client
	Cluster   Cluster
	// ResyncPeriod is the operator's; drift in IAM is repaired within it.
	ResyncPeriod string
	// Artifacts is a directory for logs kept after the run.
	Artifacts string
	// Logs returns the tail of the operator's log, for failure reports.
	Logs func() string
	// CollectLogs writes into dir what explains a failed run beyond
	// Artifacts: the cluster's logs and those of the operator, the pod
	// identity webhook and Kubeflow's profile controller, where the target
	// runs them. Nil where there is nothing more to keep.
	CollectLogs func(ctx context.Context, dir string) error

	// ChaosURL controls the fault injection in front of the AWS emulator
	// (awsiamtest.Chaos), where the target has it; "" elsewhere.
	ChaosURL string
	// KillAndRestartOperator kills the operator with SIGKILL and starts it
	// again, where the operator runs as a process of the suite; nil elsewhere.
	KillAndRestartOperator func(ctx context.Context) error

	// PodAWSEndpoint is where pods reach the AWS emulator, on targets whose
	// pods need one ("" for real AWS).
	PodAWSEndpoint string
	// NotebookImage and PauseImage are the images the node target built for
	// the notebook stand-in and for pods that only need to run.
	NotebookImage, PauseImage string

	// MetricsURL is where the operator serves its metrics, over HTTPS to
	// callers whose token may get /metrics, where the suite can reach it;
	// nil elsewhere. It may change when the operator restarts.
	MetricsURL func(ctx context.Context) (string, error)

	// Kubeconfig is the cluster's kubeconfig file, for the tools the suite
	// runs as a user would; Tools is the directory of the project's
	// binaries. (Where their AWS calls go is AWS.BaseEndpoint.)
	Kubeconfig, Tools string
}

// connect builds the clients of an Env for the cluster at cfg and AWS at
// awsCfg; the target fills in the rest.
func connect(cfg *rest.Config, awsCfg aws.Config) (*Env, error) {
	kube, err := klient.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	return &Env{Kube: kube, Clientset: clientset, AWS: awsCfg, IAM: iam.NewFromConfig(awsCfg), STS: sts.NewFromConfig(awsCfg)}, nil
}

// connectKubeconfig is connect for a kubeconfig file.
func connectKubeconfig(kubeconfig string, awsCfg aws.Config) (*Env, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", kubeconfig, err)
	}
	env, err := connect(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	env.Kubeconfig = kubeconfig
	return env, nil
}

// New picks the target named by E2E_TARGET (default local).
func New() (Target, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	switch name := os.Getenv("E2E_TARGET"); name {
	case "", "local":
		return &localTarget{root: root}, nil
	case "kind":
		return &kindTarget{root: root}, nil
	case "eks":
		return &eksTarget{root: root}, nil
	case "node":
		return &nodeTarget{root: root}, nil
	default:
		return nil, fmt.Errorf("unknown E2E_TARGET %q: use local, node, kind or eks", name)
	}
}

// SkipReason is why the current spec cannot run on t, or "". A spec runs on
// the targets named in its labels, and only when t has every capability it
// needs.
func SkipReason(t Target, labels []string) string {
	for _, l := range labels {
		if !strings.HasPrefix(l, "needs:") {
			continue
		}
		if ok, why := t.Has(Capability(l)); !ok {
			return fmt.Sprintf("%s: %s (%s)", t.Name(), why, l)
		}
	}
	if !slices.Contains(labels, t.Name()) {
		return fmt.Sprintf("%s: this spec runs only on %s", t.Name(), strings.Join(targetLabels(labels), ", "))
	}
	return ""
}

func targetLabels(labels []string) []string {
	var out []string
	for _, l := range labels {
		if l == "local" || l == "node" || l == "kind" || l == "eks" {
			out = append(out, l)
		}
	}
	return out
}

// repoRoot is the directory holding go.mod, found upwards from the working
// directory (go test runs in e2e/).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(dir + "/go.mod"); err == nil {
			if _, err := os.Stat(dir + "/PROJECT"); err == nil {
				return dir, nil
			}
		}
		parent := dir[:max(strings.LastIndex(dir, "/"), 0)]
		if parent == "" || parent == dir {
			return "", fmt.Errorf("no project root (go.mod and PROJECT) above the working directory")
		}
		dir = parent
	}
}

// UnavailableError is a Start that found, only by trying, that this machine
// cannot run the target. The suite skips with its reason.
type UnavailableError struct{ Reason string }

func (e *UnavailableError) Error() string { return e.Reason }
