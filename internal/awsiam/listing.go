package awsiam

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// listPageSize is the most roles IAM returns in one page of a listing.
const listPageSize = 1000

// Listing is what one bulk read found of the roles under a path: many roles
// for a call or a few, instead of one call or three per role.
type Listing struct {
	// Roles are the listed roles by name.
	Roles map[string]ListedRole
}

// ListedRole is one role of a Listing. ListRoles gives its trust,
// description and session duration, and from some endpoints its tags;
// GetAccountAuthorizationDetails adds its policies, tags and boundary.
type ListedRole struct {
	Role
	// Detailed is set when Attached, Inline, the tags and the boundary are
	// known.
	Detailed bool
	Attached []string
	Inline   map[string]policy.Document
}

// ListRoles lists the roles under pathPrefix with their trust policies,
// a page of up to 1000 roles per call. A role whose trust cannot be parsed
// is left out, so it is read on its own.
func (c *Client) ListRoles(ctx context.Context, pathPrefix string) (Listing, error) {
	l := Listing{Roles: map[string]ListedRole{}}
	var marker *string
	for {
		out, err := call(ctx, c, "iam", "ListRoles", func(ctx context.Context) (*iam.ListRolesOutput, error) {
			return c.iam.ListRoles(ctx, &iam.ListRolesInput{PathPrefix: aws.String(pathPrefix), Marker: marker, MaxItems: aws.Int32(listPageSize)}, c.iamRegion)
		})
		if err != nil {
			return Listing{}, fmt.Errorf("listing roles under %s: %w", pathPrefix, err)
		}
		for _, r := range out.Roles {
			role, err := roleOf(r)
			if err == nil && strings.HasPrefix(role.Path, pathPrefix) {
				l.Roles[role.Name] = ListedRole{Role: role}
			}
		}
		if !out.IsTruncated || out.Marker == nil {
			return l, nil
		}
		marker = out.Marker
	}
}

// AddDetails reads every role of the account with its policies, tags and
// boundary (GetAccountAuthorizationDetails, up to 1000 roles a page) and
// adds them to the listed roles of l, which that call lacks the description
// and session duration of. IAM cannot filter the call by path, so it pays
// where the account's roles are mostly the cluster's. A role whose trust
// changed between the two reads is left as ListRoles saw it.
func (c *Client) AddDetails(ctx context.Context, l Listing) error {
	var marker *string
	for {
		out, err := call(ctx, c, "iam", "GetAccountAuthorizationDetails", func(ctx context.Context) (*iam.GetAccountAuthorizationDetailsOutput, error) {
			return c.iam.GetAccountAuthorizationDetails(ctx, &iam.GetAccountAuthorizationDetailsInput{
				Filter: []iamtypes.EntityType{iamtypes.EntityTypeRole}, Marker: marker, MaxItems: aws.Int32(listPageSize),
			}, c.iamRegion)
		})
		if err != nil {
			return fmt.Errorf("reading the account's role details: %w", err)
		}
		for _, r := range out.RoleDetailList {
			have, ok := l.Roles[aws.ToString(r.RoleName)]
			if !ok {
				continue
			}
			if entry, ok := detailed(have, r); ok {
				l.Roles[have.Name] = entry
			}
		}
		if !out.IsTruncated || out.Marker == nil {
			return nil
		}
		marker = out.Marker
	}
}

// detailed adds a role's details to its listing; a role whose trust
// differs, or with an inline policy that cannot be parsed, is left out.
func detailed(have ListedRole, r iamtypes.RoleDetail) (ListedRole, bool) {
	trust, err := policy.Parse(aws.ToString(r.AssumeRolePolicyDocument))
	if err != nil || !policy.Equal(trust, have.Trust) {
		return ListedRole{}, false
	}
	entry := ListedRole{Role: have.Role, Detailed: true, Attached: []string{}, Inline: map[string]policy.Document{}}
	entry.Tags = tagMap(r.Tags)
	entry.PermissionsBoundaryARN = ""
	if r.PermissionsBoundary != nil {
		entry.PermissionsBoundaryARN = aws.ToString(r.PermissionsBoundary.PermissionsBoundaryArn)
	}
	for _, p := range r.AttachedManagedPolicies {
		entry.Attached = append(entry.Attached, aws.ToString(p.PolicyArn))
	}
	slices.Sort(entry.Attached)
	for _, p := range r.RolePolicyList {
		doc, err := policy.Parse(aws.ToString(p.PolicyDocument))
		if err != nil {
			return ListedRole{}, false
		}
		entry.Inline[aws.ToString(p.PolicyName)] = doc
	}
	return entry, true
}

// roleOf converts a role of an IAM answer.
func roleOf(r iamtypes.Role) (Role, error) {
	trust, err := policy.Parse(aws.ToString(r.AssumeRolePolicyDocument))
	if err != nil {
		return Role{}, err
	}
	role := Role{
		Name: aws.ToString(r.RoleName), Path: aws.ToString(r.Path), ARN: aws.ToString(r.Arn), Description: aws.ToString(r.Description),
		Trust: trust, MaxSessionDuration: aws.ToInt32(r.MaxSessionDuration), Tags: tagMap(r.Tags),
	}
	if r.PermissionsBoundary != nil {
		role.PermissionsBoundaryARN = aws.ToString(r.PermissionsBoundary.PermissionsBoundaryArn)
	}
	return role, nil
}

// Verdict is what a listing says of one role against its spec.
type Verdict int

const (
	// ListedUnknown: the listing cannot tell; the role is read on its own.
	ListedUnknown Verdict = iota
	// ListedDiffers: the role differs from its spec, or is not this
	// object's for this profile; it is read on its own and repaired.
	ListedDiffers
	// ListedRoleMatches: the role's own attributes (trust, description,
	// session duration, tags) match, and its policies are still to check.
	ListedRoleMatches
	// ListedMatches: the whole role matches its spec.
	ListedMatches
)

// Judge compares a listed role with its spec, without I/O. Only a role the
// listing shows as owned by owner for the same profile can match: anything
// else is for the full read to decide, before any write. A role the listing
// lacks is unknown, not missing: it may be adopted at another path, or too
// new for the listing, or beyond what the endpoint answered.
func (l Listing) Judge(name string, want desired.Role, owner desired.Owner) Verdict {
	have, ok := l.Roles[name]
	if !ok {
		return ListedUnknown
	}
	attached, inline := have.Attached, have.Inline
	if !have.Detailed {
		// Only the role's own attributes are compared.
		attached, inline = want.ManagedPolicyARNs, want.InlinePolicies
	}
	plan := PlanRole(have.Role, attached, inline, want)
	if !have.Detailed {
		// ListRoles of real IAM omits the boundary.
		plan.SetBoundary = nil
	}
	_, open := want.Identity.OpenTo(have.Trust)
	adopted := desired.Adopted(have.Tags)
	if len(have.Tags) == 0 && !have.Detailed {
		// ListRoles of real IAM carries no tags, so neither ownership nor
		// tag drift can be told from it; the trust and settings can.
		if open || plan.UpdateTrust || plan.UpdateSettings || have.Path != want.Path {
			return ListedDiffers
		}
		return ListedUnknown
	}
	switch {
	case desired.OwnershipOf(have.Tags, owner) != desired.Ours || have.Tags[desired.TagProfile] != want.Tags[desired.TagProfile]:
		return ListedDiffers
	case !adopted && have.Path != want.Path, open, !plan.Empty():
		// An adopted role keeps the path it had.
		return ListedDiffers
	case have.Detailed:
		return ListedMatches
	}
	return ListedRoleMatches
}
