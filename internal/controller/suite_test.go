package controller_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/controller"
)

// The suite runs a real kube-apiserver and etcd (envtest), kumo in-process,
// and the controller in a manager, as it runs in a cluster.
var (
	ctx       context.Context
	cancel    context.CancelFunc
	cfg       *rest.Config
	k8s       client.Client
	apiReader client.Reader
	aws_      *awsiamtest.Env
	scheme    *runtime.Scheme
	recorder  *events.FakeRecorder
	metrics   *controller.Metrics
)

func TestController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller integration suite (envtest + kumo)")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		Fail("KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver and etcd into bin/k8s and points it there")
	}
	ctx, cancel = context.WithCancel(context.Background())
	DeferCleanup(func() { cancel() })

	scheme = newScheme()
	cfg = startControlPlane(scheme, filepath.Join("..", "..", "hack", "crds"))

	aws_ = awsiamtest.Start()
	DeferCleanup(aws_.Close)

	var err error
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	apiReader = k8s
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubeflow"}})).To(Succeed())

	recorder = startOperator(operatorRequests.wrap(cfg), scheme)
})

// operatorRequests counts the suite operator's requests to the API server.
var operatorRequests = &requestCounter{byPath: map[string]int{}}

// requestCounter counts requests by method and URL path, watches aside:
// what an operator reads from the API server instead of from its cache,
// and what it writes.
type requestCounter struct {
	mu     sync.Mutex
	byPath map[string]int
}

// wrap returns a copy of cfg whose requests c counts.
func (c *requestCounter) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Query().Get("watch") != "true" {
				c.mu.Lock()
				c.byPath[req.Method+" "+req.URL.Path]++
				c.mu.Unlock()
			}
			return next.RoundTrip(req)
		})
	})
	return cfg
}

// reads is the number of GET requests for path so far.
func (c *requestCounter) reads(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byPath[http.MethodGet+" "+path]
}

// writes is the number of requests for path so far that may change it.
func (c *requestCounter) writes(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		n += c.byPath[m+" "+path]
	}
	return n
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// newScheme knows the operator's kinds and Kubernetes' own.
func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// startControlPlane starts a kube-apiserver and etcd with the operator's
// CRDs and those in extraCRDs, stopped when the spec or suite ends.
func startControlPlane(scheme *runtime.Scheme, extraCRDs ...string) *rest.Config {
	GinkgoHelper()
	env := &envtest.Environment{
		CRDDirectoryPaths:     append([]string{filepath.Join("..", "..", "config", "crd", "bases")}, extraCRDs...),
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)
	return cfg
}

// startOperator runs the controller in a manager against the control plane
// at cfg, as it runs in a cluster, until the spec or suite that started it
// ends, and returns the recorder of its Events.
func startOperator(cfg *rest.Config, scheme *runtime.Scheme) *events.FakeRecorder {
	GinkgoHelper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controller.CacheOptions(controller.DefaultProfileControllerNamespace),
		Client:                 controller.ClientOptions(),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	rec := events.NewFakeRecorder(1000)
	r := newReconciler(mgr.GetClient(), mgr.GetAPIReader(), time.Hour)
	r.Recorder = rec
	Expect(r.SetupWithManager(mgr)).To(Succeed())
	mgrCtx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(stopped)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
	go drainEvents(mgrCtx, rec)
	// Cleanups run last-in first-out: the manager stops before the API
	// server that was started before it.
	DeferCleanup(func() {
		stop()
		<-stopped
	})
	return rec
}

// newReconciler builds a reconciler over kumo with fresh metrics and an
// empty record of verified IAM state, as after a restart of the operator.
func newReconciler(c client.Client, reader client.Reader, resync time.Duration) *controller.Reconciler {
	metrics = controller.NewMetrics(prometheus.NewRegistry())
	return &controller.Reconciler{
		Client:    c,
		APIReader: reader,
		IAM: awsiam.NewClient(aws_.IAM, aws_.STS, aws_.EKS, awsiam.NewMetrics(prometheus.NewRegistry()),
			awsiam.Options{RequestsPerSecond: 500, Burst: 500}),
		Metrics:            metrics,
		ResyncPeriod:       resync,
		ProfileConcurrency: 4,
		Clock:              clock.RealClock{},
		// Short, so specs see a teardown reported as stuck in seconds.
		ProfileDeletionPatience: 3 * time.Second,
	}
}

// reconcilerWithOwnRecorder is newReconciler over the kumo endpoint whose
// calls a recorder of its own records: other objects of the suite make
// calls too, which are not this reconciler's count.
func reconcilerWithOwnRecorder(endpoint string) (*controller.Reconciler, *awsiamtest.Recorder) {
	ownCfg, own := awsiamtest.RecordedConfig(endpoint)
	r := newReconciler(k8s, apiReader, time.Hour)
	r.IAM = awsiam.NewClient(iam.NewFromConfig(ownCfg), sts.NewFromConfig(ownCfg), eks.NewFromConfig(ownCfg),
		awsiam.NewMetrics(prometheus.NewRegistry()), awsiam.Options{RequestsPerSecond: 500, Burst: 500})
	return r, own
}

// operatorEvents are the Events the suite's operator sent, as the fake
// recorder writes them: "<type> <reason> <note>".
var operatorEvents struct {
	mu  sync.Mutex
	all []string
}

// eventsMentioning are the operator's Events so far whose text holds s.
func eventsMentioning(s string) []string {
	operatorEvents.mu.Lock()
	defer operatorEvents.mu.Unlock()
	var out []string
	for _, e := range operatorEvents.all {
		if strings.Contains(e, s) {
			out = append(out, e)
		}
	}
	return out
}

// drainEvents keeps the fake recorder from blocking, and keeps its Events
// for the specs that count them.
func drainEvents(ctx context.Context, r *events.FakeRecorder) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-r.Events:
			operatorEvents.mu.Lock()
			operatorEvents.all = append(operatorEvents.all, e)
			operatorEvents.mu.Unlock()
			GinkgoWriter.Println("event:", e)
		}
	}
}

// condition returns the condition of the given type, or an empty one.
func condition(cr *v1alpha1.AwsKubeflowProfiles, t string) metav1.Condition {
	if c := meta.FindStatusCondition(cr.Status.Conditions, t); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// eventuallyReady waits until the object is Ready for its current generation
// and returns it.
func eventuallyReady(name string) *v1alpha1.AwsKubeflowProfiles {
	GinkgoHelper()
	cr := &v1alpha1.AwsKubeflowProfiles{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, cr)).To(Succeed())
		ready := condition(cr, v1alpha1.ReadyCondition)
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "Ready: %s: %s", ready.Reason, ready.Message)
		g.Expect(ready.ObservedGeneration).To(Equal(cr.Generation))
		g.Expect(cr.Status.ObservedGeneration).To(Equal(cr.Generation))
	}).Should(Succeed())
	return cr
}

// getRole reads a role from kumo.
// roleName is the name of a role from its ARN, whatever its path.
func roleName(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

func getRole(name string) (*iam.GetRoleOutput, error) {
	return aws_.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
}
