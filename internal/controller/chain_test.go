package controller_test

import (
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/controller"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

var _ = Describe("Chain summary", Label("chain", "diagnose"), func() {
	It("summarises each ready profile's chain from what the operator reads, and follows default-editor's annotation without calling IAM", func() {
		cluster := testCluster()
		name := "chain-" + cluster
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: name, Owner: owner("c"),
				InlinePolicies: []v1alpha1.InlinePolicy{{Name: "s3", Document: inlineDoc("s3:GetObject")}}}}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(cr) })
		cr = eventuallyReady(cluster)
		roleARN := profileStatus(cr, name).RoleARN

		chain := func() string {
			got := &v1alpha1.AwsKubeflowProfiles{}
			if err := k8s.Get(ctx, client.ObjectKey{Name: cluster}, got); err != nil {
				return err.Error()
			}
			st := profileStatus(got, name)
			return string(st.Chain) + " " + st.ChainBrokenLink
		}
		By("before Kubeflow created default-editor, the service account link is broken")
		Eventually(chain).Should(Equal("Broken Service account"))

		readsBefore, writesBefore := callsAbout(aws_.Recorder, []string{roleARN})
		By("default-editor annotated with the profile's role, as Kubeflow's plugin does: whole, through the watch")
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: desired.KubeflowEditorServiceAccount,
			Annotations: map[string]string{desired.RoleARNAnnotation: roleARN}}}
		Expect(k8s.Create(ctx, sa)).To(Succeed())
		Eventually(chain).Should(Equal("Whole "))
		got := &v1alpha1.AwsKubeflowProfiles{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, got)).To(Succeed())
		Expect(got.Status.ChainsWhole).To(Equal("1/1"), "for kubectl get's Chains column")

		By("annotated with another role: broken again")
		sa.Annotations[desired.RoleARNAnnotation] = "arn:aws:iam::123456789012:role/someone-else"
		Expect(k8s.Update(ctx, sa)).To(Succeed())
		Eventually(chain).Should(Equal("Broken Service account"))

		reads, writes := callsAbout(aws_.Recorder, []string{roleARN})
		Expect(reads-readsBefore).To(BeZero(), "the summary reads nothing more of IAM")
		Expect(writes - writesBefore).To(BeZero())

		By("the OIDC provider's client ID gone, as its next read finds it: broken at the provider, in one Warning")
		r := newReconciler(k8s, apiReader, time.Hour)
		rec := events.NewFakeRecorder(100)
		r.Recorder = rec
		sa.Annotations[desired.RoleARNAnnotation] = roleARN
		Expect(k8s.Update(ctx, sa)).To(Succeed())
		Eventually(chain).Should(Equal("Whole "))
		replaceProvider(cluster, nil)
		DeferCleanup(func() { replaceProvider(cluster, []string{policy.Audience}) })
		Eventually(func(g Gomega) {
			_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: cluster}})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(chain()).To(Equal("Broken IAM OIDC provider"))
		}).Should(Succeed())
		Eventually(rec.Events).Should(Receive(Equal("Warning " + controller.ChainBrokenReason + " The credential chain of 1 profile (" + name +
			": IAM OIDC provider) is broken (profile: first broken link); `kubectl awskubeflowprofiles diagnose -n <profile>` says what fixes it")))
	})
})

// replaceProvider gives the cluster's OIDC provider these client IDs. kumo
// has no call to change them, so it is deleted and created again, which
// keeps its ARN.
func replaceProvider(cluster string, clientIDs []string) {
	GinkgoHelper()
	arn := aws.String(providerARNOf(cluster))
	have, err := aws_.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: arn})
	Expect(err).NotTo(HaveOccurred())
	// The manager may recreate the provider in between; the next try
	// deletes that one.
	Eventually(func() error {
		_, err := aws_.IAM.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: arn})
		if err != nil && !strings.Contains(err.Error(), "NoSuchEntity") {
			return err
		}
		_, err = aws_.IAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
			Url: aws.String(issuerOf(cluster)), ClientIDList: clientIDs, ThumbprintList: have.ThumbprintList,
		})
		return err
	}).Should(Succeed())
}
