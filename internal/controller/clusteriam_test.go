package controller_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/controller"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

var clusterSeq atomic.Int64

// testCluster is a cluster name no other spec uses: kumo's state is shared
// by the whole test process.
func testCluster() string {
	return fmt.Sprintf("c%d-%d", GinkgoParallelProcess(), clusterSeq.Add(1))
}

func issuerOf(cluster string) string { return "https://oidc.eks.us-west-2.amazonaws.com/id/" + cluster }

func providerARNOf(cluster string) string {
	return "arn:aws:iam::" + awsiamtest.AccountID + ":oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/" + cluster
}

// newCR is an AwsKubeflowProfiles for a fresh cluster, with the defaults the
// API server would fill in left to the API server.
func newCR(cluster string, mutate ...func(*v1alpha1.AwsKubeflowProfiles)) *v1alpha1.AwsKubeflowProfiles {
	cr := &v1alpha1.AwsKubeflowProfiles{
		ObjectMeta: metav1.ObjectMeta{Name: cluster},
		Spec: v1alpha1.AwsKubeflowProfilesSpec{
			Cluster: v1alpha1.ClusterSpec{
				Name: cluster, Region: "us-west-2", AccountID: awsiamtest.AccountID, OIDCIssuerURL: issuerOf(cluster),
			},
			ProfileController: v1alpha1.ProfileControllerSpec{
				ServiceAccount: v1alpha1.ObjectReference{Namespace: "kubeflow", Name: "pc-" + cluster},
				PolicyName:     "kf-profile-controller-policy-" + cluster,
				Deployment:     v1alpha1.ObjectReference{Namespace: "kubeflow", Name: "profiles-" + cluster},
			},
		},
	}
	for _, m := range mutate {
		m(cr)
	}
	return cr
}

// expectedControllerPolicy is written out here rather than built with the
// code under test: the profile controller may read roles and edit their
// trust under the cluster's role path, and nothing else.
func expectedControllerPolicy(cluster string) policy.Document {
	doc, err := policy.Parse(fmt.Sprintf(`{
	  "Version": "2012-10-17",
	  "Statement": [{
	    "Sid": "EditProfileRoleTrust",
	    "Effect": "Allow",
	    "Action": ["iam:UpdateAssumeRolePolicy", "iam:GetRole"],
	    "Resource": "arn:aws:iam::%s:role/kubeflow/%s/*",
	    "Condition": {"StringEqualsIfExists": {"aws:ResourceTag/kubeflow.aws/cluster": "%s"}}
	  }]
	}`, awsiamtest.AccountID, cluster, cluster))
	Expect(err).NotTo(HaveOccurred())
	return doc
}

// expectedTrust admits exactly one service account with the STS audience.
func expectedTrust(cluster, namespace, sa string) policy.Document {
	doc, err := policy.Parse(fmt.Sprintf(`{
	  "Version": "2012-10-17",
	  "Statement": [{
	    "Effect": "Allow",
	    "Principal": {"Federated": "%s"},
	    "Action": "sts:AssumeRoleWithWebIdentity",
	    "Condition": {"StringEquals": {
	      "oidc.eks.us-west-2.amazonaws.com/id/%s:aud": "sts.amazonaws.com",
	      "oidc.eks.us-west-2.amazonaws.com/id/%s:sub": "system:serviceaccount:%s:%s"
	    }}
	  }]
	}`, providerARNOf(cluster), cluster, cluster, namespace, sa))
	Expect(err).NotTo(HaveOccurred())
	return doc
}

func roleTrust(name string) policy.Document {
	GinkgoHelper()
	doc, err := awsiamtest.RoleTrust(ctx, aws_.IAM, name)
	Expect(err).NotTo(HaveOccurred())
	return doc
}

func attachedPolicies(role string) []string {
	GinkgoHelper()
	arns, err := awsiamtest.AttachedPolicyARNs(ctx, aws_.IAM, role)
	Expect(err).NotTo(HaveOccurred())
	return arns
}

func serviceAccount(namespace, name string) *corev1.ServiceAccount {
	GinkgoHelper()
	sa := &corev1.ServiceAccount{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, sa)).To(Succeed())
	return sa
}

func controllerRoleName(cluster string) string { return "kf-profile-controller-" + cluster + "-role" }

// staleReader serves one object from a copy taken earlier, as a lagging
// cache does, and everything else from the API server.
type staleReader struct {
	client.Client
	stale *v1alpha1.AwsKubeflowProfiles
}

func (c staleReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if cr, ok := obj.(*v1alpha1.AwsKubeflowProfiles); ok && key.Name == c.stale.Name {
		c.stale.DeepCopyInto(cr)
		return nil
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func deleteAndWait(cr *v1alpha1.AwsKubeflowProfiles) {
	GinkgoHelper()
	Expect(k8s.Delete(ctx, cr)).To(Succeed())
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(cr), &v1alpha1.AwsKubeflowProfiles{}))
	}).Should(BeTrue(), "the finalizer should be removed once the deletion policy is carried out")
}

var _ = Describe("Cluster-level IAM", Label("oidc", "controller-irsa"), func() {
	It("creates the OIDC provider, the scoped policy, the controller role with exact trust, the attachment and the annotation", Label("invariant:least-privilege"), func() {
		cluster := testCluster()
		Expect(k8s.Create(ctx, newCR(cluster))).To(Succeed())
		cr := eventuallyReady(cluster)

		By("status names what was created and every condition is current")
		policyARN := "arn:aws:iam::" + awsiamtest.AccountID + ":policy/kf-profile-controller-policy-" + cluster
		roleARN := "arn:aws:iam::" + awsiamtest.AccountID + ":role/" + controllerRoleName(cluster)
		Expect(cr.Status.OIDCProvider).To(Equal(v1alpha1.IAMResourceStatus{ARN: providerARNOf(cluster), Ownership: v1alpha1.OwnershipCreated}))
		Expect(cr.Status.ProfileController.Policy).To(Equal(v1alpha1.IAMResourceStatus{ARN: policyARN, Ownership: v1alpha1.OwnershipCreated}))
		Expect(cr.Status.ProfileController.Role).To(Equal(v1alpha1.IAMResourceStatus{ARN: roleARN, Ownership: v1alpha1.OwnershipCreated}))
		for _, c := range cr.Status.Conditions {
			Expect(c.ObservedGeneration).To(Equal(cr.Generation), "condition %s", c.Type)
		}
		for _, t := range []string{v1alpha1.OIDCProviderReadyCondition, v1alpha1.ControllerIRSAReadyCondition} {
			Expect(condition(cr, t).Status).To(Equal(metav1.ConditionTrue), t)
		}
		Expect(meta_absent(cr, v1alpha1.StalledCondition, v1alpha1.ReconcilingCondition)).To(BeTrue())

		By("the OIDC provider trusts the STS audience and carries the ownership tags")
		provider, err := aws_.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARNOf(cluster))})
		Expect(err).NotTo(HaveOccurred())
		Expect(provider.ClientIDList).To(ConsistOf("sts.amazonaws.com"))

		By("the policy document sent to IAM is the scoped one (kumo cannot return documents)")
		creates := aws_.Recorder.Matching(func(c awsiamtest.Call) bool {
			return c.Action == "CreatePolicy" && c.Params.Get("PolicyName") == "kf-profile-controller-policy-"+cluster
		})
		Expect(creates).To(HaveLen(1))
		sent, err := policy.Parse(creates[0].Params.Get("PolicyDocument"))
		Expect(err).NotTo(HaveOccurred())
		Expect(policy.Equal(sent, expectedControllerPolicy(cluster))).To(BeTrue(), "sent %s", sent.Marshal())
		pol, err := aws_.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
		Expect(err).NotTo(HaveOccurred())
		Expect(pol.Policy.Tags).To(ContainElement(iamtypes.Tag{Key: aws.String("kubeflow.aws/cluster"), Value: aws.String(cluster)}))

		By("the role trusts exactly the controller's service account and has the policy attached")
		Expect(policy.Equal(roleTrust(controllerRoleName(cluster)), expectedTrust(cluster, "kubeflow", "pc-"+cluster))).To(BeTrue())
		Expect(attachedPolicies(controllerRoleName(cluster))).To(ConsistOf(policyARN))

		By("the service account is created with the annotation")
		sa := serviceAccount("kubeflow", "pc-"+cluster)
		Expect(sa.Annotations).To(HaveKeyWithValue(controller.RoleARNAnnotation, roleARN))
	})

	It("refuses an account other than the credentials' before any IAM write, and says which differs", Label("invariant:bad-input"), func() {
		cluster := testCluster()
		aws_.Recorder.Reset()
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.AccountID = "210987654321" })
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			c := condition(cr, v1alpha1.StalledCondition)
			g.Expect(c.Reason).To(Equal(v1alpha1.InvalidSpecReason))
			g.Expect(c.Message).To(ContainSubstring("spec.cluster.accountID is 210987654321, but the operator's AWS credentials are in account " + awsiamtest.AccountID))
		}).Should(Succeed())
		Expect(aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Mentions(cluster) })).To(BeEmpty(), "nothing reached IAM")
	})

	It("refuses an issuer other than the one EKS reports for the cluster, and says which differs", Label("invariant:bad-input"), func() {
		cluster := testCluster()
		reported, err := aws_.CreateCluster(ctx, cluster)
		Expect(err).NotTo(HaveOccurred())
		aws_.Recorder.Reset()
		cr := newCR(cluster)
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			c := condition(cr, v1alpha1.StalledCondition)
			g.Expect(c.Reason).To(Equal(v1alpha1.InvalidSpecReason))
			g.Expect(c.Message).To(ContainSubstring("spec.cluster.oidcIssuerURL is " + issuerOf(cluster) + ", but EKS reports " + reported))
		}).Should(Succeed())
		Expect(aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Mentions(cluster) })).To(BeEmpty(), "nothing reached IAM")

		By("the issuer EKS reports, as its discovery document writes it, is accepted")
		deleteAndWait(cr)
		cr = newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.OIDCIssuerURL = reported + "/" })
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		cr = eventuallyReady(cluster)
		Expect(cr.Status.OIDCIssuerURL).To(Equal(reported))
	})

	It("names the profile controller's policy for the cluster by default, so two clusters in one account both converge", func() {
		one, two := testCluster(), testCluster()
		for _, cluster := range []string{one, two} {
			Expect(k8s.Create(ctx, newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.ProfileController.PolicyName = "" }))).To(Succeed())
		}
		for _, cluster := range []string{one, two} {
			cr := eventuallyReady(cluster)
			Expect(cr.Status.ProfileController.Policy.ARN).To(Equal("arn:aws:iam::" + awsiamtest.AccountID + ":policy/kf-profile-controller-" + cluster + "-policy"))
		}
	})

	It("keeps the once-shared kf-profile-controller-policy for a cluster that already uses it", Label("invariant:minimal-calls"), func() {
		cluster := testCluster()
		legacy := "arn:aws:iam::" + awsiamtest.AccountID + ":policy/kf-profile-controller-policy"
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.ProfileController.PolicyName = "kf-profile-controller-policy"
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		cr = eventuallyReady(cluster)
		Expect(cr.Status.ProfileController.Policy.ARN).To(Equal(legacy))

		By("leaving the field to the default does not move the cluster to a new policy")
		aws_.Recorder.Reset()
		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.ProfileController.PolicyName = "" })
		cr = eventuallyReady(cluster)
		Expect(cr.Status.ProfileController.Policy.ARN).To(Equal(legacy))
		Expect(attachedPolicies(controllerRoleName(cluster))).To(ConsistOf(legacy))
		Expect(aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Action == "CreatePolicy" })).To(BeEmpty())
		deleteAndWait(cr)
	})

	It("never lets a pass that read a stale copy overwrite the status of a newer generation", func() {
		cluster := testCluster()
		Expect(k8s.Create(ctx, newCR(cluster))).To(Succeed())
		stale := eventuallyReady(cluster)
		// As read while the operator was still writing the first status.
		stale.Status.ObservedGeneration = 0

		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.IAM.Tags = append(cr.Spec.IAM.Tags, v1alpha1.Tag{Key: "team", Value: "ml"})
		})
		fresh := eventuallyReady(cluster)
		Expect(fresh.Generation).To(BeNumerically(">", stale.Generation))

		By("a pass whose cache still holds the old generation computes its status from it")
		r := newReconciler(staleReader{Client: k8s, stale: stale}, apiReader, time.Hour)
		result, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: cluster}})
		Expect(err).NotTo(HaveOccurred(), "a lost race is no error to report")
		Expect(result.RequeueAfter).To(BeNumerically("<", time.Second), "the status write is refused, and a pass with a fresh read follows at once")
		now := &v1alpha1.AwsKubeflowProfiles{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, now)).To(Succeed())
		Expect(now.Status.ObservedGeneration).To(Equal(fresh.Generation), "the newer status stands")
	})

	It("makes no IAM write on a second reconcile with nothing changed", Label("invariant:minimal-calls"), func() {
		cluster := testCluster()
		Expect(k8s.Create(ctx, newCR(cluster))).To(Succeed())
		eventuallyReady(cluster)

		// A reconciler with no memory of earlier verification, as after a
		// restart or a resync, must read everything and write nothing.
		r := newReconciler(k8s, apiReader, time.Hour)
		mentions := func(c awsiamtest.Call) bool { return c.Mentions(cluster) }
		aws_.Recorder.Reset()
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: cluster}})
		Expect(err).NotTo(HaveOccurred())
		calls := aws_.Recorder.Matching(mentions)
		Expect(awsiamtest.Actions(calls)).To(ContainElements("GetOpenIDConnectProvider", "GetPolicy", "GetRole", "ListAttachedRolePolicies"),
			"the reconcile should have verified IAM")
		writes := slices.DeleteFunc(calls, func(c awsiamtest.Call) bool { return !c.Write() })
		Expect(awsiamtest.Actions(writes)).To(BeEmpty())
		Expect(metricsWrites()).To(BeZero())

		By("and within the resync period it does not even read IAM again")
		aws_.Recorder.Reset()
		_, err = r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: cluster}})
		Expect(err).NotTo(HaveOccurred())
		Expect(aws_.Recorder.Matching(mentions)).To(BeEmpty())
	})

	It("moves the annotation and updates the trust when the service account changes", func() {
		cluster := testCluster()
		Expect(k8s.Create(ctx, newCR(cluster))).To(Succeed())
		cr := eventuallyReady(cluster)
		roleARN := cr.Status.ProfileController.Role.ARN

		cr.Spec.ProfileController.ServiceAccount.Name = "renamed-" + cluster
		Expect(k8s.Update(ctx, cr)).To(Succeed())
		eventuallyReady(cluster)

		Expect(policy.Equal(roleTrust(controllerRoleName(cluster)), expectedTrust(cluster, "kubeflow", "renamed-"+cluster))).To(BeTrue(),
			"the trust should name only the new service account")
		Expect(serviceAccount("kubeflow", "renamed-"+cluster).Annotations).To(HaveKeyWithValue(controller.RoleARNAnnotation, roleARN))
		Eventually(func() map[string]string {
			return serviceAccount("kubeflow", "pc-"+cluster).Annotations
		}).ShouldNot(HaveKey(controller.RoleARNAnnotation), "the old service account should lose the annotation")
	})

	It("restores the annotation when it is removed out of band", func() {
		cluster := testCluster()
		Expect(k8s.Create(ctx, newCR(cluster))).To(Succeed())
		cr := eventuallyReady(cluster)
		sa := serviceAccount("kubeflow", "pc-"+cluster)
		patch := client.MergeFrom(sa.DeepCopy())
		delete(sa.Annotations, controller.RoleARNAnnotation)
		Expect(k8s.Patch(ctx, sa, patch)).To(Succeed())
		Eventually(func() map[string]string {
			return serviceAccount("kubeflow", "pc-"+cluster).Annotations
		}).Should(HaveKeyWithValue(controller.RoleARNAnnotation, cr.Status.ProfileController.Role.ARN))
	})

	It("keeps the service account's other annotations and restarts the controller's pods once", func() {
		cluster := testCluster()
		Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
			Namespace: "kubeflow", Name: "pc-" + cluster, Annotations: map[string]string{"team": "platform"},
		}})).To(Succeed())
		dep := profilesDeployment("profiles-" + cluster)
		Expect(k8s.Create(ctx, dep)).To(Succeed())
		Expect(k8s.Create(ctx, newCR(cluster))).To(Succeed())
		cr := eventuallyReady(cluster)
		roleARN := cr.Status.ProfileController.Role.ARN

		Expect(serviceAccount("kubeflow", "pc-"+cluster).Annotations).To(Equal(map[string]string{
			"team": "platform", controller.RoleARNAnnotation: roleARN,
		}))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(dep), dep)).To(Succeed())
		Expect(dep.Spec.Template.Annotations).To(HaveKeyWithValue(controller.RestartAnnotation, roleARN))
		generation := dep.Generation

		By("another reconcile leaves the Deployment alone")
		r := newReconciler(k8s, apiReader, time.Hour)
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: cluster}})
		Expect(err).NotTo(HaveOccurred())
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(dep), dep)).To(Succeed())
		Expect(dep.Generation).To(Equal(generation))
	})

	It("refuses a policy of the same name that it did not create, and says how to fix it", Label("invariant:ownership", "invariant:bad-input"), func() {
		cluster := testCluster()
		name := "kf-profile-controller-policy-" + cluster
		_, err := aws_.IAM.CreatePolicy(ctx, &iam.CreatePolicyInput{
			PolicyName: aws.String(name), PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}`),
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(k8s.Create(ctx, newCR(cluster))).To(Succeed())
		Eventually(func(g Gomega) {
			cr := &v1alpha1.AwsKubeflowProfiles{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			c := condition(cr, v1alpha1.ControllerIRSAReadyCondition)
			g.Expect(c.Reason).To(Equal(v1alpha1.NotOwnedReason))
			g.Expect(c.Message).To(ContainSubstring("spec.profileController.policyName"))
			g.Expect(condition(cr, v1alpha1.StalledCondition).Status).To(Equal(metav1.ConditionTrue))
			g.Expect(condition(cr, v1alpha1.ReadyCondition).Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())
		reconcileNow(cluster)
		Expect(iamWritesFor(controllerRoleName(cluster))).To(BeEmpty(), "nothing should be created after a refusal")
		Expect(aws_.Recorder.Matching(func(c awsiamtest.Call) bool {
			return c.Write() && c.Params.Get("PolicyArn") == "arn:aws:iam::"+awsiamtest.AccountID+":policy/"+name
		})).To(BeEmpty(), "and the policy it does not own is left as it is")
	})

	It("refuses a second object for a cluster another object manages, and writes nothing for it", Label("invariant:ownership", "invariant:bad-input"), func() {
		cluster := testCluster()
		first := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: "a-" + cluster, Owner: v1alpha1.ProfileOwner{Name: "a@example.com"}}}
		})
		Expect(k8s.Create(ctx, first)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(first) })
		eventuallyReady(cluster)
		second := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Name = "second-" + cluster
			cr.Spec.ProfileController.RoleName = "pc2-" + cluster
			cr.Spec.ProfileController.ServiceAccount.Name = "pc2-" + cluster
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: "b-" + cluster, Owner: v1alpha1.ProfileOwner{Name: "b@example.com"}}}
		})
		Expect(k8s.Create(ctx, second)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(second) })
		Eventually(func(g Gomega) {
			cr := &v1alpha1.AwsKubeflowProfiles{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(second), cr)).To(Succeed())
			g.Expect(condition(cr, v1alpha1.StalledCondition).Status).To(Equal(metav1.ConditionTrue))
			g.Expect(condition(cr, v1alpha1.ReadyCondition).Message).To(ContainSubstring(cluster))
		}).Should(Succeed())
		reconcileNow(second.Name)
		Expect(iamWritesFor(second.Name)).To(BeEmpty(), "the second object writes nothing of its own")
		Expect(iamWritesFor("pc2-" + cluster)).To(BeEmpty())
		Expect(iamWritesFor(profileRoleName("b-"+cluster, cluster))).To(BeEmpty())
	})

	It("lets the object go, and leaves the role, when the role lost its ownership tags before deletion", Label("teardown", "invariant:ownership"), func() {
		cluster := testCluster()
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.DeletionPolicy.ClusterIAM = v1alpha1.DeletionPolicyDelete
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		eventuallyReady(cluster)
		// Someone else claims the role (kumo has no UntagRole, so the tag
		// is overwritten rather than removed). A role still marked as this
		// operator's for this cluster, but for an object that is gone, would
		// be taken over instead.
		_, err := aws_.IAM.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(controllerRoleName(cluster)),
			Tags: []iamtypes.Tag{{Key: aws.String("kubeflow.aws/managed-by"), Value: aws.String("someone-else")}}})
		Expect(err).NotTo(HaveOccurred())

		deleteAndWait(cr)
		_, err = getRole(controllerRoleName(cluster))
		Expect(err).NotTo(HaveOccurred(), "a role the operator no longer owns is not deleted")
		Expect(attachedPolicies(controllerRoleName(cluster))).To(HaveLen(1),
			"nor changed: its policy stays attached, and so the policy stays too")
		_, err = aws_.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARNOf(cluster))})
		Expect(err).To(MatchError(ContainSubstring("NoSuchEntity")), "what it still owns is deleted")
	})

	It("refuses to manage a service account another AwsKubeflowProfiles manages", Label("invariant:ownership"), func() {
		first, second := testCluster(), testCluster()
		Expect(k8s.Create(ctx, newCR(first))).To(Succeed())
		eventuallyReady(first)
		Expect(k8s.Create(ctx, newCR(second, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.ProfileController.ServiceAccount.Name = "pc-" + first
		}))).To(Succeed())
		Eventually(func(g Gomega) {
			cr := &v1alpha1.AwsKubeflowProfiles{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: second}, cr)).To(Succeed())
			c := condition(cr, v1alpha1.ControllerIRSAReadyCondition)
			g.Expect(c.Reason).To(Equal(v1alpha1.NotOwnedReason))
			g.Expect(c.Message).To(ContainSubstring("managed by AwsKubeflowProfiles " + first))
		}).Should(Succeed())
		Expect(serviceAccount("kubeflow", "pc-"+first).Annotations).To(HaveKeyWithValue(controller.RoleARNAnnotation,
			"arn:aws:iam::"+awsiamtest.AccountID+":role/"+controllerRoleName(first)), "the first object's annotation stands")
	})

	It("keeps an OIDC provider another AwsKubeflowProfiles uses when deleting with the Delete policy", Label("teardown"), func() {
		first, second := testCluster(), testCluster()
		shared := func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Cluster.OIDCIssuerURL = issuerOf(first)
			cr.Spec.DeletionPolicy.ClusterIAM = v1alpha1.DeletionPolicyDelete
		}
		crA := newCR(first, shared)
		Expect(k8s.Create(ctx, crA)).To(Succeed())
		eventuallyReady(first)
		Expect(k8s.Create(ctx, newCR(second, shared))).To(Succeed())
		Expect(eventuallyReady(second).Status.OIDCProvider.Ownership).To(Equal(v1alpha1.OwnershipExternal))
		deleteAndWait(crA)
		_, err := aws_.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARNOf(first))})
		Expect(err).NotTo(HaveOccurred(), "the second object's roles trust it")
	})

	DescribeTable("deletion follows the deletion policy and never touches an OIDC provider it did not create",
		Label("teardown", "invariant:ownership"),
		func(policyName v1alpha1.DeletionPolicy, providerExists bool) {
			cluster := testCluster()
			var before *iam.GetOpenIDConnectProviderOutput
			if providerExists {
				_, err := aws_.IAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
					Url:            aws.String(issuerOf(cluster)),
					ClientIDList:   []string{"sts.amazonaws.com", "other-client"},
					ThumbprintList: []string{"9e99a48a9960b14926bb7f3b02e22da2b0ab7280"},
				})
				Expect(err).NotTo(HaveOccurred())
				before, err = aws_.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARNOf(cluster))})
				Expect(err).NotTo(HaveOccurred())
			}
			cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.DeletionPolicy.ClusterIAM = policyName })
			Expect(k8s.Create(ctx, cr)).To(Succeed())
			cr = eventuallyReady(cluster)
			wantOwnership := v1alpha1.OwnershipCreated
			if providerExists {
				wantOwnership = v1alpha1.OwnershipExternal
			}
			Expect(cr.Status.OIDCProvider.Ownership).To(Equal(wantOwnership))

			deleteAndWait(cr)

			_, roleErr := getRole(controllerRoleName(cluster))
			_, policyErr := aws_.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(cr.Status.ProfileController.Policy.ARN)})
			provider, providerErr := aws_.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARNOf(cluster))})
			if policyName == v1alpha1.DeletionPolicyDelete {
				Expect(roleErr).To(MatchError(ContainSubstring("NoSuchEntity")))
				Expect(policyErr).To(MatchError(ContainSubstring("NoSuchEntity")))
				Expect(apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: "kubeflow", Name: "pc-" + cluster}, &corev1.ServiceAccount{})) ||
					!hasKey(serviceAccount("kubeflow", "pc-"+cluster).Annotations, controller.RoleARNAnnotation)).To(BeTrue(),
					"the annotation should not point at a deleted role")
			} else {
				Expect(roleErr).NotTo(HaveOccurred())
				Expect(policyErr).NotTo(HaveOccurred())
			}
			switch {
			case providerExists:
				Expect(providerErr).NotTo(HaveOccurred())
				Expect(provider.ClientIDList).To(Equal(before.ClientIDList))
				Expect(provider.ThumbprintList).To(Equal(before.ThumbprintList))
				Expect(provider.Tags).To(Equal(before.Tags))
			case policyName == v1alpha1.DeletionPolicyDelete:
				Expect(providerErr).To(MatchError(ContainSubstring("NoSuchEntity")))
			default:
				Expect(providerErr).NotTo(HaveOccurred())
			}
		},
		Entry("Delete removes what the operator created", v1alpha1.DeletionPolicyDelete, false),
		Entry("Delete leaves a pre-existing OIDC provider as it was", v1alpha1.DeletionPolicyDelete, true),
		Entry("Retain, the default, deletes nothing in IAM", v1alpha1.DeletionPolicyRetain, false),
		Entry("Retain leaves a pre-existing OIDC provider as it was", v1alpha1.DeletionPolicyRetain, true),
	)
})

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

func meta_absent(cr *v1alpha1.AwsKubeflowProfiles, types ...string) bool {
	for _, t := range types {
		if condition(cr, t).Type != "" {
			return false
		}
	}
	return true
}

func metricsWrites() float64 {
	total := 0.0
	for _, res := range []string{"oidc_provider", "policy", "role", "service_account", "deployment", "profile"} {
		for _, action := range []string{"create", "update", "delete", "attach", "detach", "tag"} {
			total += counterValue(metrics.Writes().WithLabelValues(res, action))
		}
	}
	return total
}

func profilesDeployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kubeflow", Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: "kubeflow/profile-controller"}}},
			},
		},
	}
}

func counterValue(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }
