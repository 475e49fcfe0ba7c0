package controller_test

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
)

// iamWritesFor are the IAM writes recorded so far that name an object's
// cluster, which every resource it writes names (role path and names, the
// controller policy, the OIDC provider's issuer, tags).
func iamWritesFor(cluster string) []awsiamtest.Call {
	word := regexp.MustCompile(`(^|[^A-Za-z0-9])` + regexp.QuoteMeta(cluster) + `($|[^A-Za-z0-9])`)
	return aws_.Recorder.Matching(func(c awsiamtest.Call) bool {
		if !c.Write() {
			return false
		}
		for _, vs := range c.Params {
			for _, v := range vs {
				if word.MatchString(v) {
					return true
				}
			}
		}
		return false
	})
}

// reconcileNow runs a pass for the object in the test, so that the writes
// counted after it include whatever a pass on the current spec makes.
func reconcileNow(name string) {
	GinkgoHelper()
	_, _ = newReconciler(k8s, apiReader, time.Hour).Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: name}})
}

var _ = Describe("Admission", Label("invariant:bad-input"), func() {
	It("fills in the defaults a spec leaves out, even one built in Go with zero-valued structs", func() {
		cluster := testCluster()
		cr := &v1alpha1.AwsKubeflowProfiles{
			ObjectMeta: metav1.ObjectMeta{Name: cluster},
			Spec: v1alpha1.AwsKubeflowProfilesSpec{
				Cluster:           v1alpha1.ClusterSpec{Name: cluster, Region: "us-west-2"},
				ProfileController: v1alpha1.ProfileControllerSpec{RoleName: "pc-" + cluster},
			},
		}
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(cr) })
		pc := cr.Spec.ProfileController
		Expect(pc.ServiceAccount).To(Equal(v1alpha1.ObjectReference{Namespace: "kubeflow", Name: "profiles-controller-service-account"}))
		Expect(pc.Deployment).To(Equal(v1alpha1.ObjectReference{Namespace: "kubeflow", Name: "profiles-deployment"}))
		Expect(pc.PolicyName).To(BeEmpty(), "the default, kf-profile-controller-<cluster>-policy, is the operator's: it names the cluster")
		Expect(pc.RoleName).To(Equal("pc-" + cluster))
		Expect(*pc.RestartOnRoleChange).To(BeTrue())
		Expect(cr.Spec.DeletionPolicy).To(Equal(v1alpha1.DeletionPolicySpec{Profiles: v1alpha1.DeletionPolicyRetain, ClusterIAM: v1alpha1.DeletionPolicyRetain}))
		Expect(cr.Spec.IAM.Quotas).To(Equal(v1alpha1.IAMQuotas{ManagedPoliciesPerRole: 10, RoleTrustPolicySize: 2048}))
	})

	It("accepts an issuer as a cluster's discovery document writes it: a trailing slash, an upper-case scheme and host", func() {
		cluster := testCluster()
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Cluster.OIDCIssuerURL = "HTTPS://OIDC.EKS.US-WEST-2.AMAZONAWS.COM/id/" + cluster + "/"
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(cr) })
		cr = eventuallyReady(cluster)
		Expect(cr.Status.OIDCIssuerURL).To(Equal(issuerOf(cluster)), "the same issuer, in the form IAM names it")
		Expect(cr.Status.OIDCProvider.ARN).To(Equal(providerARNOf(cluster)))
	})

	// Each of these fields names the identity of what the operator created:
	// an edit would orphan roles or break the profile controller.
	DescribeTable("refuses to change a field that names an identity, and says what to do instead",
		func(mutate func(*v1alpha1.AwsKubeflowProfiles), field, why string) {
			cluster := testCluster()
			cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.IAM.RolePath = "/teams/" + cluster + "/" })
			Expect(k8s.Create(ctx, cr)).To(Succeed())
			DeferCleanup(func() { deleteAndWait(cr) })
			eventuallyReady(cluster)
			reconcileNow(cluster)
			before := len(iamWritesFor(cluster))
			Expect(before).To(BeNumerically(">", 0), "the count sees the object's own writes")
			var err error
			Eventually(func() error {
				if err := k8s.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
					return err
				}
				mutate(cr)
				if err = k8s.Update(ctx, cr); apierrors.IsConflict(err) {
					return err // the operator wrote in between; try on its version
				}
				return nil
			}).Should(Succeed())
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(field))
			Expect(err.Error()).To(ContainSubstring("immutable"))
			Expect(err.Error()).To(ContainSubstring(why))
			reconcileNow(cluster)
			Expect(iamWritesFor(cluster)).To(HaveLen(before), "a refused edit writes nothing to IAM")
		},
		Entry("the cluster name", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.Name += "-new" },
			"spec.cluster.name", "create a new AwsKubeflowProfiles"),
		Entry("the region", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.Region = "eu-west-1" },
			"spec.cluster.region", "create a new AwsKubeflowProfiles"),
		Entry("the account", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.AccountID = "210987654321" },
			"spec.cluster.accountID", "create a new AwsKubeflowProfiles"),
		Entry("the account, removed", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.AccountID = "" },
			"spec.cluster.accountID", "create a new AwsKubeflowProfiles"),
		Entry("the issuer", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.OIDCIssuerURL += "2" },
			"spec.cluster.oidcIssuerURL", "create a new AwsKubeflowProfiles"),
		Entry("the issuer, removed", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.OIDCIssuerURL = "" },
			"spec.cluster.oidcIssuerURL", "create a new AwsKubeflowProfiles"),
		Entry("the role path", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.IAM.RolePath = "/kubeflow/" + cr.Spec.Cluster.Name + "/"
		},
			"spec.iam.rolePath", "IAM cannot move a role"),
		Entry("the role path, removed for the default", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.IAM.RolePath = "" },
			"spec.iam.rolePath", "IAM cannot move a role"),
	)

	It("lets a spec pin what discovery found: an account or an issuer set for the first time", func() {
		cluster := testCluster()
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.AccountID = "" })
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(cr) })
		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.AccountID = awsiamtest.AccountID })
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(cr), cr)).To(Succeed())
		Expect(cr.Spec.Cluster.AccountID).To(Equal(awsiamtest.AccountID))
	})

	profile := func(name string) v1alpha1.ProfileSpec {
		return v1alpha1.ProfileSpec{Name: name, Owner: v1alpha1.ProfileOwner{Name: name + "@example.com"}}
	}
	withDocument := func(doc string) func(*v1alpha1.AwsKubeflowProfiles) {
		return func(cr *v1alpha1.AwsKubeflowProfiles) {
			p := profile("team-a")
			p.InlinePolicies = []v1alpha1.InlinePolicy{{Name: "s3", Document: apiextensionsv1.JSON{Raw: []byte(doc)}}}
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{p}
		}
	}
	DescribeTable("rejects an invalid spec with a message naming the field",
		func(mutate func(*v1alpha1.AwsKubeflowProfiles), field, why string) {
			cr := newCR(testCluster(), mutate)
			err := k8s.Create(ctx, cr)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(field))
			Expect(err.Error()).To(ContainSubstring(why))
			reconcileNow(cr.Name)
			Expect(iamWritesFor(cr.Name)).To(BeEmpty())
		},
		Entry("cluster name with a space", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.Name = "my cluster" },
			"spec.cluster.name", "should match"),
		Entry("cluster name too long", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.Name = string(make([]byte, 101)) },
			"spec.cluster.name", ""),
		Entry("region that is not one", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.Region = "moon-base-one" },
			"spec.cluster.region", "should match"),
		Entry("issuer over http", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Cluster.OIDCIssuerURL = "http://oidc.eks.us-west-2.amazonaws.com/id/X"
		}, "spec.cluster.oidcIssuerURL", "must start with https://"),
		Entry("issuer with a query", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Cluster.OIDCIssuerURL = "https://oidc.eks.us-west-2.amazonaws.com/id/X?debug=1"
		}, "spec.cluster.oidcIssuerURL", "must not have a query or a fragment"),
		Entry("issuer with a fragment", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Cluster.OIDCIssuerURL = "https://oidc.eks.us-west-2.amazonaws.com/id/X#keys"
		}, "spec.cluster.oidcIssuerURL", "must not have a query or a fragment"),
		Entry("issuer without a host", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Cluster.OIDCIssuerURL = "https:///id/X"
		}, "spec.cluster.oidcIssuerURL", "with a host"),
		Entry("account that is not 12 digits", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Cluster.AccountID = "12345" },
			"spec.cluster.accountID", "should match"),
		Entry("service account name with capitals", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.ProfileController.ServiceAccount.Name = "Profiles_Controller"
		}, "spec.profileController.serviceAccount.name", "should match"),
		Entry("controller role name over 64 characters", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.ProfileController.RoleName = "r234567890123456789012345678901234567890123456789012345678901234567890"
		}, "spec.profileController.roleName", "64"),
		Entry("duplicate profile names", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{profile("team-a"), profile("team-a")}
		}, "spec.profiles[1]", "Duplicate value"),
		Entry("profile name that is not a DNS label", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{profile("Team_A")}
		}, "spec.profiles[0].name", "should match"),
		Entry("profile role name over 64 characters", func(cr *v1alpha1.AwsKubeflowProfiles) {
			p := profile("team-a")
			p.RoleName = "r234567890123456789012345678901234567890123456789012345678901234567890"
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{p}
		}, "spec.profiles[0].roleName", "64"),
		Entry("managed policy that is not a policy ARN", func(cr *v1alpha1.AwsKubeflowProfiles) {
			p := profile("team-a")
			p.ManagedPolicyARNs = []string{"arn:aws:iam::123456789012:role/not-a-policy"}
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{p}
		}, "spec.profiles[0].managedPolicyARNs[0]", "should match"),
		Entry("inline policy document that is not an object", func(cr *v1alpha1.AwsKubeflowProfiles) {
			p := profile("team-a")
			p.InlinePolicies = []v1alpha1.InlinePolicy{{Name: "s3", Document: apiextensionsv1.JSON{Raw: []byte(`"Allow everything"`)}}}
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{p}
		}, "spec.profiles[0].inlinePolicies[0].document", "object"),
		Entry("inline policy document of the wrong shape", withDocument(`{"hello":"world"}`),
			"spec.profiles[0].inlinePolicies[0].document.Statement", "Required value"),
		Entry("inline policy document without a Version", withDocument(`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`),
			"spec.profiles[0].inlinePolicies[0].document.Version", "Required value"),
		Entry("inline policy document of another Version", withDocument(`{"Version":"2023-01-01","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`),
			"spec.profiles[0].inlinePolicies[0].document.Version", "Unsupported value"),
		Entry("inline policy Statement that is not a list", withDocument(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*"}}`),
			"spec.profiles[0].inlinePolicies[0].document.Statement", "must be of type array"),
		Entry("inline policy without a statement", withDocument(`{"Version":"2012-10-17","Statement":[]}`),
			"spec.profiles[0].inlinePolicies[0].document.Statement", "at least 1 items"),
		Entry("inline policy statement without an Effect", withDocument(`{"Version":"2012-10-17","Statement":[{"Action":"s3:*","Resource":"*"}]}`),
			"spec.profiles[0].inlinePolicies[0].document.Statement[0].Effect", "Required value"),
		Entry("inline policy statement with an Effect that is not one", withDocument(`{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"s3:*"}]}`),
			"spec.profiles[0].inlinePolicies[0].document.Statement[0].Effect", "Unsupported value"),
		Entry("inline policy statement without Action or NotAction", withDocument(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}`),
			"spec.profiles[0].inlinePolicies[0].document.Statement[0].Action", "Required value"),
		Entry("default inline policy of the wrong shape", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.ProfileDefaults.InlinePolicies = []v1alpha1.InlinePolicy{{Name: "d", Document: apiextensionsv1.JSON{Raw: []byte(`{"hello":"world"}`)}}}
		}, "spec.profileDefaults.inlinePolicies[0].document.Statement", "Required value"),
		Entry("removeUnlistedOnAdoption without adoptExisting", func(cr *v1alpha1.AwsKubeflowProfiles) {
			p := profile("team-a")
			p.RemoveUnlistedOnAdoption = true
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{p}
		}, "spec.profiles[0]", "set adoptExisting: true as well"),
		Entry("role path of /", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.IAM.RolePath = "/" },
			"spec.iam.rolePath", "must not be /"),
		Entry("role path shared with other clusters", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.IAM.RolePath = "/kubeflow/" },
			"spec", "spec.iam.rolePath must contain the cluster name as a path segment"),
		Entry("role path naming another cluster", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.IAM.RolePath = "/kubeflow/" + cr.Spec.Cluster.Name + "-old/"
		}, "spec", "spec.iam.rolePath must contain the cluster name as a path segment"),
		Entry("profile controller's service account and deployment in different namespaces", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.ProfileController.Deployment.Namespace = "kube-system"
		}, "spec.profileController", "must be in the same namespace"),
		Entry("permissions boundary that is not a policy ARN", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.IAM.PermissionsBoundaryARN = "boundary"
		}, "spec.iam.permissionsBoundaryARN", "should match"),
		Entry("reserved tag key", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.IAM.Tags = []v1alpha1.Tag{{Key: "kubeflow.aws/cluster", Value: "x"}}
		}, "spec.iam.tags[0].key", "reserved"),
		Entry("deletion policy that does not exist", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.DeletionPolicy.Profiles = "Purge"
		}, "spec.deletionPolicy.profiles", "Unsupported value"),
		Entry("profile named kube-system", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{profile("kube-system")}
		},
			"spec.profiles[0].name", "namespaces Kubernetes or Kubeflow reserve"),
		Entry("profile named kube-public", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{profile("kube-public")}
		},
			"spec.profiles[0].name", "namespaces Kubernetes or Kubeflow reserve"),
		Entry("profile named default", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Profiles = []v1alpha1.ProfileSpec{profile("default")} },
			"spec.profiles[0].name", "namespaces Kubernetes or Kubeflow reserve"),
		Entry("profile named kubeflow", func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Profiles = []v1alpha1.ProfileSpec{profile("kubeflow")} },
			"spec.profiles[0].name", "namespaces Kubernetes or Kubeflow reserve"),
		Entry("profile named after the profile controller's namespace", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.ProfileController.ServiceAccount.Namespace, cr.Spec.ProfileController.Deployment.Namespace = "ml-system", "ml-system"
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{profile("team-a"), profile("ml-system")}
		}, "spec", "must differ from the profile controller's namespace"),
		Entry("profile without an owner", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: "team-a"}}
		}, "spec.profiles[0].owner.name", "at least 1 chars"),
		Entry("profile owner of a kind Kubeflow does not know", func(cr *v1alpha1.AwsKubeflowProfiles) {
			p := profile("team-a")
			p.Owner.Kind = "Robot"
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{p}
		}, "spec.profiles[0].owner.kind", "Unsupported value"),
		Entry("managed policy ARN in another service", func(cr *v1alpha1.AwsKubeflowProfiles) {
			p := profile("team-a")
			p.ManagedPolicyARNs = []string{"arn:aws:s3:::bucket"}
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{p}
		}, "spec.profiles[0].managedPolicyARNs[0]", "should match"),
		Entry("managed policy ARN with an account of 11 digits", func(cr *v1alpha1.AwsKubeflowProfiles) {
			p := profile("team-a")
			p.ManagedPolicyARNs = []string{"arn:aws:iam::12345678901:policy/p"}
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{p}
		}, "spec.profiles[0].managedPolicyARNs[0]", "should match"),
		Entry("more managed policies than a role can ever have", func(cr *v1alpha1.AwsKubeflowProfiles) {
			p := profile("team-a")
			for i := range 21 {
				p.ManagedPolicyARNs = append(p.ManagedPolicyARNs, fmt.Sprintf("arn:aws:iam::aws:policy/P%d", i))
			}
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{p}
		}, "spec.profiles[0].managedPolicyARNs", "must have at most 20 items"),
		Entry("profile role name with a character IAM refuses", func(cr *v1alpha1.AwsKubeflowProfiles) {
			p := profile("team-a")
			p.RoleName = "team/a"
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{p}
		}, "spec.profiles[0].roleName", "should match"),
		Entry("session duration over IAM's 12 hours", func(cr *v1alpha1.AwsKubeflowProfiles) {
			p := profile("team-a")
			p.MaxSessionDurationSeconds = ptr.To[int32](43201)
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{p}
		}, "spec.profiles[0].maxSessionDurationSeconds", "less than or equal to 43200"),
		Entry("profile role name equal to the controller's", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.ProfileController.RoleName = "shared"
			p := profile("team-a")
			p.RoleName = "shared"
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{p}
		}, "spec", "must differ from spec.profileController.roleName"),
	)

	// What admission cannot judge, because it needs the whole spec or the
	// cluster: the reconciler refuses the profile (or the object) with a
	// message naming the field and what to do, and writes nothing to IAM for
	// it; the other profiles go ahead.
	DescribeTable("refuses, before any IAM write, a profile admission cannot judge",
		func(mutate func(cluster string, cr *v1alpha1.AwsKubeflowProfiles), refused []string, message string) {
			cluster := testCluster()
			cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
				cr.Spec.Profiles = []v1alpha1.ProfileSpec{profile("fine-" + cluster)}
				mutate(cluster, cr)
			})
			Expect(k8s.Create(ctx, cr)).To(Succeed())
			DeferCleanup(func() { deleteAndWait(cr) })
			Eventually(func(g Gomega) {
				g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(cr), cr)).To(Succeed())
				for _, name := range refused {
					st := profileStatus(cr, name+"-"+cluster)
					g.Expect(st.Reason).To(Equal(v1alpha1.InvalidSpecReason), "profile %s", name)
					g.Expect(st.Message).To(ContainSubstring(message))
				}
				g.Expect(profileStatus(cr, "fine-"+cluster).Ready).To(BeTrue(), "the others go ahead")
			}).Should(Succeed())
			reconcileNow(cluster)
			for _, name := range refused {
				Expect(iamWritesFor(profileRoleName(name+"-"+cluster, cluster))).To(BeEmpty(), "no IAM write for %s", name)
				_, err := getProfile(name + "-" + cluster)
				Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no Profile for %s", name)
			}
			Expect(iamWritesFor(profileRoleName("fine-"+cluster, cluster))).NotTo(BeEmpty(), "the count sees the other profile's writes")
		},
		Entry("more managed policies than the account's quota", func(cluster string, cr *v1alpha1.AwsKubeflowProfiles) {
			p := profile("big-" + cluster)
			for i := range 11 {
				p.ManagedPolicyARNs = append(p.ManagedPolicyARNs, fmt.Sprintf("arn:aws:iam::aws:policy/P%d", i))
			}
			cr.Spec.Profiles = append(cr.Spec.Profiles, p)
		}, []string{"big"}, "would have 11 managed policies attached, more than the quota of 10; remove some or raise spec.iam.quotas.managedPoliciesPerRole"),
		Entry("inline policies over IAM's 10,240 characters per role", func(cluster string, cr *v1alpha1.AwsKubeflowProfiles) {
			p := profile("wordy-" + cluster)
			for i := range 4 {
				var resources []string
				for j := range 120 {
					resources = append(resources, fmt.Sprintf(`"arn:aws:s3:::bucket-%d-%03d/*"`, i, j))
				}
				doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":[` + strings.Join(resources, ",") + `]}]}`
				p.InlinePolicies = append(p.InlinePolicies, v1alpha1.InlinePolicy{Name: fmt.Sprintf("p%d", i), Document: apiextensionsv1.JSON{Raw: []byte(doc)}})
			}
			cr.Spec.Profiles = append(cr.Spec.Profiles, p)
		}, []string{"wordy"}, "move permissions into managed policies"),
		Entry("two profiles naming one role", func(cluster string, cr *v1alpha1.AwsKubeflowProfiles) {
			a, b := profile("a-"+cluster), profile("b-"+cluster)
			a.RoleName, b.RoleName = "shared-"+cluster, "shared-"+cluster
			cr.Spec.Profiles = append(cr.Spec.Profiles, a, b)
		}, []string{"a", "b"}, "set a distinct spec.profiles[].roleName"),
		Entry("a profile naming another profile's default role", func(cluster string, cr *v1alpha1.AwsKubeflowProfiles) {
			a, b := profile("a-"+cluster), profile("b-"+cluster)
			b.RoleName = profileRoleName("a-"+cluster, cluster)
			cr.Spec.Profiles = append(cr.Spec.Profiles, a, b)
		}, []string{"a", "b"}, "set a distinct spec.profiles[].roleName"),
	)
})
