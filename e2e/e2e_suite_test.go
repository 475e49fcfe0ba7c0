// Package e2e is the end-to-end suite: the same specs run on every target
// (E2E_TARGET=local, kind or eks) and prove that a profile's notebook gets
// exactly that profile's AWS credentials. Run it with
// `make test-e2e E2E_TARGET=<target>`; see e2e/README.md.
package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/e2e/framework"
)

var (
	target framework.Target
	env    *framework.Env
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "AwsKubeflowProfiles e2e", Label("e2e"))
}

var _ = BeforeSuite(func(ctx SpecContext) {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter)))
	SetDefaultEventuallyTimeout(2 * time.Minute)
	SetDefaultEventuallyPollingInterval(500 * time.Millisecond)
	var err error
	target, err = framework.New()
	Expect(err).NotTo(HaveOccurred())
	if reason := target.Unavailable(ctx); reason != "" {
		skipTarget(reason)
	}
	By("starting the " + target.Name() + " target")
	env, err = target.Start(ctx)
	DeferCleanup(func(ctx SpecContext) {
		if anySpecFailed && env != nil && env.CollectLogs != nil {
			dir := filepath.Join(env.Artifacts, "failure-logs")
			By("a spec failed: collecting the cluster's and the components' logs into " + dir)
			if err := env.CollectLogs(ctx, dir); err != nil {
				GinkgoWriter.Printf("collecting logs: %v\n", err)
			}
		}
		By("stopping the " + target.Name() + " target")
		Expect(target.Stop(ctx)).To(Succeed())
	}, NodeTimeout(10*time.Minute))
	if unavailable := (*framework.UnavailableError)(nil); errors.As(err, &unavailable) {
		skipTarget(unavailable.Reason)
	}
	Expect(err).NotTo(HaveOccurred())
	Expect(v1alpha1.AddToScheme(env.Kube.Resources().GetScheme())).To(Succeed())
	GinkgoWriter.Printf("target %s: cluster %s, artifacts in %s\n", target.Name(), env.Cluster.Name, env.Artifacts)
}, NodeTimeout(45*time.Minute)) // kind with the OLM install: a cluster, images built from source, OLM

// skipTarget skips the run on a target this machine cannot provide, or
// fails it where E2E_REQUIRE_TARGET says the run exists to test that target
// (the kind and EKS workflows), so a workflow never passes having tested
// nothing.
func skipTarget(reason string) {
	if os.Getenv("E2E_REQUIRE_TARGET") != "" {
		Fail(reason + " (E2E_REQUIRE_TARGET is set, so this fails instead of skipping)")
	}
	Skip(reason)
}

// Every spec runs on the targets its labels name, and only where the target
// has the capabilities its needs: labels ask for; otherwise it is skipped
// with the reason, never passed silently.
var _ = BeforeEach(func() {
	if reason := framework.SkipReason(target, CurrentSpecReport().Labels()); reason != "" {
		Skip(reason)
	}
})

// anySpecFailed makes the suite keep the cluster's logs before it stops the
// target.
var anySpecFailed bool

// ReportAfterEach sees failures of a spec's cleanups and of AfterAll too.
var _ = ReportAfterEach(func(report SpecReport) {
	if report.Failed() {
		anySpecFailed = true
	}
})

var _ = AfterEach(func() {
	if CurrentSpecReport().Failed() && env != nil && env.Logs != nil {
		GinkgoWriter.Printf("operator log (tail):\n%s\n", env.Logs())
	}
})
