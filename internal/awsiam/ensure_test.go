package awsiam_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

const issuer = "https://oidc.eks.us-west-2.amazonaws.com/id/ABC"

var owner = desired.Owner{Name: "kf", Cluster: "prod"}

func wantRole(name string) desired.Role {
	id := policy.Identity{
		ProviderARN: "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC",
		Issuer:      issuer,
		Subject:     "system:serviceaccount:team-a:default-editor",
	}
	return desired.Role{
		Name:              name,
		Path:              "/kubeflow/prod/",
		Description:       "Kubeflow profile team-a in EKS cluster prod",
		Identity:          id,
		Trust:             id.Trust(),
		ManagedPolicyARNs: []string{"arn:aws:iam::123456789012:policy/a", "arn:aws:iam::123456789012:policy/b"},
		InlinePolicies: map[string]policy.Document{
			"s3": {Version: policy.Version2012, Statement: []policy.Statement{{Effect: policy.Allow, Action: policy.Values{"s3:*"}, Resource: policy.Values{"*"}}}},
		},
		Tags: desired.OwnershipTags(owner, nil),
	}
}

// onKumo starts kumo for the test, with a client over it, and makes sure
// kumo has managed policies of these names; kumo keeps one state per
// process, so another test may have made them.
func onKumo(t *testing.T, o awsiamtest.Options, policies ...string) (*awsiamtest.Env, *awsiam.Client) {
	t.Helper()
	env := awsiamtest.StartWith(o)
	t.Cleanup(env.Close)
	for _, p := range policies {
		_, err := env.IAM.CreatePolicy(context.Background(), &iam.CreatePolicyInput{PolicyName: aws.String(p),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}`)})
		if err != nil && !awsiam.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	return env, awsiam.NewClient(env.IAM, env.STS, env.EKS, nil, awsiam.Options{})
}

func TestPlanRole(t *testing.T) {
	want := wantRole("team-a-prod-role")
	converged := awsiam.Role{
		Name: want.Name, Path: want.Path, Description: want.Description, Trust: want.Trust, MaxSessionDuration: 3600,
		Tags: map[string]string{"kubeflow.aws/managed-by": desired.ManagedByValue, "kubeflow.aws/cluster": "prod", "kubeflow.aws/awskubeflowprofiles": "kf", "extra": "kept"},
	}
	attached := []string{"arn:aws:iam::123456789012:policy/a", "arn:aws:iam::123456789012:policy/b"}
	inline := map[string]policy.Document{"s3": want.InlinePolicies["s3"]}
	reordered, err := policy.Parse(url.QueryEscape(`{"Statement":[{"Resource":"*","Action":["s3:*"],"Effect":"Allow"}],"Version":"2012-10-17"}`))
	if err != nil {
		t.Fatal(err)
	}
	audOnly, err := policy.Parse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.eks.us-west-2.amazonaws.com/id/ABC:aud":["sts.amazonaws.com"]}}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		mutate func(r *awsiam.Role, attached *[]string, inline map[string]policy.Document)
		want   awsiam.RolePlan
	}{
		"converged: nothing to write": {},
		"an inline policy reordered and URL-encoded is the same": {
			mutate: func(_ *awsiam.Role, _ *[]string, inline map[string]policy.Document) { inline["s3"] = reordered },
		},
		"trust left aud-only by Kubeflow's plugin": {
			mutate: func(r *awsiam.Role, _ *[]string, _ map[string]policy.Document) { r.Trust = audOnly },
			want:   awsiam.RolePlan{UpdateTrust: true},
		},
		"a policy detached out of band and another attached": {
			mutate: func(_ *awsiam.Role, a *[]string, _ map[string]policy.Document) {
				*a = []string{"arn:aws:iam::123456789012:policy/a", "arn:aws:iam::aws:policy/AdministratorAccess"}
			},
			want: awsiam.RolePlan{Attach: []string{"arn:aws:iam::123456789012:policy/b"}, Detach: []string{"arn:aws:iam::aws:policy/AdministratorAccess"}},
		},
		"an inline policy changed and one added": {
			mutate: func(_ *awsiam.Role, _ *[]string, inline map[string]policy.Document) {
				inline["s3"] = audOnly
				inline["extra"] = reordered
			},
			want: awsiam.RolePlan{PutInline: []string{"s3"}, DeleteInline: []string{"extra"}},
		},
		"an ownership tag removed": {
			mutate: func(r *awsiam.Role, _ *[]string, _ map[string]policy.Document) {
				delete(r.Tags, "kubeflow.aws/cluster")
			},
			want: awsiam.RolePlan{Tags: map[string]string{"kubeflow.aws/cluster": "prod"}},
		},
		"a session duration of 0 means IAM's default": {
			mutate: func(r *awsiam.Role, _ *[]string, _ map[string]policy.Document) { r.MaxSessionDuration = 0 },
		},
		"a longer session duration set out of band": {
			mutate: func(r *awsiam.Role, _ *[]string, _ map[string]policy.Document) { r.MaxSessionDuration = 43200 },
			want:   awsiam.RolePlan{UpdateSettings: true},
		},
		"a permissions boundary removed out of band": {
			mutate: func(r *awsiam.Role, _ *[]string, _ map[string]policy.Document) {
				r.PermissionsBoundaryARN = "arn:aws:iam::aws:policy/x"
			},
			want: awsiam.RolePlan{SetBoundary: aws.String("")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			have, a, in := converged, append([]string{}, attached...), map[string]policy.Document{}
			have.Tags = map[string]string{}
			for k, v := range converged.Tags {
				have.Tags[k] = v
			}
			for k, v := range inline {
				in[k] = v
			}
			if tc.mutate != nil {
				tc.mutate(&have, &a, in)
			}
			plan := awsiam.PlanRole(have, a, in, want)
			if tc.want.Tags == nil {
				tc.want.Tags = map[string]string{}
			}
			g.Expect(plan).To(Equal(tc.want))
			g.Expect(plan.Empty()).To(Equal(tc.mutate == nil || name == "an inline policy reordered and URL-encoded is the same" || name == "a session duration of 0 means IAM's default"))
		})
	}
}

func apiError(code string) error {
	return &smithy.OperationError{ServiceID: "IAM", OperationName: "Op", Err: &smithy.GenericAPIError{Code: code, Message: code}}
}

func TestErrorClassification(t *testing.T) {
	cases := map[string]struct {
		err                                                 error
		notFound, throttled, terminal, unsupported, awsCall bool
		denied, credentialsRejected                         bool
	}{
		"NoSuchEntity":               {err: apiError("NoSuchEntity"), notFound: true, awsCall: true},
		"Throttling":                 {err: apiError("Throttling"), throttled: true, awsCall: true},
		"MalformedPolicyDocument":    {err: apiError("MalformedPolicyDocument"), terminal: true, awsCall: true},
		"LimitExceeded":              {err: apiError("LimitExceeded"), terminal: true, awsCall: true},
		"AccessDenied":               {err: apiError("AccessDenied"), terminal: true, awsCall: true, denied: true},
		"ExpiredToken":               {err: apiError("ExpiredToken"), terminal: true, awsCall: true, denied: true, credentialsRejected: true},
		"InvalidAction":              {err: apiError("InvalidAction"), unsupported: true, awsCall: true},
		"ServiceFailure":             {err: apiError("ServiceFailure"), awsCall: true},
		"wrapped NoSuchEntity":       {err: fmt.Errorf("reading role x: %w", apiError("NoSuchEntity")), notFound: true, awsCall: true},
		"not owned":                  {err: fmt.Errorf("%w: role x", awsiam.ErrNotOwned), terminal: true},
		"a path that IAM can't move": {err: awsiam.ErrPathMismatch, terminal: true},
		"a plain error":              {err: errors.New("boom")},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(awsiam.IsNotFound(tc.err)).To(Equal(tc.notFound))
			g.Expect(awsiam.IsThrottled(tc.err)).To(Equal(tc.throttled))
			g.Expect(awsiam.IsTerminal(tc.err)).To(Equal(tc.terminal))
			g.Expect(awsiam.IsUnsupported(tc.err)).To(Equal(tc.unsupported))
			g.Expect(awsiam.IsAWSError(tc.err)).To(Equal(tc.awsCall))
			g.Expect(awsiam.IsAccessDenied(tc.err)).To(Equal(tc.denied))
			g.Expect(awsiam.IsCredentialsRejected(tc.err)).To(Equal(tc.credentialsRejected))
		})
	}
}

// fakeIAM implements only what a test needs; any other call panics through
// the nil embedded interface.
type fakeIAM struct {
	awsiam.IAMAPI
	calls []string

	getPolicyVersion    func() (*iam.GetPolicyVersionOutput, error)
	listPolicyVersions  func() (*iam.ListPolicyVersionsOutput, error)
	getRole             func() (*iam.GetRoleOutput, error)
	createRole          func() (*iam.CreateRoleOutput, error)
	getProvider         func() (*iam.GetOpenIDConnectProviderOutput, error)
	deletedVersions     []string
	createdVersionAsDef bool
	// hang makes GetRole wait until its context ends, like a connection
	// that never answers.
	hang bool
	// regions are the regions GetRole was called with.
	regions []string
}

func (f *fakeIAM) GetPolicy(_ context.Context, in *iam.GetPolicyInput, _ ...func(*iam.Options)) (*iam.GetPolicyOutput, error) {
	f.calls = append(f.calls, "GetPolicy")
	return &iam.GetPolicyOutput{Policy: &iamtypes.Policy{Arn: in.PolicyArn, DefaultVersionId: aws.String("v3"), Tags: tagList(desired.OwnershipTags(owner, nil))}}, nil
}

func (f *fakeIAM) GetPolicyVersion(context.Context, *iam.GetPolicyVersionInput, ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error) {
	f.calls = append(f.calls, "GetPolicyVersion")
	return f.getPolicyVersion()
}

func (f *fakeIAM) ListPolicyVersions(context.Context, *iam.ListPolicyVersionsInput, ...func(*iam.Options)) (*iam.ListPolicyVersionsOutput, error) {
	f.calls = append(f.calls, "ListPolicyVersions")
	return f.listPolicyVersions()
}

func (f *fakeIAM) DeletePolicyVersion(_ context.Context, in *iam.DeletePolicyVersionInput, _ ...func(*iam.Options)) (*iam.DeletePolicyVersionOutput, error) {
	f.calls = append(f.calls, "DeletePolicyVersion")
	f.deletedVersions = append(f.deletedVersions, aws.ToString(in.VersionId))
	return &iam.DeletePolicyVersionOutput{}, nil
}

func (f *fakeIAM) CreatePolicyVersion(_ context.Context, in *iam.CreatePolicyVersionInput, _ ...func(*iam.Options)) (*iam.CreatePolicyVersionOutput, error) {
	f.calls = append(f.calls, "CreatePolicyVersion")
	f.createdVersionAsDef = in.SetAsDefault
	return &iam.CreatePolicyVersionOutput{}, nil
}

func (f *fakeIAM) GetRole(ctx context.Context, _ *iam.GetRoleInput, optFns ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	f.calls = append(f.calls, "GetRole")
	o := iam.Options{Region: "from-config"}
	for _, fn := range optFns {
		fn(&o)
	}
	f.regions = append(f.regions, o.Region)
	if f.hang {
		<-ctx.Done()
		return nil, &smithy.OperationError{ServiceID: "IAM", OperationName: "GetRole", Err: ctx.Err()}
	}
	return f.getRole()
}

func (f *fakeIAM) CreateRole(context.Context, *iam.CreateRoleInput, ...func(*iam.Options)) (*iam.CreateRoleOutput, error) {
	f.calls = append(f.calls, "CreateRole")
	return f.createRole()
}

func tagList(m map[string]string) []iamtypes.Tag {
	var out []iamtypes.Tag
	for k, v := range m {
		out = append(out, iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return out
}

func controllerPolicy() desired.ManagedPolicy {
	return desired.ManagedPolicy{
		Name: "kf-profile-controller-policy", ARN: "arn:aws:iam::123456789012:policy/kf-profile-controller-policy",
		Document: desired.ControllerPolicyDocument("prod", "arn:aws:iam::123456789012:role/kubeflow/prod/*"),
	}
}

// kumo gap: it implements no policy-version calls, so document drift of a
// managed policy is tested against a fake that returns versions as IAM does.
func TestEnsureManagedPolicyDocumentDrift(t *testing.T) {
	encoded := func(raw string) func() (*iam.GetPolicyVersionOutput, error) {
		return func() (*iam.GetPolicyVersionOutput, error) {
			return &iam.GetPolicyVersionOutput{PolicyVersion: &iamtypes.PolicyVersion{Document: aws.String(url.QueryEscape(raw))}}, nil
		}
	}
	versions := func(n int) func() (*iam.ListPolicyVersionsOutput, error) {
		return func() (*iam.ListPolicyVersionsOutput, error) {
			out := &iam.ListPolicyVersionsOutput{}
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i := n; i >= 1; i-- {
				out.Versions = append(out.Versions, iamtypes.PolicyVersion{
					VersionId: aws.String(fmt.Sprintf("v%d", i)), IsDefaultVersion: i == 3, CreateDate: aws.Time(base.Add(time.Duration(i) * time.Hour)),
				})
			}
			return out, nil
		}
	}
	same := `{"Statement":[{"Resource":["arn:aws:iam::123456789012:role/kubeflow/prod/*"],"Effect":"Allow","Action":["iam:UpdateAssumeRolePolicy","iam:GetRole"],"Sid":"EditProfileRoleTrust",` +
		`"Condition":{"StringEqualsIfExists":{"aws:resourcetag/kubeflow.aws/cluster":"prod"}}}],"Version":"2012-10-17"}`
	wide := `{"Version":"2012-10-17","Statement":[{"Sid":"EditProfileRoleTrust","Effect":"Allow","Action":["iam:GetRole","iam:UpdateAssumeRolePolicy"],"Resource":"*"}]}`
	cases := map[string]struct {
		fake        *fakeIAM
		wantCalls   []string
		wantDeleted []string
	}{
		"the same document, reordered and URL-encoded: no write": {
			fake:      &fakeIAM{getPolicyVersion: encoded(same)},
			wantCalls: []string{"GetPolicy", "GetPolicyVersion"},
		},
		"widened out of band: a new default version": {
			fake:      &fakeIAM{getPolicyVersion: encoded(wide), listPolicyVersions: versions(3)},
			wantCalls: []string{"GetPolicy", "GetPolicyVersion", "ListPolicyVersions", "CreatePolicyVersion"},
		},
		"at IAM's five versions: the oldest non-default one goes first": {
			fake:        &fakeIAM{getPolicyVersion: encoded(wide), listPolicyVersions: versions(5)},
			wantCalls:   []string{"GetPolicy", "GetPolicyVersion", "ListPolicyVersions", "DeletePolicyVersion", "CreatePolicyVersion"},
			wantDeleted: []string{"v1"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			c := awsiam.NewClient(tc.fake, nil, nil, nil, awsiam.Options{})
			res, err := c.EnsureManagedPolicy(context.Background(), controllerPolicy(), owner)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(tc.fake.calls).To(Equal(tc.wantCalls))
			g.Expect(tc.fake.deletedVersions).To(Equal(tc.wantDeleted))
			if len(tc.wantCalls) > 2 {
				g.Expect(tc.fake.createdVersionAsDef).To(BeTrue())
				g.Expect(res.Changes).To(HaveLen(1))
			}
		})
	}
}

// kumo gap: kumo makes a role visible at once; real IAM can answer a create
// whose response was lost, or a create racing another writer, with
// EntityAlreadyExists while reads still say NoSuchEntity.
func TestEnsureRoleCreateWithUnknownOutcome(t *testing.T) {
	g := NewWithT(t)
	fake := &fakeIAM{
		getRole:    func() (*iam.GetRoleOutput, error) { return nil, apiError("NoSuchEntity") },
		createRole: func() (*iam.CreateRoleOutput, error) { return nil, apiError("EntityAlreadyExists") },
	}
	c := awsiam.NewClient(fake, nil, nil, nil, awsiam.Options{})
	_, err := c.EnsureRole(context.Background(), wantRole("r"), owner, awsiam.Adoption{})
	g.Expect(err).To(MatchError(awsiam.ErrPropagating), "wait and read again rather than guess who owns it")
	g.Expect(fake.calls).To(Equal([]string{"GetRole", "CreateRole"}))
}

// kumo gap: kumo never throttles.
func TestThrottlingIsRetryableAndCounted(t *testing.T) {
	g := NewWithT(t)
	fake := &fakeIAM{getRole: func() (*iam.GetRoleOutput, error) { return nil, apiError("Throttling") }}
	metrics := awsiam.NewMetrics(prometheus.NewRegistry())
	c := awsiam.NewClient(fake, nil, nil, metrics, awsiam.Options{})
	_, err := c.EnsureRole(context.Background(), wantRole("r"), owner, awsiam.Adoption{})
	g.Expect(awsiam.IsThrottled(err)).To(BeTrue())
	g.Expect(awsiam.IsTerminal(err)).To(BeFalse())
	g.Expect(testutil.ToFloat64(metrics.Calls().WithLabelValues("iam", "GetRole", "throttled"))).To(Equal(1.0))
}

func TestEnsureRoleOnKumo(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	env, c := onKumo(t, awsiamtest.Options{}, "a", "b")
	want := wantRole("ensure-role-on-kumo")

	res, err := c.EnsureRole(ctx, want, owner, awsiam.Adoption{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Created).To(BeTrue())
	g.Expect(res.ARN).To(Equal("arn:aws:iam::123456789012:role/kubeflow/prod/ensure-role-on-kumo"))

	env.Recorder.Reset()
	res, err = c.EnsureRole(ctx, want, owner, awsiam.Adoption{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Changes).To(BeEmpty())
	for _, call := range env.Recorder.Calls() {
		g.Expect(call.Write()).To(BeFalse(), "converged role got %s", call.Action)
	}

	// Kubeflow's revoke leaves the trust aud-only; the next ensure restores
	// the exact subject.
	_, err = env.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(want.Name),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.eks.us-west-2.amazonaws.com/id/ABC:aud":["sts.amazonaws.com"]}},"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC"}}]}`)})
	g.Expect(err).NotTo(HaveOccurred())
	res, err = c.EnsureRole(ctx, want, owner, awsiam.Adoption{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Changes).To(ConsistOf(HaveField("Reason", "TrustPolicyRestored")))
	role, err := c.GetRole(ctx, want.Name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(policy.Equal(role.Trust, want.Trust)).To(BeTrue())

	// A role of this object tagged for another profile (a retained one) is
	// not re-trusted for this one.
	other := want
	other.Tags = desired.OwnershipTags(owner, nil)
	want.Tags[desired.TagProfile] = "team-a"
	_, err = c.EnsureRole(ctx, want, owner, awsiam.Adoption{})
	g.Expect(err).NotTo(HaveOccurred())
	other.Tags[desired.TagProfile] = "team-b"
	_, err = c.EnsureRole(ctx, other, owner, awsiam.Adoption{})
	g.Expect(err).To(MatchError(awsiam.ErrNotOwned))
	g.Expect(err).To(MatchError(ContainSubstring(`belongs to profile "team-a", not "team-b"`)))

	// Another operator object can neither take it over nor delete it.
	_, err = c.EnsureRole(ctx, want, desired.Owner{Name: "other", Cluster: "prod"}, awsiam.Adoption{})
	g.Expect(err).To(MatchError(awsiam.ErrNotOwned))
	_, err = c.DeleteOwnedRole(ctx, want.Name, desired.Owner{Name: "other", Cluster: "prod"}, "")
	g.Expect(err).To(MatchError(awsiam.ErrNotOwned))
}

func TestUnsupportedCallIsNotRepeated(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	env, c := onKumo(t, awsiamtest.Options{})
	want := wantRole("unsupported-boundary")
	want.ManagedPolicyARNs, want.InlinePolicies = nil, nil
	_, err := c.EnsureRole(ctx, want, owner, awsiam.Adoption{})
	g.Expect(err).NotTo(HaveOccurred())

	// kumo gap: PutRolePermissionsBoundary is not implemented (InvalidAction),
	// and CreateRole drops the boundary, so every ensure would try again.
	want.PermissionsBoundaryARN = "arn:aws:iam::123456789012:policy/boundary"
	env.Recorder.Reset()
	res, err := c.EnsureRole(ctx, want, owner, awsiam.Adoption{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Skipped).To(HaveLen(1))
	g.Expect(awsiamtest.Actions(env.Recorder.Calls())).To(ContainElement("PutRolePermissionsBoundary"))

	env.Recorder.Reset()
	res, err = c.EnsureRole(ctx, want, owner, awsiam.Adoption{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Skipped).To(HaveLen(1))
	g.Expect(awsiamtest.Actions(env.Recorder.Calls())).NotTo(ContainElement("PutRolePermissionsBoundary"))
}

func (f *fakeIAM) GetOpenIDConnectProvider(context.Context, *iam.GetOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.GetOpenIDConnectProviderOutput, error) {
	f.calls = append(f.calls, "GetOpenIDConnectProvider")
	return f.getProvider()
}

func (f *fakeIAM) DeleteOpenIDConnectProvider(context.Context, *iam.DeleteOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.DeleteOpenIDConnectProviderOutput, error) {
	f.calls = append(f.calls, "DeleteOpenIDConnectProvider")
	return &iam.DeleteOpenIDConnectProviderOutput{}, nil
}

// The operator's record of creating a provider stands in for tags only on
// an endpoint that keeps no tags on providers (kumo); a provider tagged by
// someone else, say one eksctl created after the operator's was deleted out
// of band, is never deleted on that record.
func TestDeleteOwnedOIDCProviderTrustsTheRecordOnlyWithoutTags(t *testing.T) {
	arn := "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC"
	cases := map[string]struct {
		tags       []iamtypes.Tag
		wantDelete bool
	}{
		"our tags":              {tags: tagList(desired.OwnershipTags(owner, nil)), wantDelete: true},
		"no tags (kumo)":        {wantDelete: true},
		"someone else's tags":   {tags: []iamtypes.Tag{{Key: aws.String("alpha.eksctl.io/cluster-name"), Value: aws.String("prod")}}},
		"another object's tags": {tags: tagList(desired.OwnershipTags(desired.Owner{Name: "other", Cluster: "prod"}, nil))},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			fake := &fakeIAM{getProvider: func() (*iam.GetOpenIDConnectProviderOutput, error) {
				return &iam.GetOpenIDConnectProviderOutput{Url: aws.String("oidc.eks.us-west-2.amazonaws.com/id/ABC"), Tags: tc.tags}, nil
			}}
			c := awsiam.NewClient(fake, nil, nil, nil, awsiam.Options{})
			_, err := c.DeleteOwnedOIDCProvider(context.Background(), arn, owner, true)
			if tc.wantDelete {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(fake.calls).To(ContainElement("DeleteOpenIDConnectProvider"))
			} else {
				g.Expect(err).To(MatchError(awsiam.ErrNotOwned))
				g.Expect(fake.calls).NotTo(ContainElement("DeleteOpenIDConnectProvider"))
			}
		})
	}
}

// kumo gap: kumo always answers. A connection that never does must not hold
// a reconcile, and with it every other object's, forever.
func TestEveryCallHasADeadline(t *testing.T) {
	g := NewWithT(t)
	fake := &fakeIAM{hang: true}
	c := awsiam.NewClient(fake, nil, nil, nil, awsiam.Options{CallTimeout: 50 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		_, err := c.GetRole(context.Background(), "r")
		done <- err
	}()
	var err error
	g.Eventually(done, 10*time.Second).Should(Receive(&err), "the call gives up at its deadline")
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
	g.Expect(awsiam.IsTerminal(err)).To(BeFalse(), "a timeout is retried")
	g.Expect(awsiam.IsAWSError(err)).To(BeTrue())
}

// IAM is global within a partition, and the partition follows the
// cluster's region: calls for a cluster in China go to the aws-cn endpoint.
func TestCallsUseTheRegionOfTheCluster(t *testing.T) {
	g := NewWithT(t)
	fake := &fakeIAM{getRole: func() (*iam.GetRoleOutput, error) { return nil, apiError("NoSuchEntity") }}
	c := awsiam.NewClient(fake, nil, nil, nil, awsiam.Options{})
	_, _ = c.GetRole(context.Background(), "r")
	_, _ = c.InRegion("cn-north-1").GetRole(context.Background(), "r")
	_, _ = c.InRegion("us-gov-west-1").GetRole(context.Background(), "r")
	g.Expect(fake.regions).To(Equal([]string{"from-config", "cn-north-1", "us-gov-west-1"}))
}

// Adoption decides whose the role is before it writes anything, and on the
// first adoption removes nothing the spec does not list unless told to.
func TestAdoptionOnKumo(t *testing.T) {
	ctx := context.Background()
	env, c := onKumo(t, awsiamtest.Options{}, "a", "b", "legacy-extra")
	// A role made by hand as the Kubeflow on AWS guide says, with a policy
	// and an inline policy of its own, and a trust that also admits EC2.
	handMade := func(t *testing.T, name, trust string) desired.Role {
		t.Helper()
		_, err := env.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), Path: aws.String("/kubeflow/prod/"), AssumeRolePolicyDocument: aws.String(trust)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String("arn:aws:iam::123456789012:policy/legacy-extra")}); err != nil {
			t.Fatal(err)
		}
		if _, err := env.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("scratch"),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::scratch/*"}]}`)}); err != nil {
			t.Fatal(err)
		}
		return wantRole(name)
	}
	writesFor := func(name string) []string {
		return awsiamtest.Actions(env.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Write() && c.Params.Get("RoleName") == name }))
	}
	exactTrust := wantRole("x").Trust.Marshal()
	withEC2 := `{"Version":"2012-10-17","Statement":[` + strings.TrimSuffix(strings.TrimPrefix(exactTrust, `{"Version":"2012-10-17","Statement":[`), `]}`) +
		`,{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

	t.Run("what it would remove is reported and nothing is written", func(t *testing.T) {
		g := NewWithT(t)
		want := handMade(t, "adopt-report", withEC2)
		env.Recorder.Reset()
		_, err := c.EnsureRole(ctx, want, owner, awsiam.Adoption{Allowed: true})
		g.Expect(err).To(MatchError(awsiam.ErrAdoptionWouldRemove))
		g.Expect(err).To(MatchError(ContainSubstring("its trust of Service ec2.amazonaws.com")))
		g.Expect(err).To(MatchError(ContainSubstring("managed policies arn:aws:iam::123456789012:policy/legacy-extra")))
		g.Expect(err).To(MatchError(ContainSubstring("inline policies scratch, which cannot be recovered")))
		g.Expect(err).To(MatchError(ContainSubstring("removeUnlistedOnAdoption: true")))
		g.Expect(awsiam.IsTerminal(err)).To(BeTrue(), "a human decides")
		g.Expect(writesFor(want.Name)).To(BeEmpty(), "not even the tags")
		g.Expect(inlineNames(g, env, want.Name)).To(ConsistOf("scratch"))
	})

	t.Run("listing what it has keeps it, and adoption goes ahead adding only", func(t *testing.T) {
		g := NewWithT(t)
		want := handMade(t, "adopt-list", exactTrust)
		want.ManagedPolicyARNs = append(want.ManagedPolicyARNs, "arn:aws:iam::123456789012:policy/legacy-extra")
		want.InlinePolicies["scratch"] = policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{Effect: policy.Allow, Action: policy.Values{"s3:*"}, Resource: policy.Values{"arn:aws:s3:::scratch/*"}}}}
		env.Recorder.Reset()
		res, err := c.EnsureRole(ctx, want, owner, awsiam.Adoption{Allowed: true})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Adopted).To(BeTrue())
		g.Expect(writesFor(want.Name)).NotTo(ContainElements("DetachRolePolicy", "DeleteRolePolicy", "UpdateAssumeRolePolicy"))
		g.Expect(writesFor(want.Name)[0]).To(Equal("TagRole"), "ownership is recorded first, then the additions")
	})

	t.Run("asked to remove what is unlisted, the first adoption converges exactly", func(t *testing.T) {
		g := NewWithT(t)
		want := handMade(t, "adopt-prune", withEC2)
		res, err := c.EnsureRole(ctx, want, owner, awsiam.Adoption{Allowed: true, RemoveUnlisted: true})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Changes).To(ContainElements(HaveField("Reason", "PolicyDetached"), HaveField("Reason", "InlinePolicyDeleted"), HaveField("Reason", "TrustPolicyRestored")))
		g.Expect(inlineNames(g, env, want.Name)).To(ConsistOf("s3"))
	})

	t.Run("a role of another profile is refused before any write", func(t *testing.T) {
		g := NewWithT(t)
		want := handMade(t, "adopt-other-profile", exactTrust)
		_, err := env.IAM.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(want.Name), Tags: tagList(map[string]string{desired.TagProfile: "team-z"})})
		g.Expect(err).NotTo(HaveOccurred())
		env.Recorder.Reset()
		_, err = c.EnsureRole(ctx, want, owner, awsiam.Adoption{Allowed: true, RemoveUnlisted: true})
		g.Expect(err).To(MatchError(ContainSubstring(`belongs to profile "team-z"`)))
		g.Expect(writesFor(want.Name)).To(BeEmpty())
	})

	t.Run("a role another object manages is never adopted", func(t *testing.T) {
		g := NewWithT(t)
		want := wantRole("adopt-managed-elsewhere")
		want.ManagedPolicyARNs, want.InlinePolicies = nil, nil
		other := desired.Owner{Name: "other", Cluster: "prod", Gone: func(string) bool { return false }}
		theirs := want
		theirs.Tags = desired.OwnershipTags(other, nil)
		_, err := c.EnsureRole(ctx, theirs, other, awsiam.Adoption{})
		g.Expect(err).NotTo(HaveOccurred())
		env.Recorder.Reset()
		mine := owner
		mine.Gone = func(string) bool { return false }
		_, err = c.EnsureRole(ctx, want, mine, awsiam.Adoption{Allowed: true, RemoveUnlisted: true})
		g.Expect(err).To(MatchError(awsiam.ErrNotOwned))
		g.Expect(err).To(MatchError(ContainSubstring("is managed by AwsKubeflowProfiles other of cluster prod")))
		g.Expect(writesFor(want.Name)).To(BeEmpty())

		By := "once that object is gone, its role is taken over"
		mine.Gone = func(name string) bool { return name == "other" }
		res, err := c.EnsureRole(ctx, want, mine, awsiam.Adoption{})
		g.Expect(err).NotTo(HaveOccurred(), By)
		g.Expect(res.Changes).To(ContainElement(HaveField("Reason", "TakenOver")))
		role, err := c.GetRole(ctx, want.Name)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(desired.OwnedBy(role.Tags, owner)).To(BeTrue())
	})
}

func inlineNames(g Gomega, env *awsiamtest.Env, role string) []string {
	out, err := env.IAM.ListRolePolicies(context.Background(), &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
	g.Expect(err).NotTo(HaveOccurred())
	return out.PolicyNames
}

func (f *fakeIAM) TagOpenIDConnectProvider(context.Context, *iam.TagOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.TagOpenIDConnectProviderOutput, error) {
	f.calls = append(f.calls, "TagOpenIDConnectProvider")
	return &iam.TagOpenIDConnectProviderOutput{}, nil
}

func (f *fakeIAM) UpdateOpenIDConnectProviderThumbprint(context.Context, *iam.UpdateOpenIDConnectProviderThumbprintInput, ...func(*iam.Options)) (*iam.UpdateOpenIDConnectProviderThumbprintOutput, error) {
	f.calls = append(f.calls, "UpdateOpenIDConnectProviderThumbprint")
	return &iam.UpdateOpenIDConnectProviderThumbprintOutput{}, nil
}

// kumo gap: it keeps no tags on OIDC providers, so a provider a deleted
// object left is faked. Taken over, it is then managed like any other:
// thumbprint drift is repaired in the same pass.
func TestEnsureOIDCProviderTakesOverAndThenManages(t *testing.T) {
	g := NewWithT(t)
	gone := desired.Owner{Name: "deleted", Cluster: "prod"}
	fake := &fakeIAM{getProvider: func() (*iam.GetOpenIDConnectProviderOutput, error) {
		return &iam.GetOpenIDConnectProviderOutput{Url: aws.String("oidc.eks.us-west-2.amazonaws.com/id/ABC"), ClientIDList: []string{"sts.amazonaws.com"},
			ThumbprintList: []string{"0000000000000000000000000000000000000000"}, Tags: tagList(desired.OwnershipTags(gone, nil))}, nil
	}}
	mine := owner
	mine.Gone = func(name string) bool { return name == "deleted" }
	c := awsiam.NewClient(fake, nil, nil, nil, awsiam.Options{})
	want := desired.OIDCProvider{ARN: "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC",
		Thumbprints: []string{"1111111111111111111111111111111111111111"}}
	res, err := c.EnsureOIDCProvider(context.Background(), want, mine, false)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.External).To(BeFalse())
	g.Expect(fake.calls).To(Equal([]string{"GetOpenIDConnectProvider", "TagOpenIDConnectProvider", "UpdateOpenIDConnectProviderThumbprint"}))
}

// A retained role is closed only if it is that profile's: the role ARN of a
// retained Profile comes from the Profile, which is no longer managed.
func TestNeutraliseTrustOnlyOfTheProfilesOwnRole(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	env, c := onKumo(t, awsiamtest.Options{})
	want := wantRole("neutralise-own-only")
	want.ManagedPolicyARNs, want.InlinePolicies = nil, nil
	want.Tags = desired.OwnershipTags(owner, nil)
	want.Tags[desired.TagProfile] = "team-a"
	_, err := c.EnsureRole(ctx, want, owner, awsiam.Adoption{})
	g.Expect(err).NotTo(HaveOccurred())

	env.Recorder.Reset()
	_, err = c.NeutraliseTrust(ctx, want.Name, want.Identity, owner, "team-b")
	g.Expect(err).To(MatchError(awsiam.ErrNotOwned))
	g.Expect(env.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Write() })).To(BeEmpty())

	changes, err := c.NeutraliseTrust(ctx, want.Name, want.Identity, owner, "team-a")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(changes).To(ConsistOf(HaveField("Reason", "TrustPolicyNeutralised")))
	env.Recorder.Reset()
	changes, err = c.NeutraliseTrust(ctx, want.Name, want.Identity, owner, "team-a")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(changes).To(BeEmpty(), "a trust that admits no one is left as it is")
	g.Expect(env.Recorder.Matching(func(c awsiamtest.Call) bool { return c.Write() })).To(BeEmpty())
}
