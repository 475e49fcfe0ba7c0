package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// eksTarget is an existing EKS cluster with Kubeflow, reached through the
// current kubeconfig, and real IAM through the default AWS credential
// chain. The operator runs as a process on this machine with those
// credentials, so no image has to be pushed anywhere.
//
//	E2E_EKS_CLUSTER  the EKS cluster name (required)
//	AWS_REGION       its region (required)
type eksTarget struct {
	root     string
	operator *process
}

func (*eksTarget) Name() string { return "eks" }

func (*eksTarget) Has(Capability) (bool, string) { return true, "" }

func (t *eksTarget) Unavailable(ctx context.Context) string {
	cluster, region := os.Getenv("E2E_EKS_CLUSTER"), os.Getenv("AWS_REGION")
	if cluster == "" || region == "" {
		return "eks: set E2E_EKS_CLUSTER and AWS_REGION to an EKS cluster with Kubeflow installed"
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Sprintf("eks: no AWS credentials: %v", err)
	}
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		return fmt.Sprintf("eks: no AWS credentials: sts:GetCallerIdentity failed: %v", err)
	}
	if _, err := eks.NewFromConfig(cfg).DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(cluster)}); err != nil {
		return fmt.Sprintf("eks: cannot describe EKS cluster %s in %s: %v", cluster, region, err)
	}
	rest, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		return fmt.Sprintf("eks: no kubeconfig for the cluster: %v", err)
	}
	clientset, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return fmt.Sprintf("eks: %v", err)
	}
	_, err = clientset.Discovery().ServerResourcesForGroupVersion("kubeflow.org/v1")
	if apierrors.IsNotFound(err) {
		return "eks: Kubeflow's Profile CRD (kubeflow.org/v1) is not installed in the cluster of the current kubeconfig"
	}
	if err != nil {
		return fmt.Sprintf("eks: cannot reach the cluster of the current kubeconfig: %v", err)
	}
	return ""
}

func (t *eksTarget) Start(ctx context.Context) (*Env, error) {
	artifacts, err := artifactsDir(t.root, "eks")
	if err != nil {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rest, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	cluster := os.Getenv("E2E_EKS_CLUSTER")
	described, err := eks.NewFromConfig(cfg).DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(cluster)})
	if err != nil {
		return nil, err
	}
	caller, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, err
	}
	// The operator gets the kubeconfig and the credential chain of this
	// shell; the kubeconfig may name an exec plugin such as `aws eks
	// get-token`, which needs PATH and the AWS variables.
	env := os.Environ()
	if kubeconfig := rules.GetDefaultFilename(); kubeconfig != "" {
		env = append(env, "KUBECONFIG="+kubeconfig)
	}
	resync := "15s"
	t.operator, err = operatorProcess(ctx, "operator", filepath.Join(t.root, "bin", "manager"), artifacts, resync, env)
	if err != nil {
		return nil, err
	}
	e, err := connect(rest, cfg)
	if err != nil {
		return nil, err
	}
	e.Cluster = Cluster{
		Name:            cluster,
		Region:          cfg.Region,
		ExpectAccountID: aws.ToString(caller.Account),
		ExpectIssuerURL: aws.ToString(described.Cluster.Identity.Oidc.Issuer),
	}
	e.ResyncPeriod, e.Artifacts = resync, artifacts
	e.Logs = func() string { return t.operator.tail(60) }
	e.MetricsURL = func(context.Context) (string, error) { return t.operator.metricsURL, nil }
	// The operator's log is already in Artifacts, and EKS runs the pod
	// identity webhook on its control plane, out of reach.
	e.CollectLogs = func(ctx context.Context, dir string) error {
		return writeDeploymentLogs(ctx, e.Clientset, dir, []deploymentLogs{kubeflowProfiles})
	}
	return e, nil
}

func (t *eksTarget) Stop(context.Context) error { return t.operator.stop(15 * time.Second) }
