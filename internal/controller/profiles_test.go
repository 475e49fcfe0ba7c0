package controller_test

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/kubeflowtest"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// kubeflowFinalizer is the finalizer Kubeflow's profile controller puts on a
// Profile; the specs add it themselves to stand in for that controller.
const kubeflowFinalizer = "profile-finalizer"

func createPolicy(name string) string {
	GinkgoHelper()
	out, err := aws_.IAM.CreatePolicy(ctx, &iam.CreatePolicyInput{
		PolicyName:     aws.String(name),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}`),
	})
	Expect(err).NotTo(HaveOccurred())
	return aws.ToString(out.Policy.Arn)
}

func inlineDoc(action string) apiextensionsv1.JSON {
	return apiextensionsv1.JSON{Raw: []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"` + action + `","Resource":"*"}]}`)}
}

func profileRoleName(profile, cluster string) string { return profile + "-" + cluster + "-role" }

func getProfile(name string) (*unstructured.Unstructured, error) {
	u := desired.NewProfileObject()
	err := k8s.Get(ctx, client.ObjectKey{Name: name}, u)
	return u, err
}

func inlinePolicies(role string) map[string]policy.Document {
	GinkgoHelper()
	names, err := aws_.IAM.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
	Expect(err).NotTo(HaveOccurred())
	out := map[string]policy.Document{}
	for _, n := range names.PolicyNames {
		p, err := aws_.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(n)})
		Expect(err).NotTo(HaveOccurred())
		doc, err := policy.Parse(aws.ToString(p.PolicyDocument))
		Expect(err).NotTo(HaveOccurred())
		out[n] = doc
	}
	return out
}

func profileStatus(cr *v1alpha1.AwsKubeflowProfiles, name string) v1alpha1.ProfileStatus {
	p, _ := cr.Status.Profile(name)
	return p
}

func nestedString(u *unstructured.Unstructured, fields ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, fields...)
	return s
}

func owner(name string) v1alpha1.ProfileOwner {
	return v1alpha1.ProfileOwner{Name: name + "@example.com"}
}

// updateCR applies mutate to the latest version of the object.
func updateCR(name string, mutate func(*v1alpha1.AwsKubeflowProfiles)) {
	GinkgoHelper()
	Eventually(func() error {
		cr := &v1alpha1.AwsKubeflowProfiles{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, cr); err != nil {
			return err
		}
		mutate(cr)
		return k8s.Update(ctx, cr)
	}).Should(Succeed())
}

var _ = Describe("Profiles", Label("profile-role", "profile"), func() {
	It("gives each of three profiles a role with exact trust and its permissions, and a Profile carrying the plugin", Label("invariant:least-privilege"), func() {
		cluster := testCluster()
		shared := createPolicy("shared-" + cluster)
		visionOnly := createPolicy("vision-" + cluster)
		quota := corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16")}}
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.ProfileDefaults.ManagedPolicyARNs = []string{shared}
			cr.Spec.ProfileDefaults.InlinePolicies = []v1alpha1.InlinePolicy{{Name: "logs", Document: inlineDoc("logs:PutLogEvents")}}
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{
				{Name: "vision-" + cluster, Owner: owner("alice"), ManagedPolicyARNs: []string{visionOnly}, ResourceQuotaSpec: &quota},
				{Name: "nlp-" + cluster, Owner: owner("bob"), InlinePolicies: []v1alpha1.InlinePolicy{{Name: "s3", Document: inlineDoc("s3:GetObject")}}},
				{Name: "speech-" + cluster, Owner: v1alpha1.ProfileOwner{Kind: "Group", Name: "speech"}},
			}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		cr = eventuallyReady(cluster)

		Expect(cr.Status.ProfilesReady).To(Equal("3/3"))
		Expect(condition(cr, v1alpha1.ProfileRolesReadyCondition).Message).To(Equal("3 of 3 profile roles ready."))
		Expect(condition(cr, v1alpha1.ProfilesReadyCondition).Status).To(Equal(metav1.ConditionTrue))
		wantAttached := map[string][]string{
			"vision-" + cluster: {shared, visionOnly},
			"nlp-" + cluster:    {shared},
			"speech-" + cluster: {shared},
		}
		wantInline := map[string][]string{
			"vision-" + cluster: {"logs"}, "nlp-" + cluster: {"logs", "s3"}, "speech-" + cluster: {"logs"},
		}
		for name := range wantAttached {
			role := profileRoleName(name, cluster)
			roleARN := "arn:aws:iam::" + awsiamtest.AccountID + ":role/kubeflow/" + cluster + "/" + role

			By("profile " + name + ": status")
			st := profileStatus(cr, name)
			Expect(st).To(MatchFields(IgnoreExtras, Fields{
				"Name": Equal(name), "State": Equal(v1alpha1.ProfileStateManaged), "RoleARN": Equal(roleARN),
				"Ready": BeTrue(), "Reason": Equal(v1alpha1.ReconciledReason), "Message": ContainSubstring("trusts only system:serviceaccount:" + name + ":default-editor"),
			}))

			By("profile " + name + ": the role trusts exactly its default-editor")
			Expect(policy.Equal(roleTrust(role), expectedTrust(cluster, name, "default-editor"))).To(BeTrue())
			Expect(attachedPolicies(role)).To(ConsistOf(wantAttached[name]))
			inline := inlinePolicies(role)
			Expect(inline).To(HaveLen(len(wantInline[name])))
			for _, n := range wantInline[name] {
				Expect(inline).To(HaveKey(n))
			}

			By("profile " + name + ": the Profile names the role through the plugin")
			p, err := getProfile(name)
			Expect(err).NotTo(HaveOccurred())
			Expect(p.GetLabels()).To(HaveKeyWithValue(desired.LabelOwner, cluster))
			arn, annotateOnly, found := desired.ProfilePlugin(p)
			Expect(found).To(BeTrue())
			Expect(arn).To(Equal(roleARN))
			Expect(annotateOnly).To(BeTrue(), "Kubeflow annotates default-editor but never writes the role's trust")
			Expect(p.GetOwnerReferences()).To(BeEmpty(), "garbage collection must never delete a Profile")
		}
		vision, _ := getProfile("vision-" + cluster)
		Expect(nestedString(vision, "spec", "resourceQuotaSpec", "hard", "cpu")).To(Equal("16"))
		speech, _ := getProfile("speech-" + cluster)
		Expect(nestedString(speech, "spec", "owner", "kind")).To(Equal("Group"))
	})

	It("gives a profile whose default role name is too long a valid, stable and unique one", func() {
		cluster := testCluster() + "-with-a-long-cluster-name"
		long := "data-science-team-" + strings.Repeat("x", 30)
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: long + "-a", Owner: owner("a")}, {Name: long + "-b", Owner: owner("b")}}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		cr = eventuallyReady(cluster)
		a, b := profileStatus(cr, long+"-a").RoleARN, profileStatus(cr, long+"-b").RoleARN
		Expect(a).NotTo(Equal(b))
		for _, arn := range []string{a, b} {
			name := roleName(arn)
			Expect(len(name)).To(BeNumerically("<=", 64))
			Expect(name).To(MatchRegexp(`^[\w+=,.@-]+$`))
			_, err := getRole(name)
			Expect(err).NotTo(HaveOccurred())
		}

		By("another reconcile, as after a restart, keeps the same names and creates nothing")
		aws_.Recorder.Reset()
		_, err := newReconciler(k8s, apiReader, time.Hour).Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: cluster}})
		Expect(err).NotTo(HaveOccurred())
		Expect(awsiamtest.Actions(aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Mentions(cluster) && c.Write() }))).To(BeEmpty())
		cr = eventuallyReady(cluster)
		Expect(profileStatus(cr, long+"-a").RoleARN).To(Equal(a))
	})

	It("keeps the Profile and the role of a removed profile by default, and stops Kubeflow from editing the role", Label("teardown", "invariant:no-data-loss"), func() {
		cluster := testCluster()
		keep, drop := "keep-"+cluster, "drop-"+cluster
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: keep, Owner: owner("a")}, {Name: drop, Owner: owner("b")}}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		eventuallyReady(cluster)

		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Profiles = cr.Spec.Profiles[:1] })
		cr = eventuallyReady(cluster)
		Eventually(func() v1alpha1.ProfileState {
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(cr), cr)).To(Succeed())
			return profileStatus(cr, drop).State
		}).Should(Equal(v1alpha1.ProfileStateRetained))
		Expect(profileStatus(cr, drop).Message).To(ContainSubstring("No longer managed"))
		Expect(cr.Status.ProfilesReady).To(Equal("1/1"))

		p, err := getProfile(drop)
		Expect(err).NotTo(HaveOccurred(), "the Profile, and with it the namespace and its notebooks, stays")
		Expect(p.GetDeletionTimestamp()).To(BeNil())
		_, annotateOnly, _ := desired.ProfilePlugin(p)
		Expect(annotateOnly).To(BeTrue(), "deleting the Profile later must not make Kubeflow rewrite the trust to aud-only")
		Expect(policy.Equal(roleTrust(profileRoleName(drop, cluster)), expectedTrust(cluster, drop, "default-editor"))).To(BeTrue(),
			"the retained role still trusts exactly its default-editor")
	})

	DescribeTable("closes a retained role whose Profile later goes, so the next owner of the namespace name does not inherit it", Label("teardown", "invariant:least-privilege", "invariant:no-data-loss"),
		func(nameTakenAtOnce bool) {
			cluster := testCluster()
			keep, drop := "keep-"+cluster, "drop-"+cluster
			role := profileRoleName(drop, cluster)
			id := policy.Identity{ProviderARN: providerARNOf(cluster), Issuer: issuerOf(cluster), Subject: "system:serviceaccount:" + drop + ":default-editor"}
			cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
				cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: keep, Owner: owner("a")}, {Name: drop, Owner: owner("b")}}
			})
			Expect(k8s.Create(ctx, cr)).To(Succeed())
			eventuallyReady(cluster)
			retain := func() {
				GinkgoHelper()
				updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Profiles = cr.Spec.Profiles[:1] })
				Eventually(func() v1alpha1.ProfileState {
					Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
					return profileStatus(cr, drop).State
				}).Should(Equal(v1alpha1.ProfileStateRetained))
				Expect(policy.Equal(roleTrust(role), expectedTrust(cluster, drop, "default-editor"))).To(BeTrue(), "while the Profile stays, its notebooks keep working")
			}
			closed := func() {
				GinkgoHelper()
				Eventually(func() bool { return id.AdmitsNoOne(roleTrust(role)) }, 15*time.Second).Should(BeTrue(),
					"not even the default-editor of a namespace created again under that name")
				Eventually(func(g Gomega) {
					g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
					st := profileStatus(cr, drop)
					g.Expect(st.State).To(Equal(v1alpha1.ProfileStateRetained))
					g.Expect(st.Reason).To(Equal(v1alpha1.ProfileGoneReason))
					g.Expect(st.Message).To(ContainSubstring("now admits no one"))
				}).Should(Succeed())
				_, err := getRole(role)
				Expect(err).NotTo(HaveOccurred(), "the deletion policy kept the role, and it is never deleted")
			}
			retain()

			By("the retained Profile is deleted by hand")
			p, err := getProfile(drop)
			Expect(err).NotTo(HaveOccurred())
			Expect(k8s.Delete(ctx, p)).To(Succeed())
			if nameTakenAtOnce {
				By("and someone else's Profile of that name appears at once, as Kubeflow's self-registration may make it")
				theirs := desired.NewProfileObject()
				theirs.SetName(drop)
				theirs.Object["spec"] = map[string]any{"owner": map[string]any{"kind": "User", "name": "mallory@example.com"}}
				Eventually(func() error { return k8s.Create(ctx, theirs) }).Should(Succeed())
				DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, theirs))).To(Succeed()) })
			}
			closed()

			By("a resync that finds it closed writes nothing")
			aws_.Recorder.Reset()
			_, err = newReconciler(k8s, apiReader, time.Hour).Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: cluster}})
			Expect(err).NotTo(HaveOccurred())
			Expect(aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Write() && c.Mentions(role) })).To(BeEmpty())
			if nameTakenAtOnce {
				return
			}

			By("added back to the spec, the profile trusts the namespace's default-editor again")
			updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
				cr.Spec.Profiles = append(cr.Spec.Profiles, v1alpha1.ProfileSpec{Name: drop, Owner: owner("b")})
			})
			cr = eventuallyReady(cluster)
			Expect(profileStatus(cr, drop).State).To(Equal(v1alpha1.ProfileStateManaged))
			Expect(policy.Equal(roleTrust(role), expectedTrust(cluster, drop, "default-editor"))).To(BeTrue())

			By("removed and deleted again within the resync period, it is closed again")
			retain()
			p, err = getProfile(drop)
			Expect(err).NotTo(HaveOccurred())
			Expect(k8s.Delete(ctx, p)).To(Succeed())
			closed()
		},
		Entry("the Profile is deleted", false),
		Entry("the Profile is deleted and its name taken at once by someone else's", true),
	)

	It("deletes a removed profile in order when asked: annotateOnly, then the Profile, and the role only once the Profile is gone", Label("teardown", "invariant:no-data-loss"), func() {
		cluster := testCluster()
		keep, drop := "keep-"+cluster, "drop-"+cluster
		policyARN := createPolicy("drop-" + cluster)
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.DeletionPolicy.Profiles = v1alpha1.DeletionPolicyDelete
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{
				{Name: keep, Owner: owner("a")},
				{Name: drop, Owner: owner("b"), ManagedPolicyARNs: []string{policyARN}, InlinePolicies: []v1alpha1.InlinePolicy{{Name: "s3", Document: inlineDoc("s3:*")}}},
			}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		eventuallyReady(cluster)
		role := profileRoleName(drop, cluster)

		By("standing in for Kubeflow's profile controller, which holds a finalizer on its Profiles")
		p, err := getProfile(drop)
		Expect(err).NotTo(HaveOccurred())
		controllerutil.AddFinalizer(p, kubeflowFinalizer)
		Expect(k8s.Update(ctx, p)).To(Succeed())

		aws_.Recorder.Reset()
		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Profiles = cr.Spec.Profiles[:1] })

		By("the Profile is deleted only after its plugin was set to annotateOnly")
		Eventually(func(g Gomega) {
			p, err = getProfile(drop)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.GetDeletionTimestamp()).NotTo(BeNil())
		}).Should(Succeed())
		_, annotateOnly, _ := desired.ProfilePlugin(p)
		Expect(annotateOnly).To(BeTrue(), "the object Kubeflow sees with a deletion timestamp already says annotateOnly")

		By("while the Profile exists, its role and permissions are untouched")
		cr = &v1alpha1.AwsKubeflowProfiles{}
		Eventually(func() v1alpha1.ProfileState {
			Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			return profileStatus(cr, drop).State
		}).Should(Equal(v1alpha1.ProfileStateDeleting))
		Expect(profileStatus(cr, drop).Message).To(ContainSubstring("Waiting for Kubeflow Profile"))
		_, err = getRole(role)
		Expect(err).NotTo(HaveOccurred())
		Expect(attachedPolicies(role)).To(ConsistOf(policyARN))
		Expect(aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Mentions(role) && c.Write() })).To(BeEmpty())

		By("once Kubeflow lets the Profile go, the role is detached, emptied and deleted")
		controllerutil.RemoveFinalizer(p, kubeflowFinalizer)
		Expect(k8s.Update(ctx, p)).To(Succeed())
		Eventually(func() error { _, err := getRole(role); return err }).Should(MatchError(ContainSubstring("NoSuchEntity")))
		Expect(awsiamtest.Actions(aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Mentions(role) && c.Write() }))).To(
			Equal([]string{"DetachRolePolicy", "DeleteRolePolicy", "DeleteRole"}))
		cr = eventuallyReady(cluster)
		Eventually(func() []v1alpha1.ProfileStatus {
			Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			return cr.Status.Profiles
		}).Should(ConsistOf(HaveField("Name", keep)))
		_, err = getRole(profileRoleName(keep, cluster))
		Expect(err).NotTo(HaveOccurred(), "the other profile is untouched")
	})

	It("leaves a Profile it did not create alone, says why, and adopts it only when asked", Label("adoption", "invariant:ownership"), func() {
		cluster := testCluster()
		name := "theirs-" + cluster
		theirs := desired.NewProfileObject()
		theirs.SetName(name)
		theirs.Object["spec"] = map[string]any{"owner": map[string]any{"kind": "User", "name": "carol@example.com"}}
		Expect(k8s.Create(ctx, theirs)).To(Succeed())
		Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, theirs)).To(Succeed())

		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: name, Owner: owner("dave")}}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			st := profileStatus(cr, name)
			g.Expect(st.State).To(Equal(v1alpha1.ProfileStateNotOwned))
			g.Expect(st.Ready).To(BeFalse())
			g.Expect(st.Message).To(ContainSubstring("was not created by this operator"))
			g.Expect(st.Message).To(ContainSubstring("adoptExisting"))
			c := condition(cr, v1alpha1.ProfilesReadyCondition)
			g.Expect(c.Reason).To(Equal(v1alpha1.NotOwnedReason))
			g.Expect(condition(cr, v1alpha1.StalledCondition).Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
		now, err := getProfile(name)
		Expect(err).NotTo(HaveOccurred())
		Expect(now.GetResourceVersion()).To(Equal(theirs.GetResourceVersion()), "not modified")
		_, err = getRole(profileRoleName(name, cluster))
		Expect(err).To(HaveOccurred(), "no role is made for a Profile the operator may not point at it")

		By("with adoptExisting the Profile is taken over and marked adopted")
		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Profiles[0].AdoptExisting = true })
		cr = eventuallyReady(cluster)
		now, err = getProfile(name)
		Expect(err).NotTo(HaveOccurred())
		Expect(now.GetAnnotations()).To(HaveKeyWithValue(desired.AnnotationAdopted, "true"))
		Expect(nestedString(now, "spec", "owner", "name")).To(Equal("dave@example.com"))
		arn, _, _ := desired.ProfilePlugin(now)
		Expect(arn).To(Equal(profileStatus(cr, name).RoleARN))

		By("an adopted Profile survives even the Delete policy")
		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.DeletionPolicy.Profiles = v1alpha1.DeletionPolicyDelete
		})
		eventuallyReady(cluster)
		deleteAndWait(cr)
		now, err = getProfile(name)
		Expect(err).NotTo(HaveOccurred())
		Expect(now.GetDeletionTimestamp()).To(BeNil())
	})

	It("reports a profile over an IAM quota without calling IAM for it, and goes ahead with the others", Label("invariant:bad-input"), func() {
		cluster := testCluster()
		over, fine := "over-"+cluster, "fine-"+cluster
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.IAM.Quotas.ManagedPoliciesPerRole = 2
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{
				{Name: over, Owner: owner("o"), ManagedPolicyARNs: []string{
					"arn:aws:iam::123456789012:policy/a", "arn:aws:iam::123456789012:policy/b", "arn:aws:iam::123456789012:policy/c"}},
				{Name: fine, Owner: owner("f")},
			}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			st := profileStatus(cr, over)
			g.Expect(st.Reason).To(Equal(v1alpha1.InvalidSpecReason))
			g.Expect(st.Message).To(ContainSubstring("3 managed policies attached, more than the quota of 2"))
			g.Expect(st.Message).To(ContainSubstring("spec.iam.quotas.managedPoliciesPerRole"))
			g.Expect(profileStatus(cr, fine).Ready).To(BeTrue())
			g.Expect(cr.Status.ProfilesReady).To(Equal("1/2"))
			g.Expect(condition(cr, v1alpha1.StalledCondition).Reason).To(Equal(v1alpha1.InvalidSpecReason))
		}).Should(Succeed())
		Expect(aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Mentions(profileRoleName(over, cluster)) })).To(BeEmpty(),
			"nothing of the invalid profile reaches IAM")
		result, err := newReconciler(k8s, apiReader, time.Hour).Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: cluster}})
		Expect(err).NotTo(HaveOccurred(), "a stalled profile is no reason for controller-runtime to retry at once")
		Expect(result.RequeueAfter).To(Equal(time.Hour))
		Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
		Expect(condition(cr, v1alpha1.ProfilesReadyCondition).Reason).To(Equal(v1alpha1.BlockedReason))
		_, err = getProfile(over)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nor Kubernetes")
	})

	It("retries a failing profile on its own schedule while another waits for a human", Label("invariant:bad-input"), func() {
		cluster := testCluster()
		invalid, flaky := "invalid-"+cluster, "flaky-"+cluster
		release := aws_.Recorder.Inject(awsiamtest.Fault{Match: func(c awsiamtest.Call) bool {
			return c.Action == "CreateRole" && c.Params.Get("RoleName") == profileRoleName(flaky, cluster)
		}})
		DeferCleanup(release)
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.IAM.Quotas.ManagedPoliciesPerRole = 1
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{
				{Name: invalid, Owner: owner("i"), ManagedPolicyARNs: []string{
					"arn:aws:iam::123456789012:policy/a", "arn:aws:iam::123456789012:policy/b"}},
				{Name: flaky, Owner: owner("f")},
			}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			g.Expect(profileStatus(cr, invalid).Reason).To(Equal(v1alpha1.InvalidSpecReason))
			g.Expect(profileStatus(cr, flaky).Reason).To(Equal(v1alpha1.IAMErrorReason))
			g.Expect(condition(cr, v1alpha1.StalledCondition).Reason).To(Equal(v1alpha1.InvalidSpecReason))
			g.Expect(condition(cr, v1alpha1.ReconcilingCondition).Status).To(Equal(metav1.ConditionTrue), "the other profile is still converging")
		}).Should(Succeed())

		_, err := newReconciler(k8s, apiReader, time.Hour).Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: cluster}})
		Expect(err).To(MatchError(ContainSubstring("InjectedFault")),
			"the transient failure comes back with controller-runtime's backoff, not after the hour-long resync the invalid profile waits for")

		release()
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			g.Expect(profileStatus(cr, flaky).Ready).To(BeTrue())
		}, 15*time.Second).Should(Succeed())
	})

	It("writes nothing for a profile that names a managed policy IAM does not know, and reads each policy once", Label("invariant:bad-input", "invariant:minimal-calls"), func() {
		cluster := testCluster()
		missing := "arn:aws:iam::" + awsiamtest.AccountID + ":policy/missing-" + cluster
		a, b, fine := "a-"+cluster, "b-"+cluster, "fine-"+cluster
		aws_.Recorder.Reset()
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{
				{Name: a, Owner: owner("a"), ManagedPolicyARNs: []string{missing}},
				{Name: b, Owner: owner("b"), ManagedPolicyARNs: []string{missing}},
				{Name: fine, Owner: owner("f")},
			}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			for _, name := range []string{a, b} {
				st := profileStatus(cr, name)
				g.Expect(st.Reason).To(Equal(v1alpha1.InvalidSpecReason))
				g.Expect(st.Message).To(ContainSubstring("managed policy " + missing + " does not exist"))
			}
			g.Expect(profileStatus(cr, fine).Ready).To(BeTrue(), "the others go ahead")
		}).Should(Succeed())
		for _, name := range []string{a, b} {
			Expect(aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Mentions(profileRoleName(name, cluster)) })).To(BeEmpty(),
				"no role is created that would then fail to get its permissions")
			_, err := getProfile(name)
			Expect(apierrors.IsNotFound(err)).To(BeTrue())
		}
		Expect(aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Action == "GetPolicy" && c.Params.Get("PolicyArn") == missing })).To(HaveLen(1),
			"two profiles share the policy: it is read once")

		By("once the policy exists, the profiles converge")
		createPolicy("missing-" + cluster)
		_, err := newReconciler(k8s, apiReader, time.Hour).Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: cluster}})
		Expect(err).NotTo(HaveOccurred())
		for _, name := range []string{a, b} {
			Expect(attachedPolicies(profileRoleName(name, cluster))).To(ConsistOf(missing))
		}
	})

	It("never deletes a retained Profile later, even when the deletion policy becomes Delete", Label("teardown", "invariant:no-data-loss"), func() {
		cluster := testCluster()
		keep, kept := "keep-"+cluster, "kept-"+cluster
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: keep, Owner: owner("a")}, {Name: kept, Owner: owner("b")}}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		eventuallyReady(cluster)
		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Profiles = cr.Spec.Profiles[:1] })
		Eventually(func() v1alpha1.ProfileState {
			Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			return profileStatus(cr, kept).State
		}).Should(Equal(v1alpha1.ProfileStateRetained))

		By("switching the policy to Delete for future removals")
		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.DeletionPolicy = v1alpha1.DeletionPolicySpec{Profiles: v1alpha1.DeletionPolicyDelete, ClusterIAM: v1alpha1.DeletionPolicyDelete}
		})
		eventuallyReady(cluster)
		_, err := newReconciler(k8s, apiReader, time.Hour).Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: cluster}})
		Expect(err).NotTo(HaveOccurred())
		p, err := getProfile(kept)
		Expect(err).NotTo(HaveOccurred())
		Expect(p.GetDeletionTimestamp()).To(BeNil(), "the retained Profile is not judged again")

		By("deleting the object deletes what it manages, and still not the retained Profile or what it depends on")
		deleteAndWait(cr)
		_, err = getProfile(keep)
		Expect(apierrors.IsNotFound(err)).To(BeTrue())
		p, err = getProfile(kept)
		Expect(err).NotTo(HaveOccurred())
		Expect(p.GetDeletionTimestamp()).To(BeNil())
		_, err = getRole(profileRoleName(kept, cluster))
		Expect(err).NotTo(HaveOccurred())
		_, err = aws_.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARNOf(cluster))})
		Expect(err).NotTo(HaveOccurred(), "the retained role trusts it")

		By("the retained Profile is managed again when it returns to the spec")
		Expect(k8s.Create(ctx, newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: kept, Owner: owner("b")}}
		}))).To(Succeed())
		cr = eventuallyReady(cluster)
		Expect(profileStatus(cr, kept).State).To(Equal(v1alpha1.ProfileStateManaged))
		p, err = getProfile(kept)
		Expect(err).NotTo(HaveOccurred())
		Expect(p.GetAnnotations()).NotTo(HaveKey(desired.AnnotationRetained))
		_, annotateOnly, _ := desired.ProfilePlugin(p)
		Expect(annotateOnly).To(BeTrue())
	})

	// Kubeflow's finalizer, on a Profile that is not annotateOnly, rewrites
	// the role's trust to admit every service account of the cluster and
	// lets the Profile go in the same pass. A managed Profile is annotateOnly
	// from creation, so Kubeflow never does this to it; the specs make the
	// revoke themselves, with a mirror of the plugin's code, to show that
	// the operator still repairs the role before it reports the profile
	// ready, in either order of events. The repair is held back by a fault
	// at first, so the specs see what the operator reports while the trust
	// is open.
	DescribeTable("repairs a role's trust before reporting its profile ready again when the Profile is deleted by hand",
		Label("invariant:least-privilege", "invariant:coexistence"),
		func(revokeBeforeDelete bool) {
			cluster := testCluster()
			name := "gone-" + cluster
			role := profileRoleName(name, cluster)
			cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
				cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: name, Owner: owner("a")}}
			})
			Expect(k8s.Create(ctx, cr)).To(Succeed())
			eventuallyReady(cluster)
			p, err := getProfile(name)
			Expect(err).NotTo(HaveOccurred())
			_, annotateOnly, _ := desired.ProfilePlugin(p)
			Expect(annotateOnly).To(BeTrue(), "Kubeflow's plugin never writes the trust of a managed role")

			var release func()
			openTrust := func() {
				GinkgoHelper()
				out, err := getRole(role)
				Expect(err).NotTo(HaveOccurred())
				revoked, err := kubeflowtest.Revoke(aws.ToString(out.Role.AssumeRolePolicyDocument), name)
				Expect(err).NotTo(HaveOccurred())
				_, err = aws_.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(role), PolicyDocument: aws.String(revoked)})
				Expect(err).NotTo(HaveOccurred())
				release = aws_.Recorder.Inject(awsiamtest.Fault{Match: func(c awsiamtest.Call) bool {
					return c.Action == "UpdateAssumeRolePolicy" && c.Params.Get("RoleName") == role
				}})
				DeferCleanup(release)
			}
			if revokeBeforeDelete {
				By("the revoke lands and the Profile is gone at once, as Kubeflow's finalizer does it in one pass")
				openTrust()
				Expect(k8s.Delete(ctx, p)).To(Succeed())
			} else {
				By("the Profile is deleted and waits for Kubeflow's finalizer")
				controllerutil.AddFinalizer(p, kubeflowFinalizer)
				Expect(k8s.Update(ctx, p)).To(Succeed())
				aws_.Recorder.Reset()
				Expect(k8s.Delete(ctx, p)).To(Succeed())
				Eventually(func(g Gomega) {
					g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
					g.Expect(profileStatus(cr, name).Message).To(ContainSubstring("is being deleted"))
				}).Should(Succeed())
				Expect(aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Action == "GetRole" && c.Params.Get("RoleName") == role })).NotTo(BeEmpty(),
					"the operator read the role while the Profile terminated")
				By("then the revoke lands, and then the finalizer goes")
				openTrust()
				Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, p)).To(Succeed())
				controllerutil.RemoveFinalizer(p, kubeflowFinalizer)
				Expect(k8s.Update(ctx, p)).To(Succeed())
			}

			By("while the trust admits every service account, neither the profile nor the object is ready")
			notReady := func(g Gomega) {
				g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
				st := profileStatus(cr, name)
				g.Expect(st.Ready).To(BeFalse())
				g.Expect(st.Message).To(ContainSubstring("admits system:serviceaccount:kubeflow-aws-trust-probe:default-editor"))
				g.Expect(condition(cr, v1alpha1.ReadyCondition).Status).NotTo(Equal(metav1.ConditionTrue))
				g.Expect(condition(cr, v1alpha1.ProfileRolesReadyCondition).Status).NotTo(Equal(metav1.ConditionTrue))
			}
			Eventually(notReady).Should(Succeed())
			Consistently(notReady, 2*time.Second, 100*time.Millisecond).Should(Succeed())

			By("once IAM accepts the repair, the trust is exact within seconds, not a resync period")
			release()
			Eventually(func() bool { return policy.Equal(roleTrust(role), expectedTrust(cluster, name, "default-editor")) }, 15*time.Second).Should(BeTrue())
			cr = eventuallyReady(cluster)
			Expect(profileStatus(cr, name).Ready).To(BeTrue())
			p, err = getProfile(name)
			Expect(err).NotTo(HaveOccurred(), "the Profile is created again")
			_, annotateOnly, _ = desired.ProfilePlugin(p)
			Expect(annotateOnly).To(BeTrue())
		},
		Entry("the trust opens, then the Profile is deleted", true),
		Entry("the operator reads the role, then the revoke lands, then the finalizer goes", false),
	)

	It("adopts a role outside the role path only once told it may replace its trust, and keeps that trust itself", Label("adoption", "invariant:no-data-loss"), func() {
		cluster := testCluster()
		name, role := "legacy-"+cluster, "legacy-role-"+cluster
		_, err := aws_.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role),
			AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)})
		Expect(err).NotTo(HaveOccurred())
		aws_.Recorder.Reset()
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: name, Owner: owner("a"), RoleName: role, AdoptExisting: true}}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())

		By("what the adoption would remove is reported first, and nothing is written")
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			st := profileStatus(cr, name)
			g.Expect(st.Reason).To(Equal(v1alpha1.AdoptionWouldRemoveReason))
			g.Expect(st.Message).To(ContainSubstring("would remove its trust of Service ec2.amazonaws.com"))
			g.Expect(st.Message).To(ContainSubstring("removeUnlistedOnAdoption"))
		}).Should(Succeed())
		Expect(aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Write() && c.Params.Get("RoleName") == role })).To(BeEmpty())
		_, err = getProfile(name)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no Profile names a role it does not yet manage")

		By("told it may, the operator adopts the role and trusts exactly the profile's default-editor")
		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Profiles[0].RemoveUnlistedOnAdoption = true })
		cr = eventuallyReady(cluster)
		Expect(profileStatus(cr, name).RoleARN).To(Equal("arn:aws:iam::" + awsiamtest.AccountID + ":role/" + role))
		Expect(policy.Equal(roleTrust(role), expectedTrust(cluster, name, "default-editor"))).To(BeTrue())
		p, err := getProfile(name)
		Expect(err).NotTo(HaveOccurred())
		_, annotateOnly, _ := desired.ProfilePlugin(p)
		Expect(annotateOnly).To(BeTrue(), "the profile controller's policy covers only the role path, and the operator owns the trust")
	})

	It("refuses a Profile another object manages even when asked to adopt it, instead of flipping its owner", Label("adoption", "invariant:ownership", "invariant:bad-input"), func() {
		first, second := testCluster(), testCluster()
		name := "shared-" + first
		for _, cluster := range []string{first, second} {
			Expect(k8s.Create(ctx, newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
				cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: name, Owner: owner("a"), AdoptExisting: true}}
			}))).To(Succeed())
			if cluster == first {
				eventuallyReady(first)
			}
		}
		cr := &v1alpha1.AwsKubeflowProfiles{}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: second}, cr)).To(Succeed())
			st := profileStatus(cr, name)
			g.Expect(st.State).To(Equal(v1alpha1.ProfileStateNotOwned))
			g.Expect(st.Message).To(ContainSubstring("is managed by AwsKubeflowProfiles " + first + ", and a Profile has one owner"))
		}).Should(Succeed())
		Consistently(func(g Gomega) {
			p, err := getProfile(name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.GetLabels()).To(HaveKeyWithValue(desired.LabelOwner, first))
		}, 2*time.Second, 200*time.Millisecond).Should(Succeed())
		reconcileNow(second)
		Expect(iamWritesFor(profileRoleName(name, second))).To(BeEmpty(), "no role is made for a Profile the second object may not point at it")
	})

	It("takes over cleanly what a Retain deletion left when the object is recreated under another name", Label("teardown", "invariant:no-data-loss", "invariant:ownership"), func() {
		cluster := testCluster()
		name := "kept-" + cluster
		before := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: name, Owner: owner("a")}}
		})
		Expect(k8s.Create(ctx, before)).To(Succeed())
		eventuallyReady(cluster)
		deleteAndWait(before)

		after := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Name = "renamed-" + cluster
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: name, Owner: owner("a")}}
		})
		Expect(k8s.Create(ctx, after)).To(Succeed())
		cr := eventuallyReady(after.Name)
		Expect(profileStatus(cr, name).State).To(Equal(v1alpha1.ProfileStateManaged))
		for _, role := range []string{controllerRoleName(cluster), profileRoleName(name, cluster)} {
			out, err := getRole(role)
			Expect(err).NotTo(HaveOccurred())
			Expect(out.Role.Tags).To(ContainElement(iamtypes.Tag{Key: aws.String(desired.TagOwner), Value: aws.String(after.Name)}), "role %s", role)
		}
		p, err := getProfile(name)
		Expect(err).NotTo(HaveOccurred())
		Expect(p.GetLabels()).To(HaveKeyWithValue(desired.LabelOwner, after.Name))
		Expect(p.GetAnnotations()).NotTo(HaveKey(desired.AnnotationRetained))
		Expect(serviceAccount("kubeflow", "pc-"+cluster).Labels).To(HaveKeyWithValue(desired.LabelOwner, after.Name))
		deleteAndWait(cr)
	})

	It("makes IAM calls only for the profile whose policies change, among 50", Label("invariant:minimal-calls", "slow"), func() {
		cluster := testCluster()
		extra := createPolicy("extra-" + cluster)
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			for i := range 50 {
				cr.Spec.Profiles = append(cr.Spec.Profiles, v1alpha1.ProfileSpec{Name: fmt.Sprintf("p%02d-%s", i, cluster), Owner: owner(fmt.Sprint(i))})
			}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		cr = eventuallyReady(cluster)
		Expect(cr.Status.ProfilesReady).To(Equal("50/50"))

		changed := fmt.Sprintf("p17-%s", cluster)
		role := profileRoleName(changed, cluster)
		aws_.Recorder.Reset()
		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Profiles[17].ManagedPolicyARNs = []string{extra} })
		eventuallyReady(cluster)
		Eventually(func() []string { return attachedPolicies(role) }).Should(ConsistOf(extra))

		calls := aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Mentions(cluster) })
		Expect(calls).NotTo(BeEmpty())
		var elsewhere []string
		for _, c := range calls {
			if c.Action == "GetPolicy" && c.Params.Get("PolicyArn") == extra {
				continue // the policy the edit names is checked once, before it is attached
			}
			if !c.Mentions(role) {
				elsewhere = append(elsewhere, c.Action+" "+c.Params.Get("RoleName")+c.Params.Get("PolicyArn")+c.Params.Get("OpenIDConnectProviderArn"))
			}
		}
		Expect(elsewhere).To(BeEmpty(), "calls for other parts of the object")
		writes := slices.DeleteFunc(calls, func(c awsiamtest.Call) bool { return !c.Write() })
		Expect(awsiamtest.Actions(writes)).To(Equal([]string{"AttachRolePolicy"}))
	})

	It("sends one Event per kind of write a pass makes, naming ten and counting the rest, not one per write", Label("invariant:quiet"), func() {
		cluster := testCluster()
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			for i := range 12 {
				cr.Spec.Profiles = append(cr.Spec.Profiles, v1alpha1.ProfileSpec{Name: fmt.Sprintf("ev%02d-%s", i, cluster), Owner: owner(fmt.Sprint(i))})
			}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(cr) })
		Expect(eventuallyReady(cluster).Status.ProfilesReady).To(Equal("12/12"))
		// The profile controller's role is created in the same pass.
		for reason, writes := range map[string]int{"RoleCreated": 13, "ProfileCreated": 12} {
			var sent []string
			for _, e := range eventsMentioning("-" + cluster) {
				if strings.HasPrefix(e, "Normal "+reason+" ") {
					sent = append(sent, e)
				}
			}
			Expect(sent).To(HaveLen(1), reason)
			note := strings.TrimPrefix(sent[0], "Normal "+reason+" ")
			Expect(len(note)).To(BeNumerically("<=", 1024), reason)
			Expect(note).To(HavePrefix(fmt.Sprintf("%d writes: ", writes)), reason)
			named := strings.Count(note, "; ")
			Expect(named).To(BeNumerically(">=", 2), reason+": some named")
			Expect(note).To(HaveSuffix(fmt.Sprintf("; and %d more", writes-named)), reason)
		}
	})

	It("removes or changes a quota it created as the spec says, and leaves one someone edited since", Label("invariant:ownership"), func() {
		cluster := testCluster()
		name, changed, edited := "quota-"+cluster, "changed-"+cluster, "edited-"+cluster
		quota := corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}}
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{
				{Name: name, Owner: owner("q"), ResourceQuotaSpec: &quota},
				{Name: changed, Owner: owner("c"), ResourceQuotaSpec: &quota},
				{Name: edited, Owner: owner("e"), ResourceQuotaSpec: &quota},
			}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(cr) })
		eventuallyReady(cluster)
		hard := func(p string) map[string]any {
			GinkgoHelper()
			profile, err := getProfile(p)
			Expect(err).NotTo(HaveOccurred())
			h, found, _ := unstructured.NestedMap(profile.Object, "spec", "resourceQuotaSpec", "hard")
			if !found {
				return nil
			}
			return h
		}
		for _, p := range []string{name, changed, edited} {
			Expect(hard(p)).To(Equal(map[string]any{"cpu": "4"}))
		}
		By("an admin edits one Profile's quota by hand")
		u := desired.NewProfileObject()
		u.SetName(edited)
		Expect(k8s.Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"resourceQuotaSpec":{"hard":{"memory":"8Gi"}}}}`)),
			client.FieldOwner("kubectl-edit"))).To(Succeed())

		By("the spec drops two quotas and changes one: the operator's own follow, though it created rather than applied them; the edited one is theirs")
		memory := corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}
		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles[0].ResourceQuotaSpec = nil
			cr.Spec.Profiles[1].ResourceQuotaSpec = &memory
			cr.Spec.Profiles[2].ResourceQuotaSpec = nil
		})
		Eventually(func(g Gomega) {
			g.Expect(hard(name)).To(BeNil())
			g.Expect(hard(changed)).To(Equal(map[string]any{"memory": "2Gi"}))
		}).Should(Succeed())
		eventuallyReady(cluster)

		By("and no Profile is written again: a pass finds each as wanted")
		writes := func() int {
			n := 0
			for _, p := range []string{name, changed, edited} {
				n += operatorRequests.writes("/apis/kubeflow.org/v1/profiles/" + p)
			}
			return n
		}
		before := writes()
		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.IAM.Tags = append(cr.Spec.IAM.Tags, v1alpha1.Tag{Key: "pass", Value: "again"})
		})
		eventuallyReady(cluster)
		Consistently(writes).WithTimeout(2 * time.Second).Should(Equal(before))
		Expect(hard(edited)).To(Equal(map[string]any{"cpu": "4", "memory": "8Gi"}), "the edited quota, left whole")
		Expect(hard(changed)).To(Equal(map[string]any{"memory": "2Gi"}))
	})

	It("reads Profiles from its cache at each pass, not from the API server", Label("invariant:minimal-calls"), func() {
		cluster := testCluster()
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: "cached-" + cluster, Owner: owner("c")}}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(cr) })
		eventuallyReady(cluster)

		const profiles = "/apis/kubeflow.org/v1/profiles"
		before := operatorRequests.reads(profiles)
		By("a pass for an edit, which reads every Profile")
		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = append(cr.Spec.Profiles, v1alpha1.ProfileSpec{Name: "cached2-" + cluster, Owner: owner("d")})
		})
		Expect(eventuallyReady(cluster).Status.ProfilesReady).To(Equal("2/2"))
		Expect(operatorRequests.reads(profiles)-before).To(BeZero(), "lists of every Profile from the API server")
	})

	It("deletes every Profile and role it created when the object is deleted with the Delete policy", Label("teardown"), func() {
		cluster := testCluster()
		names := []string{"one-" + cluster, "two-" + cluster}
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.DeletionPolicy = v1alpha1.DeletionPolicySpec{Profiles: v1alpha1.DeletionPolicyDelete, ClusterIAM: v1alpha1.DeletionPolicyDelete}
			for _, n := range names {
				cr.Spec.Profiles = append(cr.Spec.Profiles, v1alpha1.ProfileSpec{Name: n, Owner: owner(n)})
			}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		cr = eventuallyReady(cluster)
		deleteAndWait(cr)
		for _, n := range names {
			_, err := getProfile(n)
			Expect(apierrors.IsNotFound(err)).To(BeTrue())
			_, err = getRole(profileRoleName(n, cluster))
			Expect(err).To(MatchError(ContainSubstring("NoSuchEntity")))
		}
		_, err := aws_.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARNOf(cluster))})
		Expect(err).To(MatchError(ContainSubstring("NoSuchEntity")), "no retained role trusts it any more")
	})

	DescribeTable("deletes, with the Delete policy, a role it created for a profile whose ARN never reached the status", Label("teardown", "invariant:ownership"),
		func(wipeStatus bool) {
			cluster := testCluster()
			failing := "failing-" + cluster
			role := profileRoleName(failing, cluster)
			policyARN := createPolicy("failing-" + cluster)
			release := aws_.Recorder.Inject(awsiamtest.Fault{Match: func(c awsiamtest.Call) bool {
				return c.Action == "AttachRolePolicy" && c.Params.Get("RoleName") == role
			}, Code: "AccessDenied", Status: 403})
			DeferCleanup(release)
			cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
				cr.Spec.DeletionPolicy = v1alpha1.DeletionPolicySpec{Profiles: v1alpha1.DeletionPolicyDelete, ClusterIAM: v1alpha1.DeletionPolicyDelete}
				cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: failing, Owner: owner("f"), ManagedPolicyARNs: []string{policyARN}}}
			})
			Expect(k8s.Create(ctx, cr)).To(Succeed())
			Eventually(func(g Gomega) {
				g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
				g.Expect(profileStatus(cr, failing).Reason).To(Equal(v1alpha1.AccessDeniedReason))
			}).Should(Succeed())
			Expect(profileStatus(cr, failing).RoleARN).To(BeEmpty(), "the role was created, but its ARN never reached the status")
			_, err := getRole(role)
			Expect(err).NotTo(HaveOccurred())
			if wipeStatus {
				// A stalled profile waits for the resync, so nothing writes
				// the status again before the deletion.
				cr.Status.Profiles = nil
				Expect(k8s.Status().Update(ctx, cr)).To(Succeed())
			}

			deleteAndWait(cr)
			_, err = getRole(role)
			Expect(err).To(MatchError(ContainSubstring("NoSuchEntity")), "found by its deterministic name and its ownership tags")
		},
		Entry("the status lists the profile without a role", false),
		Entry("the status does not list the profile at all", true),
	)

	Describe("a teardown with the Delete policy that cannot finish", Label("teardown", "invariant:no-data-loss"), func() {
		release := func(name string) {
			GinkgoHelper()
			Eventually(func() error {
				cr := &v1alpha1.AwsKubeflowProfiles{}
				if err := k8s.Get(ctx, client.ObjectKey{Name: name}, cr); err != nil {
					return err
				}
				if cr.Annotations == nil {
					cr.Annotations = map[string]string{}
				}
				cr.Annotations[v1alpha1.ReleaseAnnotation] = "true"
				return k8s.Update(ctx, cr)
			}).Should(Succeed())
			Eventually(func() bool {
				return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: name}, &v1alpha1.AwsKubeflowProfiles{}))
			}).Should(BeTrue(), "the annotation lets the object go")
		}
		stalled := func(cluster, reason string, says ...string) {
			GinkgoHelper()
			Eventually(func(g Gomega) {
				cr := &v1alpha1.AwsKubeflowProfiles{}
				g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
				c := condition(cr, v1alpha1.StalledCondition)
				g.Expect(c.Reason).To(Equal(reason))
				for _, s := range says {
					g.Expect(c.Message).To(ContainSubstring(s))
				}
			}, 20*time.Second).Should(Succeed())
		}

		It("reports a Profile whose Kubeflow finalizer never goes, and lets go when the annotation says so, keeping the role", func() {
			cluster := testCluster()
			name := "stuck-" + cluster
			cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
				cr.Spec.DeletionPolicy.Profiles = v1alpha1.DeletionPolicyDelete
				cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: name, Owner: owner("s")}}
			})
			Expect(k8s.Create(ctx, cr)).To(Succeed())
			eventuallyReady(cluster)
			By("Kubeflow is uninstalled: its finalizer stays on the Profile for good")
			p, err := getProfile(name)
			Expect(err).NotTo(HaveOccurred())
			controllerutil.AddFinalizer(p, kubeflowFinalizer)
			Expect(k8s.Update(ctx, p)).To(Succeed())
			DeferCleanup(func() {
				p, err := getProfile(name)
				if err == nil {
					controllerutil.RemoveFinalizer(p, kubeflowFinalizer)
					Expect(k8s.Update(ctx, p)).To(Succeed())
				}
			})

			Expect(k8s.Delete(ctx, cr)).To(Succeed())
			stalled(cluster, v1alpha1.ProfileDeletionStuckReason, "if Kubeflow is not running, start it or remove the finalizer", v1alpha1.ReleaseAnnotation+"=true")
			release(cluster)
			_, err = getRole(profileRoleName(name, cluster))
			Expect(err).NotTo(HaveOccurred(), "the role its Profile still names is kept")
		})

		It("reports a role IAM will not delete because it is in an instance profile, leaves it whole, and lets go when told", func() {
			cluster := testCluster()
			name := "ec2-" + cluster
			role := profileRoleName(name, cluster)
			policyARN := createPolicy("ec2-" + cluster)
			cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
				cr.Spec.DeletionPolicy.Profiles = v1alpha1.DeletionPolicyDelete
				cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: name, Owner: owner("e"), ManagedPolicyARNs: []string{policyARN}}}
			})
			Expect(k8s.Create(ctx, cr)).To(Succeed())
			eventuallyReady(cluster)
			By("someone puts the role in an instance profile")
			_, err := aws_.IAM.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("ip-" + cluster)})
			Expect(err).NotTo(HaveOccurred())
			_, err = aws_.IAM.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String("ip-" + cluster), RoleName: aws.String(role)})
			Expect(err).NotTo(HaveOccurred())

			aws_.Recorder.Reset()
			Expect(k8s.Delete(ctx, cr)).To(Succeed())
			stalled(cluster, v1alpha1.DeleteBlockedReason, "is in instance profile(s) ip-"+cluster, "remove-role-from-instance-profile", v1alpha1.ReleaseAnnotation+"=true")
			Expect(attachedPolicies(role)).To(ConsistOf(policyARN), "nothing is taken from a role that cannot go")
			Expect(aws_.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Write() && c.Params.Get("RoleName") == role })).To(BeEmpty())
			release(cluster)
			_, err = getRole(role)
			Expect(err).NotTo(HaveOccurred())
		})
	})

	It("keeps the OIDC provider when the cluster IAM is deleted but retained Profiles' roles trust it", Label("teardown", "invariant:no-data-loss"), func() {
		cluster := testCluster()
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.DeletionPolicy = v1alpha1.DeletionPolicySpec{Profiles: v1alpha1.DeletionPolicyRetain, ClusterIAM: v1alpha1.DeletionPolicyDelete}
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: "kept-" + cluster, Owner: owner("k")}}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		cr = eventuallyReady(cluster)
		deleteAndWait(cr)
		_, err := getRole(controllerRoleName(cluster))
		Expect(err).To(MatchError(ContainSubstring("NoSuchEntity")), "the controller's IRSA goes")
		_, err = getRole(profileRoleName("kept-"+cluster, cluster))
		Expect(err).NotTo(HaveOccurred())
		_, err = aws_.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARNOf(cluster))})
		Expect(err).NotTo(HaveOccurred(), "the retained role trusts it")
		p, err := getProfile("kept-" + cluster)
		Expect(err).NotTo(HaveOccurred())
		_, annotateOnly, _ := desired.ProfilePlugin(p)
		Expect(annotateOnly).To(BeTrue())
	})
})
