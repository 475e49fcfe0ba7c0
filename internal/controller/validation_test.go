package controller_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
)

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
		Entry("profile role name equal to the controller's", func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.ProfileController.RoleName = "shared"
			p := profile("team-a")
			p.RoleName = "shared"
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{p}
		}, "spec", "must differ from spec.profileController.roleName"),
	)
})
