package awsiam_test

import (
	"context"
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	. "github.com/onsi/gomega"

	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// listedAs is want as a listing shows it once converged: by ListRoles
// (detailed false) or with GetAccountAuthorizationDetails' details.
func listedAs(want desired.Role, detailed bool) awsiam.ListedRole {
	l := awsiam.ListedRole{Role: awsiam.Role{
		Name: want.Name, Path: want.Path, Description: want.Description, Trust: want.Trust, MaxSessionDuration: 3600,
		Tags: maps.Clone(want.Tags),
	}}
	if detailed {
		l.Detailed, l.Attached, l.Inline = true, append([]string{}, want.ManagedPolicyARNs...), maps.Clone(want.InlinePolicies)
	}
	return l
}

func TestJudgeAListedRole(t *testing.T) {
	want := wantRole("team-a-prod-role")
	want.Tags[desired.TagProfile] = "team-a"
	audOnly, err := policy.Parse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.eks.us-west-2.amazonaws.com/id/ABC:aud":["sts.amazonaws.com"]}}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		detailed bool
		absent   bool
		mutate   func(l *awsiam.ListedRole)
		want     awsiam.Verdict
	}{
		"ListRoles, converged: the policies are still to check":               {want: awsiam.ListedRoleMatches},
		"details, converged: nothing to read":                                 {detailed: true, want: awsiam.ListedMatches},
		"not listed (adopted elsewhere, too new, beyond the answer): unknown": {absent: true, want: awsiam.ListedUnknown},
		"ListRoles without tags, as real IAM answers: unknown": {
			mutate: func(l *awsiam.ListedRole) { l.Tags = nil }, want: awsiam.ListedUnknown,
		},
		"ListRoles without tags still shows an opened trust": {
			mutate: func(l *awsiam.ListedRole) { l.Tags, l.Trust = nil, audOnly }, want: awsiam.ListedDiffers,
		},
		"an adopted role keeps the path it had": {
			mutate: func(l *awsiam.ListedRole) { l.Path, l.Tags[desired.TagAdopted] = "/legacy/", "true" }, want: awsiam.ListedRoleMatches,
		},
		"trust left aud-only by Kubeflow's revoke": {
			mutate: func(l *awsiam.ListedRole) { l.Trust = audOnly }, want: awsiam.ListedDiffers,
		},
		"another object's role": {
			mutate: func(l *awsiam.ListedRole) { l.Tags[desired.TagOwner] = "other" }, want: awsiam.ListedDiffers,
		},
		"a role never tagged by the operator": {
			mutate: func(l *awsiam.ListedRole) { l.Tags = map[string]string{"team": "a"} }, want: awsiam.ListedDiffers,
		},
		"the role of another profile": {
			mutate: func(l *awsiam.ListedRole) { l.Tags[desired.TagProfile] = "team-b" }, want: awsiam.ListedDiffers,
		},
		"another path": {
			mutate: func(l *awsiam.ListedRole) { l.Path = "/other/" }, want: awsiam.ListedDiffers,
		},
		"an ownership tag removed": {
			detailed: true, mutate: func(l *awsiam.ListedRole) { delete(l.Tags, desired.TagCluster) }, want: awsiam.ListedDiffers,
		},
		"a longer session set out of band": {
			mutate: func(l *awsiam.ListedRole) { l.MaxSessionDuration = 43200 }, want: awsiam.ListedDiffers,
		},
		"ListRoles does not say the policies, so what the entry holds of them is not judged": {
			mutate: func(l *awsiam.ListedRole) { l.Attached = []string{"arn:aws:iam::aws:policy/AdministratorAccess"} }, want: awsiam.ListedRoleMatches,
		},
		"details: a policy detached out of band": {
			detailed: true, mutate: func(l *awsiam.ListedRole) { l.Attached = l.Attached[:1] }, want: awsiam.ListedDiffers,
		},
		"details: an inline policy added out of band": {
			detailed: true, mutate: func(l *awsiam.ListedRole) { l.Inline["extra"] = audOnly }, want: awsiam.ListedDiffers,
		},
		"details: a permissions boundary added out of band": {
			detailed: true, mutate: func(l *awsiam.ListedRole) { l.PermissionsBoundaryARN = "arn:aws:iam::aws:policy/x" }, want: awsiam.ListedDiffers,
		},
		"ListRoles omits the boundary, so it is not judged": {
			mutate: func(l *awsiam.ListedRole) { l.PermissionsBoundaryARN = "arn:aws:iam::aws:policy/x" }, want: awsiam.ListedRoleMatches,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			l := awsiam.Listing{Roles: map[string]awsiam.ListedRole{}}
			if !tc.absent {
				entry := listedAs(want, tc.detailed)
				if tc.mutate != nil {
					tc.mutate(&entry)
				}
				l.Roles[want.Name] = entry
			}
			NewWithT(t).Expect(l.Judge(want.Name, want, owner)).To(Equal(tc.want))
		})
	}
}

// TestListingsOnKumo reads roles in bulk from kumo, and their details from
// the fake of GetAccountAuthorizationDetails, through the SDK's decoding.
func TestListingsOnKumo(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	env, c := onKumo(t, awsiamtest.Options{AuthorizationDetails: true}, "a", "b")
	var wants []desired.Role
	for _, name := range []string{"listed-1", "listed-2"} {
		want := wantRole(name)
		want.Path = "/kubeflow/listing/"
		_, err := c.EnsureRole(ctx, want, owner, awsiam.Adoption{})
		g.Expect(err).NotTo(HaveOccurred())
		wants = append(wants, want)
	}
	elsewhere := wantRole("listed-elsewhere")
	elsewhere.Path = "/kubeflow/listing-other/"
	_, err := c.EnsureRole(ctx, elsewhere, owner, awsiam.Adoption{})
	g.Expect(err).NotTo(HaveOccurred())

	env.Recorder.Reset()
	l, err := c.ListRoles(ctx, "/kubeflow/listing/")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(awsiamtest.Actions(env.Recorder.Calls())).To(Equal([]string{"ListRoles"}))
	g.Expect(l.Roles).To(HaveLen(2), "only the roles under the path")
	for _, want := range wants {
		g.Expect(l.Judge(want.Name, want, owner)).To(Equal(awsiam.ListedRoleMatches), "kumo lists tags")
	}

	g.Expect(c.AddDetails(ctx, l)).To(Succeed())
	for _, want := range wants {
		g.Expect(l.Roles[want.Name].Attached).To(Equal(want.ManagedPolicyARNs))
		g.Expect(l.Judge(want.Name, want, owner)).To(Equal(awsiam.ListedMatches))
	}
	_, err = env.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String("listed-2"), PolicyArn: aws.String(wants[1].ManagedPolicyARNs[0])})
	g.Expect(err).NotTo(HaveOccurred())
	l, err = c.ListRoles(ctx, "/kubeflow/listing/")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.AddDetails(ctx, l)).To(Succeed())
	g.Expect(l.Judge("listed-1", wants[0], owner)).To(Equal(awsiam.ListedMatches))
	g.Expect(l.Judge("listed-2", wants[1], owner)).To(Equal(awsiam.ListedDiffers))

	// IAM's own ListRoles carries no tags: the roles are unknown to it.
	_, iamLike := onKumo(t, awsiamtest.Options{ListRolesLikeIAM: true})
	l, err = iamLike.ListRoles(ctx, "/kubeflow/listing/")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(l.Roles).To(HaveLen(2))
	g.Expect(l.Roles["listed-1"].Tags).To(BeEmpty())
	g.Expect(l.Judge("listed-1", wants[0], owner)).To(Equal(awsiam.ListedUnknown))
}

func TestCreateOrEnsureRoleCreatesWithoutReading(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	env, c := onKumo(t, awsiamtest.Options{}, "a", "b")
	want := wantRole("create-first")

	env.Recorder.Reset()
	res, err := c.CreateOrEnsureRole(ctx, want, owner, awsiam.Adoption{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Created).To(BeTrue())
	g.Expect(awsiamtest.Actions(env.Recorder.Calls())).To(Equal([]string{"CreateRole", "AttachRolePolicy", "AttachRolePolicy", "PutRolePolicy"}))

	// Believed new but there after all (a lost answer, a restart): read and
	// ensured, and nothing more is written.
	env.Recorder.Reset()
	res, err = c.CreateOrEnsureRole(ctx, want, owner, awsiam.Adoption{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Created).To(BeFalse())
	g.Expect(res.Changes).To(BeEmpty())
	g.Expect(awsiamtest.Actions(env.Recorder.Calls())).To(Equal([]string{"CreateRole", "GetRole", "ListAttachedRolePolicies", "ListRolePolicies", "GetRolePolicy"}))

	// Someone else's role of that name is refused, not changed.
	_, err = c.CreateOrEnsureRole(ctx, want, desired.Owner{Name: "other", Cluster: "prod"}, awsiam.Adoption{})
	g.Expect(err).To(MatchError(awsiam.ErrNotOwned))

	match, err := c.PoliciesMatch(ctx, want)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(match).To(BeTrue())
	_, err = env.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(want.Name), PolicyName: aws.String("s3")})
	g.Expect(err).NotTo(HaveOccurred())
	match, err = c.PoliciesMatch(ctx, want)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(match).To(BeFalse())
}
