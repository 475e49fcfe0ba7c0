package awsiam

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/time/rate"

	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// Client performs the operator's AWS calls. Every call waits for the rate
// limiter, is counted in Metrics, and returns errors wrapped with what was
// being done. Retries with jittered backoff are the SDK's standard retryer,
// configured where the SDK clients are built.
type Client struct {
	iam     IAMAPI
	sts     STSAPI
	eks     EKSAPI
	limiter *rate.Limiter
	// share, when set, is a stricter limiter the calls of this copy wait
	// for first, and appID names them in the user agent; see Background.
	share       *rate.Limiter
	appID       string
	metrics     *Metrics
	callTimeout time.Duration
	// region selects the partition's IAM and STS endpoints; "" keeps the
	// SDK configuration's.
	region string

	// unsupported remembers operations the endpoint answered InvalidAction
	// for, so an emulator's gap costs one call, not one per reconcile.
	unsupported *sync.Map
}

// Options tune a Client.
type Options struct {
	// RequestsPerSecond and Burst bound the rate of AWS calls across all
	// reconciles; IAM's control plane throttles bursts account-wide.
	RequestsPerSecond float64
	Burst             int
	// CallTimeout bounds each AWS call, its retries included, so that one
	// hung connection cannot hold a reconcile, and with it every other
	// object's, forever.
	CallTimeout time.Duration
}

// DefaultCallTimeout is the deadline of an AWS call when Options sets none:
// long enough for the SDK's retries with backoff, short enough that a hung
// connection is given up within a minute.
const DefaultCallTimeout = 60 * time.Second

// NewClient builds a Client over the given SDK clients.
func NewClient(iamAPI IAMAPI, stsAPI STSAPI, eksAPI EKSAPI, metrics *Metrics, opts Options) *Client {
	if opts.RequestsPerSecond <= 0 {
		opts.RequestsPerSecond = 10
	}
	if opts.Burst <= 0 {
		opts.Burst = 20
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	return &Client{
		iam: iamAPI, sts: stsAPI, eks: eksAPI, metrics: metrics, callTimeout: opts.CallTimeout,
		limiter:     rate.NewLimiter(rate.Limit(opts.RequestsPerSecond), opts.Burst),
		unsupported: &sync.Map{},
	}
}

// InRegion is the client for the IAM resources of a cluster in region: IAM
// is global within a partition, but the partition (aws, aws-cn, aws-us-gov)
// and so the endpoint follow the region. It shares the rate limit, the
// metrics and what is known about the endpoint with c.
func (c *Client) InRegion(region string) *Client {
	regional := *c
	regional.region = region
	return &regional
}

// Background is a copy of c for background work: its calls take at most
// fraction of the shared rate limit, so the calls a user's change makes find
// room, still count against it, and carry app/appID in their user agent, so
// CloudTrail tells them apart.
func (c *Client) Background(fraction float64, appID string) *Client {
	shared := *c
	shared.share = rate.NewLimiter(c.limiter.Limit()*rate.Limit(fraction), 1)
	shared.appID = appID
	return &shared
}

func (c *Client) iamRegion(o *iam.Options) {
	if c.region != "" {
		o.Region = c.region
	}
	if c.appID != "" {
		o.AppID = c.appID
	}
}

func (c *Client) stsRegion(o *sts.Options) {
	if c.region != "" {
		o.Region = c.region
	}
}

// call runs one AWS operation through the limiter and the metrics.
func call[T any](ctx context.Context, c *Client, service, op string, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if _, gap := c.unsupported.Load(service + ":" + op); gap {
		return zero, fmt.Errorf("%s %s: %w", service, op, ErrUnsupported)
	}
	if c.share != nil {
		if err := c.share.Wait(ctx); err != nil {
			return zero, fmt.Errorf("waiting for the AWS rate limiter: %w", err)
		}
	}
	if err := c.limiter.Wait(ctx); err != nil {
		return zero, fmt.Errorf("waiting for the AWS rate limiter: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	start := time.Now()
	out, err := fn(ctx)
	if c.metrics != nil {
		c.metrics.calls.WithLabelValues(service, op, outcome(err)).Inc()
		c.metrics.duration.WithLabelValues(service, op).Observe(time.Since(start).Seconds())
	}
	if err != nil && IsUnsupported(err) {
		c.unsupported.Store(service+":"+op, true)
	}
	return out, err
}

// errEmptyAnswer marks a successful response missing the object it should
// carry, which only a misbehaving endpoint sends.
var errEmptyAnswer = errors.New("the endpoint answered without the expected object")

// CallerAccount is the account of the operator's credentials.
func (c *Client) CallerAccount(ctx context.Context) (string, error) {
	out, err := call(ctx, c, "sts", "GetCallerIdentity", func(ctx context.Context) (*sts.GetCallerIdentityOutput, error) {
		return c.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, c.stsRegion)
	})
	if err != nil {
		return "", fmt.Errorf("reading the AWS account with sts:GetCallerIdentity: %w", err)
	}
	return aws.ToString(out.Account), nil
}

// ClusterIssuer is the OIDC issuer URL of an EKS cluster.
func (c *Client) ClusterIssuer(ctx context.Context, cluster, region string) (string, error) {
	out, err := call(ctx, c, "eks", "DescribeCluster", func(ctx context.Context) (*eks.DescribeClusterOutput, error) {
		return c.eks.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(cluster)}, func(o *eks.Options) {
			o.Region = region
		})
	})
	if err != nil {
		return "", fmt.Errorf("reading the OIDC issuer of EKS cluster %s in %s with eks:DescribeCluster: %w", cluster, region, err)
	}
	if out.Cluster == nil || out.Cluster.Identity == nil || out.Cluster.Identity.Oidc == nil || aws.ToString(out.Cluster.Identity.Oidc.Issuer) == "" {
		return "", fmt.Errorf("EKS cluster %s in %s reports no OIDC issuer yet", cluster, region)
	}
	return aws.ToString(out.Cluster.Identity.Oidc.Issuer), nil
}

// OIDCProvider is an observed IAM OIDC provider.
type OIDCProvider struct {
	ARN         string
	URL         string
	ClientIDs   []string
	Thumbprints []string
	Tags        map[string]string
}

// GetOIDCProvider reads the OIDC provider with the given ARN.
func (c *Client) GetOIDCProvider(ctx context.Context, arn string) (*OIDCProvider, error) {
	out, err := call(ctx, c, "iam", "GetOpenIDConnectProvider", func(ctx context.Context) (*iam.GetOpenIDConnectProviderOutput, error) {
		return c.iam.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)}, c.iamRegion)
	})
	if err != nil {
		return nil, fmt.Errorf("reading OIDC provider %s: %w", arn, err)
	}
	return &OIDCProvider{
		ARN:         arn,
		URL:         "https://" + policy.IssuerHost(aws.ToString(out.Url)),
		ClientIDs:   out.ClientIDList,
		Thumbprints: out.ThumbprintList,
		Tags:        tagMap(out.Tags),
	}, nil
}

// CreateOIDCProvider creates an OIDC provider and returns its ARN.
func (c *Client) CreateOIDCProvider(ctx context.Context, want desired.OIDCProvider) (string, error) {
	out, err := call(ctx, c, "iam", "CreateOpenIDConnectProvider", func(ctx context.Context) (*iam.CreateOpenIDConnectProviderOutput, error) {
		return c.iam.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
			Url:            aws.String(want.URL),
			ClientIDList:   want.ClientIDs,
			ThumbprintList: want.Thumbprints,
			Tags:           tagList(want.Tags),
		}, c.iamRegion)
	})
	if err != nil {
		return "", fmt.Errorf("creating OIDC provider for %s: %w", want.URL, err)
	}
	return aws.ToString(out.OpenIDConnectProviderArn), nil
}

// UpdateOIDCProviderThumbprints replaces the thumbprints of a provider.
func (c *Client) UpdateOIDCProviderThumbprints(ctx context.Context, arn string, thumbprints []string) error {
	_, err := call(ctx, c, "iam", "UpdateOpenIDConnectProviderThumbprint", func(ctx context.Context) (*iam.UpdateOpenIDConnectProviderThumbprintOutput, error) {
		return c.iam.UpdateOpenIDConnectProviderThumbprint(ctx, &iam.UpdateOpenIDConnectProviderThumbprintInput{
			OpenIDConnectProviderArn: aws.String(arn), ThumbprintList: thumbprints,
		}, c.iamRegion)
	})
	if err != nil {
		return fmt.Errorf("updating thumbprints of OIDC provider %s: %w", arn, err)
	}
	return nil
}

// TagOIDCProvider adds or overwrites tags on an OIDC provider.
func (c *Client) TagOIDCProvider(ctx context.Context, arn string, tags map[string]string) error {
	_, err := call(ctx, c, "iam", "TagOpenIDConnectProvider", func(ctx context.Context) (*iam.TagOpenIDConnectProviderOutput, error) {
		return c.iam.TagOpenIDConnectProvider(ctx, &iam.TagOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn), Tags: tagList(tags)}, c.iamRegion)
	})
	if err != nil {
		return fmt.Errorf("tagging OIDC provider %s: %w", arn, err)
	}
	return nil
}

// DeleteOIDCProvider deletes an OIDC provider; a missing one is not an error.
func (c *Client) DeleteOIDCProvider(ctx context.Context, arn string) error {
	_, err := call(ctx, c, "iam", "DeleteOpenIDConnectProvider", func(ctx context.Context) (*iam.DeleteOpenIDConnectProviderOutput, error) {
		return c.iam.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)}, c.iamRegion)
	})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("deleting OIDC provider %s: %w", arn, err)
	}
	return nil
}

// ManagedPolicy is an observed customer managed policy.
type ManagedPolicy struct {
	ARN              string
	DefaultVersionID string
	Tags             map[string]string
	// Document is the default version; nil when the endpoint cannot return
	// policy versions.
	Document *policy.Document
}

// GetPolicy reads a managed policy and its default version's document.
func (c *Client) GetPolicy(ctx context.Context, arn string) (*ManagedPolicy, error) {
	out, err := call(ctx, c, "iam", "GetPolicy", func(ctx context.Context) (*iam.GetPolicyOutput, error) {
		return c.iam.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)}, c.iamRegion)
	})
	if err != nil {
		return nil, fmt.Errorf("reading policy %s: %w", arn, err)
	}
	if out.Policy == nil {
		return nil, fmt.Errorf("reading policy %s: %w", arn, errEmptyAnswer)
	}
	p := &ManagedPolicy{ARN: arn, DefaultVersionID: aws.ToString(out.Policy.DefaultVersionId), Tags: tagMap(out.Policy.Tags)}
	ver, err := call(ctx, c, "iam", "GetPolicyVersion", func(ctx context.Context) (*iam.GetPolicyVersionOutput, error) {
		return c.iam.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: out.Policy.DefaultVersionId}, c.iamRegion)
	})
	switch {
	case IsUnsupported(err):
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("reading version %s of policy %s: %w", p.DefaultVersionID, arn, err)
	case ver.PolicyVersion == nil:
		return nil, fmt.Errorf("reading version %s of policy %s: %w", p.DefaultVersionID, arn, errEmptyAnswer)
	}
	doc, err := policy.Parse(aws.ToString(ver.PolicyVersion.Document))
	if err != nil {
		return nil, fmt.Errorf("reading version %s of policy %s: %w", p.DefaultVersionID, arn, err)
	}
	p.Document = &doc
	return p, nil
}

// PolicyExists reports whether IAM knows a managed policy, customer or AWS
// managed, reading only its metadata.
func (c *Client) PolicyExists(ctx context.Context, arn string) (bool, error) {
	_, err := call(ctx, c, "iam", "GetPolicy", func(ctx context.Context) (*iam.GetPolicyOutput, error) {
		return c.iam.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)}, c.iamRegion)
	})
	switch {
	case IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading policy %s: %w", arn, err)
	}
	return true, nil
}

// CreatePolicy creates a managed policy and returns its ARN.
func (c *Client) CreatePolicy(ctx context.Context, want desired.ManagedPolicy) (string, error) {
	out, err := call(ctx, c, "iam", "CreatePolicy", func(ctx context.Context) (*iam.CreatePolicyOutput, error) {
		return c.iam.CreatePolicy(ctx, &iam.CreatePolicyInput{
			PolicyName:     aws.String(want.Name),
			PolicyDocument: aws.String(want.Document.Marshal()),
			Description:    aws.String("Lets Kubeflow's profile controller edit the trust of profile roles"),
			Tags:           tagList(want.Tags),
		}, c.iamRegion)
	})
	if err != nil {
		return "", fmt.Errorf("creating policy %s: %w", want.Name, err)
	}
	if out.Policy == nil {
		return "", fmt.Errorf("creating policy %s: %w", want.Name, errEmptyAnswer)
	}
	return aws.ToString(out.Policy.Arn), nil
}

// TagPolicy adds or overwrites tags on a managed policy.
func (c *Client) TagPolicy(ctx context.Context, arn string, tags map[string]string) error {
	_, err := call(ctx, c, "iam", "TagPolicy", func(ctx context.Context) (*iam.TagPolicyOutput, error) {
		return c.iam.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: aws.String(arn), Tags: tagList(tags)}, c.iamRegion)
	})
	if err != nil {
		return fmt.Errorf("tagging policy %s: %w", arn, err)
	}
	return nil
}

// maxPolicyVersions is IAM's limit of stored versions per managed policy.
const maxPolicyVersions = 5

// UpdatePolicyDocument makes doc the default version of a managed policy,
// deleting the oldest non-default version first when IAM's limit of five
// versions is reached.
func (c *Client) UpdatePolicyDocument(ctx context.Context, arn string, doc policy.Document) error {
	list, err := call(ctx, c, "iam", "ListPolicyVersions", func(ctx context.Context) (*iam.ListPolicyVersionsOutput, error) {
		return c.iam.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(arn)}, c.iamRegion)
	})
	if err != nil {
		return fmt.Errorf("listing versions of policy %s: %w", arn, err)
	}
	if len(list.Versions) >= maxPolicyVersions {
		if oldest := oldestNonDefault(list.Versions); oldest != "" {
			if err := c.deletePolicyVersion(ctx, arn, oldest); err != nil {
				return err
			}
		}
	}
	_, err = call(ctx, c, "iam", "CreatePolicyVersion", func(ctx context.Context) (*iam.CreatePolicyVersionOutput, error) {
		return c.iam.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{
			PolicyArn: aws.String(arn), PolicyDocument: aws.String(doc.Marshal()), SetAsDefault: true,
		}, c.iamRegion)
	})
	if err != nil {
		return fmt.Errorf("creating a new default version of policy %s: %w", arn, err)
	}
	return nil
}

func oldestNonDefault(versions []iamtypes.PolicyVersion) string {
	var candidates []iamtypes.PolicyVersion
	for _, v := range versions {
		if !v.IsDefaultVersion {
			candidates = append(candidates, v)
		}
	}
	if len(candidates) == 0 {
		return ""
	}
	sort.Slice(candidates, func(i, j int) bool {
		return aws.ToTime(candidates[i].CreateDate).Before(aws.ToTime(candidates[j].CreateDate))
	})
	return aws.ToString(candidates[0].VersionId)
}

func (c *Client) deletePolicyVersion(ctx context.Context, arn, version string) error {
	_, err := call(ctx, c, "iam", "DeletePolicyVersion", func(ctx context.Context) (*iam.DeletePolicyVersionOutput, error) {
		return c.iam.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: aws.String(arn), VersionId: aws.String(version)}, c.iamRegion)
	})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("deleting version %s of policy %s: %w", version, arn, err)
	}
	return nil
}

// DeletePolicy deletes a managed policy with its non-default versions, as
// IAM requires; a missing policy is not an error.
func (c *Client) DeletePolicy(ctx context.Context, arn string) error {
	list, err := call(ctx, c, "iam", "ListPolicyVersions", func(ctx context.Context) (*iam.ListPolicyVersionsOutput, error) {
		return c.iam.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(arn)}, c.iamRegion)
	})
	switch {
	case IsNotFound(err):
		return nil
	case IsUnsupported(err):
	case err != nil:
		return fmt.Errorf("listing versions of policy %s: %w", arn, err)
	default:
		for _, v := range list.Versions {
			if !v.IsDefaultVersion {
				if err := c.deletePolicyVersion(ctx, arn, aws.ToString(v.VersionId)); err != nil {
					return err
				}
			}
		}
	}
	_, err = call(ctx, c, "iam", "DeletePolicy", func(ctx context.Context) (*iam.DeletePolicyOutput, error) {
		return c.iam.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(arn)}, c.iamRegion)
	})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("deleting policy %s: %w", arn, err)
	}
	return nil
}

// Role is an observed IAM role with its permissions.
type Role struct {
	Name                   string
	Path                   string
	ARN                    string
	Description            string
	Trust                  policy.Document
	PermissionsBoundaryARN string
	MaxSessionDuration     int32
	Tags                   map[string]string
}

// GetRole reads a role by name.
func (c *Client) GetRole(ctx context.Context, name string) (*Role, error) {
	out, err := call(ctx, c, "iam", "GetRole", func(ctx context.Context) (*iam.GetRoleOutput, error) {
		return c.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)}, c.iamRegion)
	})
	if err != nil {
		return nil, fmt.Errorf("reading role %s: %w", name, err)
	}
	r := out.Role
	if r == nil {
		return nil, fmt.Errorf("reading role %s: %w", name, errEmptyAnswer)
	}
	role, err := roleOf(*r)
	if err != nil {
		return nil, fmt.Errorf("reading the trust policy of role %s: %w", name, err)
	}
	return &role, nil
}

// CreateRole creates a role with its trust, boundary and tags.
func (c *Client) CreateRole(ctx context.Context, want desired.Role) (string, error) {
	in := &iam.CreateRoleInput{
		RoleName:                 aws.String(want.Name),
		Path:                     aws.String(want.Path),
		AssumeRolePolicyDocument: aws.String(want.Trust.Marshal()),
		Description:              aws.String(want.Description),
		Tags:                     tagList(want.Tags),
	}
	if want.PermissionsBoundaryARN != "" {
		in.PermissionsBoundary = aws.String(want.PermissionsBoundaryARN)
	}
	if want.MaxSessionDuration != 0 {
		in.MaxSessionDuration = aws.Int32(want.MaxSessionDuration)
	}
	out, err := call(ctx, c, "iam", "CreateRole", func(ctx context.Context) (*iam.CreateRoleOutput, error) {
		return c.iam.CreateRole(ctx, in, c.iamRegion)
	})
	if err != nil {
		return "", fmt.Errorf("creating role %s: %w", want.Name, err)
	}
	if out.Role == nil {
		return "", fmt.Errorf("creating role %s: %w", want.Name, errEmptyAnswer)
	}
	return aws.ToString(out.Role.Arn), nil
}

// UpdateTrust replaces the trust policy of a role.
func (c *Client) UpdateTrust(ctx context.Context, name string, doc policy.Document) error {
	_, err := call(ctx, c, "iam", "UpdateAssumeRolePolicy", func(ctx context.Context) (*iam.UpdateAssumeRolePolicyOutput, error) {
		return c.iam.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(name), PolicyDocument: aws.String(doc.Marshal())}, c.iamRegion)
	})
	if err != nil {
		return fmt.Errorf("updating the trust policy of role %s: %w", name, err)
	}
	return nil
}

// UpdateRoleSettings sets the description and maximum session duration.
func (c *Client) UpdateRoleSettings(ctx context.Context, name, description string, maxSession int32) error {
	_, err := call(ctx, c, "iam", "UpdateRole", func(ctx context.Context) (*iam.UpdateRoleOutput, error) {
		return c.iam.UpdateRole(ctx, &iam.UpdateRoleInput{
			RoleName: aws.String(name), Description: aws.String(description), MaxSessionDuration: aws.Int32(maxSession),
		}, c.iamRegion)
	})
	if err != nil {
		return fmt.Errorf("updating description and session duration of role %s: %w", name, err)
	}
	return nil
}

// SetPermissionsBoundary puts, or with an empty arn deletes, the boundary.
func (c *Client) SetPermissionsBoundary(ctx context.Context, name, arn string) error {
	var err error
	if arn == "" {
		_, err = call(ctx, c, "iam", "DeleteRolePermissionsBoundary", func(ctx context.Context) (*iam.DeleteRolePermissionsBoundaryOutput, error) {
			return c.iam.DeleteRolePermissionsBoundary(ctx, &iam.DeleteRolePermissionsBoundaryInput{RoleName: aws.String(name)}, c.iamRegion)
		})
	} else {
		_, err = call(ctx, c, "iam", "PutRolePermissionsBoundary", func(ctx context.Context) (*iam.PutRolePermissionsBoundaryOutput, error) {
			return c.iam.PutRolePermissionsBoundary(ctx, &iam.PutRolePermissionsBoundaryInput{RoleName: aws.String(name), PermissionsBoundary: aws.String(arn)}, c.iamRegion)
		})
	}
	if err != nil {
		return fmt.Errorf("setting the permissions boundary of role %s to %q: %w", name, arn, err)
	}
	return nil
}

// TagRole adds or overwrites tags on a role.
func (c *Client) TagRole(ctx context.Context, name string, tags map[string]string) error {
	_, err := call(ctx, c, "iam", "TagRole", func(ctx context.Context) (*iam.TagRoleOutput, error) {
		return c.iam.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(name), Tags: tagList(tags)}, c.iamRegion)
	})
	if err != nil {
		return fmt.Errorf("tagging role %s: %w", name, err)
	}
	return nil
}

// AttachedPolicies lists the ARNs of the managed policies attached to a role.
func (c *Client) AttachedPolicies(ctx context.Context, name string) ([]string, error) {
	var arns []string
	var marker *string
	for {
		out, err := call(ctx, c, "iam", "ListAttachedRolePolicies", func(ctx context.Context) (*iam.ListAttachedRolePoliciesOutput, error) {
			return c.iam.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name), Marker: marker}, c.iamRegion)
		})
		if err != nil {
			return nil, fmt.Errorf("listing managed policies of role %s: %w", name, err)
		}
		for _, p := range out.AttachedPolicies {
			arns = append(arns, aws.ToString(p.PolicyArn))
		}
		if !out.IsTruncated || out.Marker == nil {
			break
		}
		marker = out.Marker
	}
	slices.Sort(arns)
	return arns, nil
}

// InstanceProfiles lists the names of the instance profiles a role is in.
func (c *Client) InstanceProfiles(ctx context.Context, role string) ([]string, error) {
	var names []string
	var marker *string
	for {
		out, err := call(ctx, c, "iam", "ListInstanceProfilesForRole", func(ctx context.Context) (*iam.ListInstanceProfilesForRoleOutput, error) {
			return c.iam.ListInstanceProfilesForRole(ctx, &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String(role), Marker: marker}, c.iamRegion)
		})
		if err != nil {
			return nil, fmt.Errorf("listing instance profiles of role %s: %w", role, err)
		}
		for _, p := range out.InstanceProfiles {
			names = append(names, aws.ToString(p.InstanceProfileName))
		}
		if !out.IsTruncated || out.Marker == nil {
			break
		}
		marker = out.Marker
	}
	slices.Sort(names)
	return names, nil
}

// AttachPolicy attaches a managed policy to a role.
func (c *Client) AttachPolicy(ctx context.Context, role, arn string) error {
	_, err := call(ctx, c, "iam", "AttachRolePolicy", func(ctx context.Context) (*iam.AttachRolePolicyOutput, error) {
		return c.iam.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(role), PolicyArn: aws.String(arn)}, c.iamRegion)
	})
	if err != nil {
		return fmt.Errorf("attaching policy %s to role %s: %w", arn, role, err)
	}
	return nil
}

// DetachPolicy detaches a managed policy; one not attached is not an error.
func (c *Client) DetachPolicy(ctx context.Context, role, arn string) error {
	_, err := call(ctx, c, "iam", "DetachRolePolicy", func(ctx context.Context) (*iam.DetachRolePolicyOutput, error) {
		return c.iam.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(role), PolicyArn: aws.String(arn)}, c.iamRegion)
	})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("detaching policy %s from role %s: %w", arn, role, err)
	}
	return nil
}

// InlinePolicyNames lists the names of the inline policies of a role.
func (c *Client) InlinePolicyNames(ctx context.Context, role string) ([]string, error) {
	var names []string
	var marker *string
	for {
		out, err := call(ctx, c, "iam", "ListRolePolicies", func(ctx context.Context) (*iam.ListRolePoliciesOutput, error) {
			return c.iam.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(role), Marker: marker}, c.iamRegion)
		})
		if err != nil {
			return nil, fmt.Errorf("listing inline policies of role %s: %w", role, err)
		}
		names = append(names, out.PolicyNames...)
		if !out.IsTruncated || out.Marker == nil {
			return names, nil
		}
		marker = out.Marker
	}
}

// InlinePolicies reads the inline policies of a role by name.
func (c *Client) InlinePolicies(ctx context.Context, role string) (map[string]policy.Document, error) {
	names, err := c.InlinePolicyNames(ctx, role)
	if err != nil {
		return nil, err
	}
	docs := make(map[string]policy.Document, len(names))
	for _, n := range names {
		out, err := call(ctx, c, "iam", "GetRolePolicy", func(ctx context.Context) (*iam.GetRolePolicyOutput, error) {
			return c.iam.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(n)}, c.iamRegion)
		})
		if err != nil {
			return nil, fmt.Errorf("reading inline policy %s of role %s: %w", n, role, err)
		}
		doc, err := policy.Parse(aws.ToString(out.PolicyDocument))
		if err != nil {
			// A document we cannot read is treated as different, so it is
			// rewritten from the spec if the spec has one of that name.
			doc = policy.Document{}
		}
		docs[n] = doc
	}
	return docs, nil
}

// PutInlinePolicy creates or replaces an inline policy of a role.
func (c *Client) PutInlinePolicy(ctx context.Context, role, name string, doc policy.Document) error {
	_, err := call(ctx, c, "iam", "PutRolePolicy", func(ctx context.Context) (*iam.PutRolePolicyOutput, error) {
		return c.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name), PolicyDocument: aws.String(doc.Marshal())}, c.iamRegion)
	})
	if err != nil {
		return fmt.Errorf("putting inline policy %s on role %s: %w", name, role, err)
	}
	return nil
}

// DeleteInlinePolicy deletes an inline policy; a missing one is not an error.
func (c *Client) DeleteInlinePolicy(ctx context.Context, role, name string) error {
	_, err := call(ctx, c, "iam", "DeleteRolePolicy", func(ctx context.Context) (*iam.DeleteRolePolicyOutput, error) {
		return c.iam.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)}, c.iamRegion)
	})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("deleting inline policy %s of role %s: %w", name, role, err)
	}
	return nil
}

// DeleteRole deletes a role that has no policies left; a missing role is not
// an error.
func (c *Client) DeleteRole(ctx context.Context, name string) error {
	_, err := call(ctx, c, "iam", "DeleteRole", func(ctx context.Context) (*iam.DeleteRoleOutput, error) {
		return c.iam.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)}, c.iamRegion)
	})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("deleting role %s: %w", name, err)
	}
	return nil
}

func tagMap(tags []iamtypes.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func tagList(tags map[string]string) []iamtypes.Tag {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]iamtypes.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, iamtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// missingTags are the tags of want that have or lack a different value.
func missingTags(have, want map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range want {
		if cur, ok := have[k]; !ok || cur != v {
			out[k] = v
		}
	}
	return out
}
