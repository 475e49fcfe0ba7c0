package framework

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/awskubeflowprofiles/operator/internal/diagnose"
)

// Diagnose runs the kubectl plugin's diagnose for profile, and pod when not
// "", as a user would: the binary make build wrote, the cluster's
// kubeconfig and the suite's AWS credentials. It returns the JSON report
// and the exit code; err is a run that gave neither.
func (e *Env) Diagnose(ctx context.Context, profile, pod string) (diagnose.Report, int, error) {
	if e.Tools == "" || e.Kubeconfig == "" {
		return diagnose.Report{}, 0, errors.New("this target does not say where the kubectl plugin and the kubeconfig are")
	}
	creds, err := e.AWS.Credentials.Retrieve(ctx)
	if err != nil {
		return diagnose.Report{}, 0, fmt.Errorf("the suite's AWS credentials: %w", err)
	}
	args := []string{"diagnose", "-n", profile, "-o", "json", "--kubeconfig", e.Kubeconfig}
	if pod != "" {
		args = append(args, pod)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(e.Tools, "kubectl-awskubeflowprofiles"), args...)
	cmd.Env = append(minimalEnv(), "AWS_ACCESS_KEY_ID="+creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+creds.SecretAccessKey, "AWS_REGION="+e.Cluster.Region)
	if creds.SessionToken != "" {
		cmd.Env = append(cmd.Env, "AWS_SESSION_TOKEN="+creds.SessionToken)
	}
	if endpoint := aws.ToString(e.AWS.BaseEndpoint); endpoint != "" {
		cmd.Env = append(cmd.Env, "AWS_ENDPOINT_URL="+endpoint)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return diagnose.Report{}, 0, fmt.Errorf("running %s: %w", cmd, err)
	}
	var report diagnose.Report
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		return diagnose.Report{}, cmd.ProcessState.ExitCode(), fmt.Errorf("%s printed no report (exit %d): %w\nstdout: %s\nstderr: %s",
			cmd, cmd.ProcessState.ExitCode(), err, stdout.String(), stderr.String())
	}
	return report, cmd.ProcessState.ExitCode(), nil
}
