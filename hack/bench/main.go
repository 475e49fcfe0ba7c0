// Command bench measures the operator end to end, as it runs: the manager
// binary as its own process against a real kube-apiserver and etcd
// (envtest) and kumo, for AwsKubeflowProfiles of N profiles. For each N it
// prints the time from apply to Ready, the IAM calls per profile to create,
// by operation, the calls per profile in one resync period at steady state
// (reads and writes), the calls and time to converge an edit of one profile
// among N, and the manager's peak RSS. It measures; it passes or fails
// nothing. `make bench` runs it with the rate limit lifted and with the
// default one.
//
//	go run ./hack/bench -assets DIR -manager bin/manager -n 10,100,1000 -rate 0
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/controller"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

func main() {
	assets := flag.String("assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory with kube-apiserver and etcd")
	manager := flag.String("manager", "bin/manager", "the operator binary")
	sizes := flag.String("n", "10,100,1000", "comma-separated numbers of profiles")
	rate := flag.Float64("rate", 0, "the manager's --aws-requests-per-second; 0 lifts the limit")
	resync := flag.Duration("resync", 20*time.Second, "the manager's --resync-period, the window of the steady-state count; under -rate long enough for the checks of a period")
	details := flag.Bool("details", false, "serve a fake of iam:GetAccountAuthorizationDetails, which kumo lacks")
	root := flag.String("root", ".", "project root")
	memLimit := flag.String("gomemlimit", "", "the manager's GOMEMLIMIT instead of config/manager/manager.yaml's")
	gogc := flag.String("gogc", "", "the manager's GOGC instead of config/manager/manager.yaml's")
	keep := flag.Bool("keep", false, "keep the manager's logs, at -zap-log-level=debug and with the GC's trace")
	flag.Parse()
	ctrllog.SetLogger(logr.Discard()) // envtest's own logs are not the measurement
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fail(fmt.Errorf("-n: %q is not a number of profiles", s))
		}
		ns = append(ns, n)
	}
	limit := "lifted (100000/s)"
	rps, burst := 100000.0, 100000
	if *rate > 0 {
		limit, rps, burst = fmt.Sprintf("%g/s", *rate), *rate, 20
	}
	managerEnv, err := deploymentEnv(filepath.Join(*root, "config", "manager", "manager.yaml"))
	if err != nil {
		fail(err)
	}
	managerEnv = withEnv(managerEnv, "GOMEMLIMIT", *memLimit)
	managerEnv = withEnv(managerEnv, "GOGC", *gogc)
	// Interrupted, a run still stops its manager and control plane.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	awsEnv := awsiamtest.StartWith(awsiamtest.Options{Chaos: true, AuthorizationDetails: *details})
	var rows []result
	for _, n := range ns {
		// Under a rate limit, the checks of a period take about 2 calls a
		// profile at the half of the rate the verifier may use; the period
		// must hold them.
		period := *resync
		if *rate > 0 {
			period = max(period, (time.Duration(float64(2*n)/(*rate/2)*1.2) * time.Second).Round(time.Second))
		}
		r, err := measure(ctx, awsEnv, *assets, *root, *manager, n, rps, burst, period, *keep, managerEnv)
		if err != nil {
			fail(fmt.Errorf("%d profiles: %w", n, err))
		}
		rows = append(rows, r)
	}
	bulk := "ListRoles"
	if *details {
		bulk += " and a fake of GetAccountAuthorizationDetails"
	}
	fmt.Printf("\nAWS rate limit %s, bulk reads by %s, on %s; the manager's environment as its Deployment's: %s\n",
		limit, bulk, machine(), strings.Join(managerEnv, " "))
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "profiles\tapply→Ready\tcalls/profile to create\tresync period\treads/profile/resync\twrites/resync\tedit one: calls to its role\tedit one: time\twrites to other roles\tpeak RSS\tobject size\t")
	for _, r := range rows {
		fmt.Fprintf(w, "%d\t%s\t%.2f\t%s\t%.3f\t%d\t%d\t%s\t%d\t%d MiB\t%d KiB\t\n", r.n, r.ready.Round(10*time.Millisecond), r.createPerProfile,
			r.resync, r.readsPerProfile, r.steadyWrites, r.editCalls, r.edit.Round(10*time.Millisecond), r.otherWrites, r.peakRSS>>20, r.objectBytes>>10)
	}
	_ = w.Flush()
	for _, r := range rows {
		fmt.Printf("\n%d profiles, calls to create by operation: %s\n", r.n, r.createOps)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

type result struct {
	n                int
	ready, edit      time.Duration
	resync           time.Duration
	createPerProfile float64
	createOps        string
	readsPerProfile  float64
	steadyWrites     int
	editCalls        int
	otherWrites      int
	peakRSS          int64
	objectBytes      int
}

// measure runs one manager, on a fresh control plane, for one object of n
// profiles.
func measure(ctx context.Context, awsEnv *awsiamtest.Env, assets, root, manager string, n int, rps float64, burst int, resync time.Duration, keep bool, managerEnv []string) (result, error) {
	res := result{n: n, resync: resync}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	testEnv := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases"), filepath.Join(root, "hack", "crds")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := testEnv.Start()
	if err != nil {
		return res, fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() { _ = testEnv.Stop() }()
	user, err := testEnv.AddUser(envtest.User{Name: "bench", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return res, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "awskubeflowprofiles-bench-")
	if err != nil {
		return res, err
	}
	if keep {
		fmt.Fprintf(os.Stderr, "bench: %d profiles: the manager's log is in %s\n", n, dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "kubeconfig"), kubeconfig, 0o600); err != nil {
		return res, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return res, err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubeflow"}}); err != nil {
		return res, err
	}

	cluster := fmt.Sprintf("bench-%d-%d", n, time.Now().UnixNano()%100000)
	policies := make([]string, 2)
	for i := range policies {
		out, err := awsEnv.IAM.CreatePolicy(ctx, &iam.CreatePolicyInput{
			PolicyName:     aws.String(fmt.Sprintf("%s-%d", cluster, i)),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}`),
		})
		if err != nil {
			return res, err
		}
		policies[i] = aws.ToString(out.Policy.Arn)
	}

	logFile, err := os.Create(filepath.Join(dir, "manager.log"))
	if err != nil {
		return res, err
	}
	defer logFile.Close()
	cmd := exec.Command(manager, "--metrics-bind-address=0", "--health-probe-bind-address=0", "--resync-period="+resync.String(),
		fmt.Sprintf("--aws-requests-per-second=%g", rps), fmt.Sprintf("--aws-burst=%d", burst), "--profile-concurrency=8")
	if keep {
		cmd.Args = append(cmd.Args, "--zap-log-level=debug", "--pprof-bind-address="+pprofAddr)
	}
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(dir, "kubeconfig"),
		"AWS_ENDPOINT_URL="+awsEnv.URL, "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench", "AWS_REGION=us-east-1")
	if keep {
		cmd.Env = append(cmd.Env, "GODEBUG=gctrace=1")
	}
	cmd.Env = append(cmd.Env, managerEnv...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()

	cr := &v1alpha1.AwsKubeflowProfiles{
		ObjectMeta: metav1.ObjectMeta{Name: cluster},
		Spec: v1alpha1.AwsKubeflowProfilesSpec{
			Cluster: v1alpha1.ClusterSpec{Name: cluster, Region: "us-east-1", AccountID: awsiamtest.AccountID,
				OIDCIssuerURL: "https://oidc.eks.us-east-1.amazonaws.com/id/" + strings.ToUpper(cluster)},
			ProfileController: v1alpha1.ProfileControllerSpec{RestartOnRoleChange: aws.Bool(false)},
		},
	}
	for i := range n {
		name := fmt.Sprintf("%s-p%04d", cluster, i)
		cr.Spec.Profiles = append(cr.Spec.Profiles, v1alpha1.ProfileSpec{Name: name, Owner: v1alpha1.ProfileOwner{Name: name + "@example.com"}, ManagedPolicyARNs: policies[:1]})
	}
	awsEnv.Chaos.ResetCalls()
	start := time.Now()
	if err := c.Create(ctx, cr); err != nil {
		return res, err
	}
	if err := waitReady(ctx, c, cr, 30*time.Minute); err != nil {
		return res, fmt.Errorf("waiting for Ready (log %s): %w", logFile.Name(), err)
	}
	res.ready = time.Since(start)
	if err := c.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
		return res, err
	}
	if data, err := json.Marshal(cr); err == nil {
		res.objectBytes = len(data)
	}
	// What the verifier checked meanwhile is not the cost of creating.
	created := minus(awsEnv.Chaos.Calls(), awsEnv.Chaos.CallsOfApp(controller.VerifierAppID))
	res.createPerProfile = float64(total(created)) / float64(n)
	res.createOps = byOperation(created, n)

	// Two resync periods at steady state, then an edit of one profile. The
	// checks are spread across the period, so two periods hold two of
	// each, wherever the once-a-period reads fall.
	awsEnv.Chaos.ResetCalls()
	select { // the window the count is over
	case <-time.After(2 * resync):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	steady := awsEnv.Chaos.Calls()
	res.readsPerProfile = float64(reads(steady)) / float64(2*n)
	res.steadyWrites = (total(steady) - reads(steady)) / 2

	awsEnv.Chaos.ResetCalls()
	var role string
	// The operator writes the status meanwhile, which changes the object's
	// version: an edit that lost that race is made again on a fresh read.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
			return err
		}
		edited := cr.Spec.Profiles[n/2]
		edited.ManagedPolicyARNs = policies
		cr.Spec.Profiles[n/2] = edited
		role = desired.ProfileRoleName(edited.Name, cluster)
		start = time.Now()
		return c.Update(ctx, cr)
	}); err != nil {
		return res, fmt.Errorf("editing one profile: %w", err)
	}
	if err := waitReady(ctx, c, cr, 10*time.Minute); err != nil {
		return res, fmt.Errorf("waiting for the edit: %w", err)
	}
	res.edit = time.Since(start)
	// The verifier's background reads go on meanwhile; what the edit
	// made is what names its role, and no other role may be written.
	mentioning := awsEnv.Chaos.CallsMentioning(role)
	res.editCalls = total(mentioning)
	all := awsEnv.Chaos.Calls()
	res.otherWrites = total(all) - reads(all) - (total(mentioning) - reads(mentioning))
	res.peakRSS = peakRSS(cmd.Process.Pid)
	if keep {
		saveProfile(filepath.Join(dir, "allocs.pprof"), "http://"+pprofAddr+"/debug/pprof/allocs")
	}
	return res, nil
}

// pprofAddr is where a manager run with -keep serves its profiles.
const pprofAddr = "127.0.0.1:6065"

// saveProfile writes the profile at url to path, or says why not.
func saveProfile(path, url string) {
	resp, err := http.Get(url) //nolint:gosec // the manager this run started, on loopback
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: reading a profile:", err)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil {
		err = os.WriteFile(path, data, 0o600)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: saving a profile:", err)
	}
}

// waitReady polls, every 100 ms and within timeout, until the object is Ready
// for its current generation.
func waitReady(ctx context.Context, c client.Client, cr *v1alpha1.AwsKubeflowProfiles, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		got := &v1alpha1.AwsKubeflowProfiles{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(cr), got); err != nil {
			return false, nil
		}
		r := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
		return r != nil && r.Status == metav1.ConditionTrue && r.ObservedGeneration == got.Generation, nil
	})
}

func minus(all, some map[string]int) map[string]int {
	out := map[string]int{}
	for action, n := range all {
		if n > some[action] {
			out[action] = n - some[action]
		}
	}
	return out
}

func total(calls map[string]int) int {
	n := 0
	for _, v := range calls {
		n += v
	}
	return n
}

func reads(calls map[string]int) int {
	n := 0
	for action, v := range calls {
		if !(awsiamtest.Call{Action: action}).Write() {
			n += v
		}
	}
	return n
}

func byOperation(calls map[string]int, n int) string {
	actions := make([]string, 0, len(calls))
	for a := range calls {
		actions = append(actions, a)
	}
	sort.Slice(actions, func(i, j int) bool { return calls[actions[i]] > calls[actions[j]] })
	var parts []string
	for _, a := range actions {
		parts = append(parts, fmt.Sprintf("%s %.2f", a, float64(calls[a])/float64(n)))
	}
	return strings.Join(parts, ", ")
}

// peakRSS is the process's high-water resident set (VmHWM), in bytes.
func peakRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func machine() string {
	cpus := "?"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpus = strconv.Itoa(strings.Count(string(data), "processor\t:")) + " cores"
	}
	return cpus + ", kumo and one kube-apiserver on the same machine"
}
