package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
)

// DatasetsPolicy is a customer managed policy the environment creates, as an
// admin would have, because kumo has no AWS-managed policies to attach.
const DatasetsPolicy = "kubeflow-datasets-read"

// env is a running local proving ground.
type env struct {
	log        func(format string, args ...any)
	aws        *awsiamtest.Env
	testEnv    *envtest.Environment
	cfg        *rest.Config
	client     client.Client
	stateDir   string
	kubeconfig string
	cluster    string
	region     string
	issuer     string
}

func logTo(w io.Writer) func(string, ...any) {
	start := time.Now()
	return func(format string, args ...any) {
		fmt.Fprintf(w, "[local %5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
}

// start brings up kumo, a simulated EKS cluster in it, and a control plane
// that signs service-account tokens with that cluster's issuer.
func start(ctx context.Context, c commonFlags, log func(string, ...any)) (*env, error) {
	if c.assets == "" {
		return nil, fmt.Errorf("no kube-apiserver and etcd: pass --assets or set KUBEBUILDER_ASSETS (make envtest builds them)")
	}
	e := &env{log: log, cluster: c.cluster, region: c.region}
	ok := false
	defer func() {
		if !ok {
			e.stop()
		}
	}()

	e.aws = awsiamtest.StartWith(awsiamtest.Options{Chaos: c.chaos})
	log("kumo AWS emulator listening on %s", e.aws.URL)
	issuer, err := e.aws.CreateCluster(ctx, c.cluster)
	if err != nil {
		return nil, fmt.Errorf("creating EKS cluster %s in kumo: %w", c.cluster, err)
	}
	e.issuer = issuer
	log("simulated EKS cluster %q has OIDC issuer %s", c.cluster, issuer)
	if _, err := e.aws.IAM.CreatePolicy(ctx, &iam.CreatePolicyInput{
		PolicyName:     aws.String(DatasetsPolicy),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::kubeflow-datasets","arn:aws:s3:::kubeflow-datasets/*"]}]}`),
	}); err != nil {
		return nil, fmt.Errorf("creating policy %s in kumo: %w", DatasetsPolicy, err)
	}

	e.stateDir, err = os.MkdirTemp("", "awskubeflowprofiles-local-")
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	e.testEnv = &envtest.Environment{
		BinaryAssetsDirectory: c.assets,
		CRDDirectoryPaths: []string{
			filepath.Join(c.root, "config", "crd", "bases"),
			filepath.Join(c.root, "hack", "crds"),
		},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	// Tokens the API server issues carry the simulated cluster's issuer, as
	// on EKS, so a TokenRequest can be checked against a role's trust.
	e.testEnv.ControlPlane.GetAPIServer().Configure().Set("service-account-issuer", issuer)
	log("starting kube-apiserver and etcd from %s", c.assets)
	e.cfg, err = e.testEnv.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	log("control plane at %s; CRDs installed: awskubeflowprofiles.kubeflow.aws, profiles.kubeflow.org", e.cfg.Host)

	user, err := e.testEnv.AddUser(envtest.User{Name: "localenv-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("creating an admin user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("writing a kubeconfig: %w", err)
	}
	e.kubeconfig = filepath.Join(e.stateDir, "kubeconfig")
	if err := os.WriteFile(e.kubeconfig, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	e.client, err = client.New(e.cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	// What a Kubeflow installation would have: the profile controller's
	// namespace.
	if err := e.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubeflow"}}); err != nil {
		return nil, fmt.Errorf("creating namespace kubeflow: %w", err)
	}
	ok = true
	return e, nil
}

// awsEnv is how a process reaches kumo through the SDK's standard
// configuration.
func (e *env) awsEnv() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + e.aws.URL,
		"AWS_REGION=" + e.region,
		"AWS_ACCESS_KEY_ID=AKIAKUMOLOCAL",
		"AWS_SECRET_ACCESS_KEY=kumo-local-secret",
		// Keep the SDK from reading a developer's real profile.
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

func (e *env) writeEnvFile(path string) error {
	lines := append([]string{
		"KUBECONFIG=" + e.kubeconfig,
		"LOCAL_CLUSTER=" + e.cluster,
		"LOCAL_OIDC_ISSUER=" + e.issuer,
		"LOCAL_ACCOUNT_ID=" + awsiamtest.AccountID,
		"LOCAL_DATASETS_POLICY_ARN=arn:aws:iam::" + awsiamtest.AccountID + ":policy/" + DatasetsPolicy,
	}, e.awsEnv()...)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// stop tears down whatever was started and removes the temporary state.
func (e *env) stop() {
	if e.testEnv != nil && e.cfg != nil {
		if err := e.testEnv.Stop(); err != nil {
			e.log("stopping the control plane: %v", err)
		}
	}
	if e.aws != nil {
		e.aws.Close()
	}
	if e.stateDir != "" {
		_ = os.RemoveAll(e.stateDir)
	}
}
