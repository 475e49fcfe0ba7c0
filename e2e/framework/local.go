package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
)

// localTarget is the local proving ground: a real kube-apiserver and etcd,
// kumo as its own process (bin/localenv up), and the operator built and run
// as its own process with the flags it has in a cluster. There is no kubelet
// and no Kubeflow, and kumo enforces no policy.
type localTarget struct {
	root     string
	env      *process
	operator *process
}

func (*localTarget) Name() string { return "local" }

func (*localTarget) Has(c Capability) (bool, string) {
	switch c {
	case NeedsPod:
		return false, "no kubelet runs pods on the local control plane"
	case NeedsKubeflow:
		return false, "Kubeflow's profile controller is not installed on the local control plane"
	case NeedsRealIAM:
		return false, "kumo enforces no IAM policy"
	case NeedsSTSTrust:
		return true, ""
	}
	return false, "unknown capability"
}

func (t *localTarget) assets() string { return os.Getenv("E2E_ASSETS") }

func (t *localTarget) Unavailable(context.Context) string {
	return missing("local", filepath.Join(t.assets(), "kube-apiserver"), filepath.Join(t.assets(), "etcd"),
		filepath.Join(t.root, "bin", "manager"), filepath.Join(t.root, "bin", "localenv"))
}

// missing names the first of the files a target's runner builds that is not
// there, and how to get it, or is "".
func missing(target string, files ...string) string {
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return fmt.Sprintf("%s: %s is missing; run it through `make test-e2e E2E_TARGET=%s`, which builds it", target, f, target)
		}
	}
	return ""
}

func (t *localTarget) Start(ctx context.Context) (*Env, error) {
	artifacts, err := artifactsDir(t.root, "local")
	if err != nil {
		return nil, err
	}
	envFile := filepath.Join(artifacts, "localenv.env")
	_ = os.Remove(envFile)
	t.env, err = startProcess("localenv", artifacts, os.Environ(), filepath.Join(t.root, "bin", "localenv"),
		"up", "--assets", t.assets(), "--root", t.root, "--env-file", envFile, "--chaos")
	if err != nil {
		return nil, err
	}
	if err := waitForFile(ctx, envFile, t.env, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("waiting for the local environment: %w", err)
	}
	vars, err := readEnvFile(envFile)
	if err != nil {
		return nil, err
	}
	var processEnv []string
	for k, v := range vars {
		if k == "KUBECONFIG" || strings.HasPrefix(k, "AWS_") {
			processEnv = append(processEnv, k+"="+v)
		}
	}
	resync := "5s"
	operatorEnv := append(minimalEnv(), processEnv...)
	// kumo takes far more than IAM's rate; the default limit of 10 calls a
	// second would make the 100-profile fault spec take minutes of waiting.
	operatorArgs := []string{"--aws-requests-per-second=200", "--aws-burst=200"}
	t.operator, err = operatorProcess(ctx, "operator", filepath.Join(t.root, "bin", "manager"), artifacts, resync, operatorEnv, operatorArgs...)
	if err != nil {
		return nil, err
	}

	env, err := connectKubeconfig(vars["KUBECONFIG"], awsiamtest.Config(vars["AWS_ENDPOINT_URL"], nil))
	if err != nil {
		return nil, err
	}
	env.Cluster = Cluster{
		Name:   vars["LOCAL_CLUSTER"],
		Region: "us-east-1",
		// Both left out of the spec: the account is discovered with
		// sts:GetCallerIdentity, the issuer from kumo's EKS.
		ExpectAccountID: vars["LOCAL_ACCOUNT_ID"],
		ExpectIssuerURL: vars["LOCAL_OIDC_ISSUER"],
	}
	env.ResyncPeriod, env.Artifacts = resync, artifacts
	env.Tools = filepath.Join(t.root, "bin")
	env.Logs = func() string { return t.operator.tail(60) }
	env.ChaosURL = vars["AWS_ENDPOINT_URL"] + awsiamtest.ChaosPath
	restarts := 0
	env.MetricsURL = func(context.Context) (string, error) { return t.operator.metricsURL, nil }
	env.KillAndRestartOperator = func(ctx context.Context) error {
		t.operator.kill()
		restarts++
		p, err := operatorProcess(ctx, fmt.Sprintf("operator-%d", restarts), filepath.Join(t.root, "bin", "manager"), artifacts, resync, operatorEnv, operatorArgs...)
		if err != nil {
			return err
		}
		t.operator = p
		return nil
	}
	return env, nil
}

func (t *localTarget) Stop(context.Context) error {
	err := t.operator.stop(15 * time.Second)
	if envErr := t.env.stop(30 * time.Second); envErr != nil && err == nil {
		err = envErr
	}
	return err
}

// minimalEnv is the environment a child process gets before its own
// settings: enough to run, and nothing that points the SDK at a real account.
func minimalEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func artifactsDir(root, target string) (string, error) {
	dir := filepath.Join(root, "bin", "e2e-artifacts", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}
