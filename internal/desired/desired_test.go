package desired_test

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

var facts = desired.ClusterFacts{AccountID: "123456789012", IssuerURL: "https://oidc.eks.us-west-2.amazonaws.com/id/ABC"}

func baseSpec() v1alpha1.AwsKubeflowProfilesSpec {
	return v1alpha1.AwsKubeflowProfilesSpec{
		Cluster: v1alpha1.ClusterSpec{Name: "prod", Region: "us-west-2"},
		Profiles: []v1alpha1.ProfileSpec{
			{Name: "team-b", Owner: v1alpha1.ProfileOwner{Name: "b@example.com"}},
			{Name: "team-a", Owner: v1alpha1.ProfileOwner{Kind: "Group", Name: "ml"}},
		},
	}
}

func TestShorten(t *testing.T) {
	long := strings.Repeat("a", 70)
	cases := map[string]struct {
		name  string
		check func(g Gomega, got string)
	}{
		"fits unchanged": {name: "team-a-prod-role", check: func(g Gomega, got string) { g.Expect(got).To(Equal("team-a-prod-role")) }},
		"exactly 64 unchanged": {name: strings.Repeat("x", 64), check: func(g Gomega, got string) {
			g.Expect(got).To(Equal(strings.Repeat("x", 64)))
		}},
		"long names fit, keep their start and end in a hash": {name: long, check: func(g Gomega, got string) {
			g.Expect(len(got)).To(Equal(64))
			g.Expect(got).To(HavePrefix(strings.Repeat("a", 55) + "-"))
			g.Expect(got).To(MatchRegexp(`-[0-9a-f]{8}$`))
		}},
		"no dash or dot right before the hash": {name: strings.Repeat("ab-", 30), check: func(g Gomega, got string) {
			g.Expect(got).NotTo(ContainSubstring("--"))
			g.Expect(got).To(MatchRegexp(`^[a-z-]+[a-z]-[0-9a-f]{8}$`))
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			got := desired.Shorten(tc.name, desired.MaxRoleNameLength)
			tc.check(g, got)
			g.Expect(desired.Shorten(tc.name, desired.MaxRoleNameLength)).To(Equal(got), "stable")
		})
	}
}

func TestProfileRoleNameLongNamesStayUnique(t *testing.T) {
	g := NewWithT(t)
	cluster := "a-very-long-cluster-name-used-by-the-platform-team"
	seen := map[string]string{}
	for _, p := range []string{"data-science-team-alpha", "data-science-team-alphb", "data-science-team-alpha-x"} {
		name := desired.ProfileRoleName(p, cluster)
		g.Expect(len(name)).To(BeNumerically("<=", 64), name)
		g.Expect(name).To(MatchRegexp(`^[\w+=,.@-]+$`))
		g.Expect(seen).NotTo(HaveKey(name), "collides with %s", seen[name])
		seen[name] = p
	}
	g.Expect(desired.ProfileRoleName("team-a", "prod")).To(Equal("team-a-prod-role"), "the guide's convention when it fits")
}

func TestBuild(t *testing.T) {
	g := NewWithT(t)
	st, err := desired.Build("kf", baseSpec(), facts)
	g.Expect(err).NotTo(HaveOccurred())

	provider := "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC"
	g.Expect(st.OIDCProvider.ARN).To(Equal(provider))
	g.Expect(st.OIDCProvider.ClientIDs).To(Equal([]string{"sts.amazonaws.com"}))
	g.Expect(st.ControllerPolicy.ARN).To(Equal("arn:aws:iam::123456789012:policy/kf-profile-controller-prod-policy"),
		"named for the cluster, so clusters sharing an account do not compete for one policy")
	g.Expect(st.ControllerPolicy.Document.Statement[0].Resource).To(ConsistOf("arn:aws:iam::123456789012:role/kubeflow/prod/*"))
	g.Expect(st.ControllerPolicy.Document.Statement[0].Condition).To(Equal(policy.Conditions{
		"StringEqualsIfExists": {"aws:ResourceTag/kubeflow.aws/cluster": {"prod"}},
	}), "never a role the operator tagged for another cluster, even under a nested path")
	g.Expect(st.ControllerRole.Name).To(Equal("kf-profile-controller-prod-role"))
	g.Expect(st.ControllerRole.Path).To(Equal("/"), "outside the profile path, so the controller cannot edit its own trust")
	g.Expect(st.ControllerRole.ManagedPolicyARNs).To(Equal([]string{st.ControllerPolicy.ARN}))
	g.Expect(st.ControllerServiceAccount.String()).To(Equal("kubeflow/profiles-controller-service-account"))
	g.Expect(st.ControllerDeployment.String()).To(Equal("kubeflow/profiles-deployment"))

	g.Expect(st.Profiles).To(HaveLen(2))
	g.Expect(st.Profiles[0].Name).To(Equal("team-a"), "sorted by name")
	a := st.Profiles[0]
	g.Expect(a.Owner).To(Equal(v1alpha1.ProfileOwner{Kind: "Group", Name: "ml"}))
	g.Expect(st.Profiles[1].Owner.Kind).To(Equal("User"), "defaulted")
	g.Expect(a.Role.Name).To(Equal("team-a-prod-role"))
	g.Expect(a.Role.ARN).To(Equal("arn:aws:iam::123456789012:role/kubeflow/prod/team-a-prod-role"))
	want := policy.WebIdentityTrust(provider, facts.IssuerURL, "system:serviceaccount:team-a:default-editor")
	g.Expect(policy.Equal(a.Role.Trust, want)).To(BeTrue())
	g.Expect(a.Role.Tags).To(HaveKeyWithValue(desired.TagProfile, "team-a"))
	g.Expect(desired.OwnedBy(a.Role.Tags, desired.Owner{Name: "kf", Cluster: "prod"})).To(BeTrue())
	g.Expect(desired.OwnedBy(a.Role.Tags, desired.Owner{Name: "kf", Cluster: "staging"})).To(BeFalse())
}

func TestBuildMergesProfileDefaults(t *testing.T) {
	g := NewWithT(t)
	spec := baseSpec()
	doc := func(action string) apiextensionsv1.JSON {
		return apiextensionsv1.JSON{Raw: []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"` + action + `","Resource":"*"}]}`)}
	}
	quota := &corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8")}}
	spec.ProfileDefaults = v1alpha1.ProfileDefaults{
		ManagedPolicyARNs:         []string{"arn:aws:iam::aws:policy/ReadOnly", "arn:aws:iam::123456789012:policy/shared"},
		InlinePolicies:            []v1alpha1.InlinePolicy{{Name: "s3", Document: doc("s3:ListBucket")}, {Name: "logs", Document: doc("logs:*")}},
		ResourceQuotaSpec:         quota,
		MaxSessionDurationSeconds: ptr.To[int32](7200),
	}
	spec.Profiles[0].ManagedPolicyARNs = []string{"arn:aws:iam::123456789012:policy/shared", "arn:aws:iam::123456789012:policy/b-only"}
	spec.Profiles[0].InlinePolicies = []v1alpha1.InlinePolicy{{Name: "s3", Document: doc("s3:*")}}
	spec.Profiles[0].MaxSessionDurationSeconds = ptr.To[int32](3600)
	st, err := desired.Build("kf", spec, facts)
	g.Expect(err).NotTo(HaveOccurred())
	a, b := st.Profiles[0], st.Profiles[1]

	g.Expect(b.Role.ManagedPolicyARNs).To(Equal([]string{"arn:aws:iam::123456789012:policy/b-only", "arn:aws:iam::123456789012:policy/shared", "arn:aws:iam::aws:policy/ReadOnly"}),
		"the union, sorted and without duplicates")
	g.Expect(b.Role.InlinePolicies["s3"].Statement[0].Action).To(ConsistOf("s3:*"), "the profile's inline policy replaces the default of that name")
	g.Expect(b.Role.InlinePolicies).To(HaveKey("logs"))
	g.Expect(b.Role.MaxSessionDuration).To(Equal(int32(3600)))
	g.Expect(a.Role.MaxSessionDuration).To(Equal(int32(7200)))
	g.Expect(a.ResourceQuotaSpec).To(Equal(quota))
}

func TestNormalizeIssuer(t *testing.T) {
	want := "https://oidc.eks.us-west-2.amazonaws.com/id/ABC"
	for raw, norm := range map[string]string{
		want:        want,
		want + "/":  want,
		want + "//": want,
		"HTTPS://OIDC.EKS.us-west-2.amazonaws.com/id/ABC": want,
		"https://oidc.eks.us-west-2.amazonaws.com/id/abc": "https://oidc.eks.us-west-2.amazonaws.com/id/abc",
		"https://issuer.example.com":                      "https://issuer.example.com",
		"https://issuer.example.com/":                     "https://issuer.example.com",
	} {
		t.Run(raw, func(t *testing.T) {
			g := NewWithT(t)
			got, err := desired.NormalizeIssuer(raw)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(norm), "the path keeps its case: the EKS issuer ID is case-sensitive")
		})
	}
}

// An issuer written with a trailing slash or an upper-case host names the
// same OIDC provider, roles and trust as the canonical one.
func TestBuildWithAnIssuerAsDiscoveryReportsIt(t *testing.T) {
	g := NewWithT(t)
	canonical, err := desired.Build("kf", baseSpec(), facts)
	g.Expect(err).NotTo(HaveOccurred())
	f := facts
	f.IssuerURL = "HTTPS://OIDC.EKS.US-WEST-2.AMAZONAWS.COM/id/ABC/"
	st, err := desired.Build("kf", baseSpec(), f)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(st.IssuerURL).To(Equal(facts.IssuerURL))
	g.Expect(st.OIDCProvider).To(Equal(canonical.OIDCProvider))
	g.Expect(policy.Equal(st.Profiles[0].Role.Trust, canonical.Profiles[0].Role.Trust)).To(BeTrue())
}

func TestBuildRejects(t *testing.T) {
	cases := map[string]struct {
		mutate  func(*v1alpha1.AwsKubeflowProfilesSpec, *desired.ClusterFacts)
		wantErr string
	}{
		"a role path of /": {
			mutate:  func(s *v1alpha1.AwsKubeflowProfilesSpec, _ *desired.ClusterFacts) { s.IAM.RolePath = "/" },
			wantErr: "spec.iam.rolePath",
		},
		"a role path shared by every cluster": {
			mutate:  func(s *v1alpha1.AwsKubeflowProfilesSpec, _ *desired.ClusterFacts) { s.IAM.RolePath = "/kubeflow/" },
			wantErr: `spec.iam.rolePath "/kubeflow/" must contain the cluster name as a path segment, such as /kubeflow/prod/`,
		},
		"a role path naming the cluster only as part of a segment": {
			mutate: func(s *v1alpha1.AwsKubeflowProfilesSpec, _ *desired.ClusterFacts) {
				s.IAM.RolePath = "/kubeflow/prod-2/"
			},
			wantErr: "spec.iam.rolePath",
		},
		"an issuer with a query": {
			mutate: func(_ *v1alpha1.AwsKubeflowProfilesSpec, f *desired.ClusterFacts) {
				f.IssuerURL = "https://oidc.example.com/id/X?a=b"
			},
			wantErr: "query or fragment",
		},
		"an issuer with a fragment": {
			mutate: func(_ *v1alpha1.AwsKubeflowProfilesSpec, f *desired.ClusterFacts) {
				f.IssuerURL = "https://oidc.example.com/id/X#top"
			},
			wantErr: "query or fragment",
		},
		"an account that is not 12 digits": {
			mutate:  func(_ *v1alpha1.AwsKubeflowProfilesSpec, f *desired.ClusterFacts) { f.AccountID = "000" },
			wantErr: "account ID",
		},
		"an issuer that is not https": {
			mutate:  func(_ *v1alpha1.AwsKubeflowProfilesSpec, f *desired.ClusterFacts) { f.IssuerURL = "http://x" },
			wantErr: "spec.cluster.oidcIssuerURL",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			spec, f := baseSpec(), facts
			tc.mutate(&spec, &f)
			_, err := desired.Build("kf", spec, f)
			g.Expect(err).To(MatchError(desired.ErrInvalidSpec))
			g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
		})
	}
}

// A profile that cannot be applied is marked invalid on its own; the other
// profile stays valid, so one bad entry does not hold up the rest.
func TestBuildMarksInvalidProfiles(t *testing.T) {
	cases := map[string]struct {
		mutate      func(*v1alpha1.AwsKubeflowProfilesSpec)
		wantErr     string
		bothInvalid bool
	}{
		"two profiles sharing a role name": {
			mutate: func(s *v1alpha1.AwsKubeflowProfilesSpec) {
				s.Profiles[0].RoleName = "shared"
				s.Profiles[1].RoleName = "shared"
			},
			wantErr:     `profiles team-b and team-a would share role name "shared"`,
			bothInvalid: true,
		},
		"a profile role named like the controller's": {
			mutate: func(s *v1alpha1.AwsKubeflowProfilesSpec) {
				s.Profiles[0].RoleName = "kf-profile-controller-prod-role"
			},
			wantErr: "the profile controller's",
		},
		"more managed policies than the quota": {
			mutate: func(s *v1alpha1.AwsKubeflowProfilesSpec) {
				for i := range 11 {
					s.Profiles[0].ManagedPolicyARNs = append(s.Profiles[0].ManagedPolicyARNs, "arn:aws:iam::123456789012:policy/p"+string(rune('a'+i)))
				}
			},
			wantErr: "11 managed policies attached, more than the quota of 10",
		},
		"an inline policy that is not a policy": {
			mutate: func(s *v1alpha1.AwsKubeflowProfilesSpec) {
				s.Profiles[0].InlinePolicies = []v1alpha1.InlinePolicy{{Name: "bad", Document: apiextensionsv1.JSON{Raw: []byte(`{"Statement":[{"Effect":"Allow","Actions":"s3:*"}]}`)}}}
			},
			wantErr: `inline policy "bad" of spec.profiles[0] (team-b)`,
		},
		"inline policies over IAM's 10240 characters": {
			mutate: func(s *v1alpha1.AwsKubeflowProfilesSpec) {
				big := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + strings.Repeat("b", 11000) + `"}]}`
				s.Profiles[0].InlinePolicies = []v1alpha1.InlinePolicy{{Name: "big", Document: apiextensionsv1.JSON{Raw: []byte(big)}}}
			},
			wantErr: "more than IAM's 10240 per role",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			spec := baseSpec()
			tc.mutate(&spec)
			st, err := desired.Build("kf", spec, facts)
			g.Expect(err).NotTo(HaveOccurred())
			// Profiles[0] of the spec is team-b; the state is sorted by name.
			teamA, teamB := st.Profiles[0], st.Profiles[1]
			g.Expect(teamB.Invalid).To(MatchError(desired.ErrInvalidSpec))
			g.Expect(teamB.Invalid).To(MatchError(ContainSubstring(tc.wantErr)))
			if tc.bothInvalid {
				g.Expect(teamA.Invalid).To(MatchError(ContainSubstring(tc.wantErr)))
			} else {
				g.Expect(teamA.Invalid).NotTo(HaveOccurred())
			}
		})
	}
}

func TestBuildTrustSizeQuota(t *testing.T) {
	g := NewWithT(t)
	spec := baseSpec()
	spec.Cluster.Name = strings.Repeat("c", 100)
	f := facts
	f.IssuerURL = "https://" + strings.Repeat("o", 230)
	_, err := desired.Build("kf", spec, f)
	g.Expect(err).NotTo(HaveOccurred(), "long names still fit in 2048")
	spec.IAM.Quotas.RoleTrustPolicySize = 2048
	f.IssuerURL = "https://" + strings.Repeat("o", 2000)
	_, err = desired.Build("kf", spec, f)
	g.Expect(err).To(MatchError(ContainSubstring("spec.iam.quotas.roleTrustPolicySize")), "the controller's trust is too long too")
}

func TestPartition(t *testing.T) {
	for region, want := range map[string]string{
		"us-west-2": "aws", "eu-central-1": "aws", "cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov",
		"us-iso-east-1": "aws-iso", "us-isob-east-1": "aws-iso-b", "eu-isoe-west-1": "aws-iso-e", "us-isof-south-1": "aws-iso-f",
	} {
		NewWithT(t).Expect(desired.Partition(region)).To(Equal(want), region)
	}
}
