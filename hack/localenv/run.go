package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
)

func runCommand(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var common commonFlags
	common.register(fs)
	manager := fs.String("manager", "bin/manager", "the operator binary")
	sample := fs.String("sample", "config/samples/local.yaml", "the AwsKubeflowProfiles to apply")
	_ = fs.Parse(args)

	ctx, stop := signalContext()
	defer stop()
	log := logTo(os.Stdout)
	env, err := start(ctx, common, log)
	if err != nil {
		return err
	}
	defer func() {
		log("stopping the control plane and kumo")
		env.stop()
		log("removed %s; nothing is left behind", env.stateDir)
	}()

	name, err := env.apply(ctx, *sample)
	if err != nil {
		return err
	}
	log("applied %s (AwsKubeflowProfiles %q)", *sample, name)

	op, err := env.startOperator(*manager, log)
	if err != nil {
		return err
	}
	log("inspect it from another shell: export KUBECONFIG=%s; kubectl get awskubeflowprofiles,profiles", env.kubeconfig)
	log("press Ctrl-C to stop")

	exited := make(chan error, 1)
	go func() { exited <- op.Wait() }()
	follow(ctx, env, name, log, exited)

	var runErr error
	select {
	case err := <-exited:
		// Ctrl-C in a terminal reaches the operator too; only an exit on
		// its own is a failure.
		if ctx.Err() == nil {
			runErr = fmt.Errorf("the operator exited on its own: %v", err)
		}
	default:
		log("stopping the operator")
		_ = op.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = op.Process.Kill()
			<-exited
		}
	}
	env.printInventory(context.Background(), log)
	return runErr
}

// apply creates the object in a YAML file and returns its name.
func (e *env) apply(ctx context.Context, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &obj.Object); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if err := e.client.Create(ctx, obj); err != nil {
		return "", fmt.Errorf("applying %s: %w", path, err)
	}
	return obj.GetName(), nil
}

// startOperator runs the manager as its own process, with the flags it has
// in a cluster, reaching the API server through a kubeconfig and kumo through
// AWS_ENDPOINT_URL. Its log lines are prefixed.
func (e *env) startOperator(manager string, log func(string, ...any)) (*exec.Cmd, error) {
	metricsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	probeAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(manager,
		"--metrics-bind-address="+metricsAddr, "--metrics-secure=false",
		"--health-probe-bind-address="+probeAddr,
		"--resync-period=1m", "--zap-encoder=console", "--zap-log-level=info")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.kubeconfig)
	cmd.Env = append(cmd.Env, e.awsEnv()...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", manager, err)
	}
	go prefixLines(stdout, "  operator | ")
	log("operator running (pid %d); metrics at http://%s/metrics", cmd.Process.Pid, metricsAddr)
	return cmd, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func prefixLines(r io.Reader, prefix string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fmt.Println(prefix + sc.Text())
	}
}

// follow prints the object's conditions whenever they change, until ctx
// ends or the operator exits (the exit is put back for the caller).
func follow(ctx context.Context, e *env, name string, log func(string, ...any), exited chan error) {
	began := time.Now()
	last, announced := "", false
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-exited:
			exited <- err
			return
		case <-tick.C:
		}
		cr := &v1alpha1.AwsKubeflowProfiles{}
		if err := e.client.Get(ctx, client.ObjectKey{Name: name}, cr); err != nil {
			continue
		}
		summary := conditionSummary(cr)
		if summary != last {
			log("%s: %s", name, summary)
			last = summary
		}
		if !announced && ready(cr) {
			announced = true
			log("%s is Ready (generation %d) %.1fs after the operator started", name, cr.Generation, time.Since(began).Seconds())
			for _, p := range cr.Status.Profiles {
				log("  profile %-14s %-8s role %s", p.Name, p.State, p.RoleARN)
			}
			log("  profile controller role %s, service account %s", cr.Status.ProfileController.Role.ARN, cr.Status.ProfileController.ServiceAccount)
		}
	}
}

func ready(cr *v1alpha1.AwsKubeflowProfiles) bool {
	for _, c := range cr.Status.Conditions {
		if c.Type == v1alpha1.ReadyCondition {
			return c.Status == "True" && c.ObservedGeneration == cr.Generation
		}
	}
	return false
}

func conditionSummary(cr *v1alpha1.AwsKubeflowProfiles) string {
	if len(cr.Status.Conditions) == 0 {
		return "no status yet"
	}
	parts := make([]string, 0, len(cr.Status.Conditions))
	for _, c := range cr.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s(%s)", c.Type, c.Status, c.Reason))
	}
	return strings.Join(parts, " ")
}

// printInventory lists what exists in IAM now.
func (e *env) printInventory(ctx context.Context, log func(string, ...any)) {
	log("what now exists in IAM (kumo):")
	providers, err := e.aws.IAM.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil {
		log("  listing OIDC providers: %v", err)
	} else {
		for _, p := range providers.OpenIDConnectProviderList {
			log("  OIDC provider %s", aws.ToString(p.Arn))
		}
	}
	policies, err := e.aws.IAM.ListPolicies(ctx, &iam.ListPoliciesInput{})
	if err != nil {
		log("  listing policies: %v", err)
	} else {
		arns := []string{}
		for _, p := range policies.Policies {
			arns = append(arns, aws.ToString(p.Arn))
		}
		slices.Sort(arns)
		for _, a := range arns {
			log("  policy        %s", a)
		}
	}
	roles, err := e.aws.IAM.ListRoles(ctx, &iam.ListRolesInput{})
	if err != nil {
		log("  listing roles: %v", err)
		return
	}
	slices.SortFunc(roles.Roles, func(a, b iamtypes.Role) int { return strings.Compare(aws.ToString(a.Arn), aws.ToString(b.Arn)) })
	for _, r := range roles.Roles {
		attached, _ := e.aws.IAM.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: r.RoleName})
		inline, _ := e.aws.IAM.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: r.RoleName})
		var names []string
		if attached != nil {
			for _, p := range attached.AttachedPolicies {
				names = append(names, aws.ToString(p.PolicyName))
			}
		}
		var inlineNames []string
		if inline != nil {
			inlineNames = inline.PolicyNames
		}
		log("  role          %s  attached=%v inline=%v", aws.ToString(r.Arn), names, inlineNames)
	}
}
