package controller_test

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

// A cluster where Kubeflow is installed after the operator: its own control
// plane, started without the Profile CRD, so that the suite's shared one
// keeps it.
var _ = Describe("Kubeflow installed after the operator", Label("profile"), func() {
	It("starts watching Profiles once their CRD appears, without a restart", func() {
		scheme := newScheme()
		utilruntime.Must(apiextensionsv1.AddToScheme(scheme))
		cfg := startControlPlane(scheme)
		c, err := client.New(cfg, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubeflow"}})).To(Succeed())

		startOperator(cfg, scheme)

		cluster := testCluster()
		name := "late-" + cluster
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: name, Owner: owner("l")}}
		})
		Expect(c.Create(ctx, cr)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(c.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			g.Expect(condition(cr, v1alpha1.ProfilesReadyCondition).Reason).To(Equal(v1alpha1.KubeflowMissingReason))
			g.Expect(condition(cr, v1alpha1.ControllerIRSAReadyCondition).Status).To(Equal(metav1.ConditionTrue), "the cluster-level IAM does not wait for Kubeflow")
		}).Should(Succeed())

		By("Kubeflow is installed")
		raw, err := os.ReadFile(filepath.Join("..", "..", "hack", "crds", "kubeflow.org_profiles.yaml"))
		Expect(err).NotTo(HaveOccurred())
		crd := &apiextensionsv1.CustomResourceDefinition{}
		Expect(yaml.Unmarshal(raw, crd)).To(Succeed())
		Expect(c.Create(ctx, crd)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(c.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			g.Expect(condition(cr, v1alpha1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))
		}, time.Minute).Should(Succeed(), "picked up by the operator that is already running")

		By("the Profile is watched: deleted by hand, it is back within seconds, not at the resync an hour away")
		p := desired.NewProfileObject()
		Expect(c.Get(ctx, client.ObjectKey{Name: name}, p)).To(Succeed())
		uid := p.GetUID()
		Expect(c.Delete(ctx, p)).To(Succeed())
		Eventually(func(g Gomega) {
			now := desired.NewProfileObject()
			g.Expect(c.Get(ctx, client.ObjectKey{Name: name}, now)).To(Succeed())
			g.Expect(now.GetUID()).NotTo(Equal(uid))
		}, 10*time.Second).Should(Succeed())
	})
})
