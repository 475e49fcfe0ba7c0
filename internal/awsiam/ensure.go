package awsiam

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// Change is one write the operator made, for an Event and a metric.
type Change struct {
	// Reason is the UpperCamel event reason, such as RoleCreated.
	Reason string
	// Resource is the kind of resource written: oidc_provider, policy, role.
	Resource string
	// Action is the kind of write: create, update, delete, attach, detach.
	Action string
	// Message is a sentence naming the resource.
	Message string
}

// Unsupported lists calls skipped because the endpoint lacks them; set on
// results so callers can say what could not be verified.
type Unsupported []string

// OIDCProviderResult is the outcome of EnsureOIDCProvider.
type OIDCProviderResult struct {
	ARN     string
	Created bool
	// External is true when the provider exists but was not created by the
	// operator: it is used as is.
	External bool
	// ClientIDs are the audiences the provider accepts, as read or created.
	ClientIDs []string
	Changes   []Change
}

// EnsureOIDCProvider makes sure an OIDC provider exists for want.URL. One the
// operator did not create is used but never changed; it must already trust
// the sts.amazonaws.com client ID. createdBefore says the operator's records
// show it created this provider (for endpoints that drop provider tags).
func (c *Client) EnsureOIDCProvider(ctx context.Context, want desired.OIDCProvider, owner desired.Owner, createdBefore bool) (OIDCProviderResult, error) {
	have, err := c.GetOIDCProvider(ctx, want.ARN)
	if IsNotFound(err) {
		arn, err := c.CreateOIDCProvider(ctx, want)
		if IsAlreadyExists(err) {
			return OIDCProviderResult{}, fmt.Errorf("OIDC provider %s: %w", want.ARN, ErrPropagating)
		}
		if err != nil {
			return OIDCProviderResult{}, err
		}
		return OIDCProviderResult{ARN: arn, Created: true, ClientIDs: want.ClientIDs, Changes: []Change{{
			Reason: "OIDCProviderCreated", Resource: "oidc_provider", Action: "create",
			Message: fmt.Sprintf("Created IAM OIDC provider %s for client ID %s", arn, policy.Audience),
		}}}, nil
	}
	if err != nil {
		return OIDCProviderResult{}, err
	}
	res := OIDCProviderResult{ARN: have.ARN, Created: true, ClientIDs: have.ClientIDs}
	if desired.OwnershipOf(have.Tags, owner) == desired.Orphaned {
		switch err := c.TagOIDCProvider(ctx, have.ARN, owner.Tags(have.Tags)); {
		case err == nil:
			res.Changes = append(res.Changes, takeOver("oidc_provider", "IAM OIDC provider", have.ARN, have.Tags[desired.TagOwner], owner.Name))
		case !IsUnsupported(err):
			return res, err
		}
	} else if !ownsProvider(have, owner, createdBefore) {
		if !slices.Contains(have.ClientIDs, policy.Audience) {
			return OIDCProviderResult{ARN: have.ARN, External: true, ClientIDs: have.ClientIDs}, fmt.Errorf(
				"%w: OIDC provider %s was not created by this operator and lacks client ID %s; add it with `aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn %s --client-id %s`",
				ErrClientIDMissing, have.ARN, policy.Audience, have.ARN, policy.Audience)
		}
		return OIDCProviderResult{ARN: have.ARN, External: true, ClientIDs: have.ClientIDs}, nil
	}
	if len(want.Thumbprints) > 0 && !sameSet(have.Thumbprints, want.Thumbprints) {
		if err := c.UpdateOIDCProviderThumbprints(ctx, have.ARN, want.Thumbprints); err != nil {
			return res, err
		}
		res.Changes = append(res.Changes, Change{
			Reason: "OIDCProviderUpdated", Resource: "oidc_provider", Action: "update",
			Message: fmt.Sprintf("Updated the thumbprints of IAM OIDC provider %s", have.ARN),
		})
	}
	return res, nil
}

// ownsProvider reports whether the operator created the provider: its tags
// say so or, for a provider with no tags at all (kumo keeps none), the
// operator's own record of creating it does. A provider tagged by anyone
// else is never taken for the operator's.
func ownsProvider(have *OIDCProvider, owner desired.Owner, createdBefore bool) bool {
	return owns(have.Tags, owner) || (createdBefore && len(have.Tags) == 0)
}

// owns reports whether the owner may change or delete a resource with these
// tags: it created or adopted it, or took it over from an object of the same
// cluster that is gone.
func owns(tags map[string]string, owner desired.Owner) bool {
	o := desired.OwnershipOf(tags, owner)
	return o == desired.Ours || o == desired.Orphaned
}

// takeOver is the change of taking over a resource an object that is gone
// left behind.
func takeOver(resource, what, arn, from, to string) Change {
	return Change{
		Reason: "TakenOver", Resource: resource, Action: "tag",
		Message: fmt.Sprintf("Took over %s %s, which the deleted AwsKubeflowProfiles %s of this cluster left behind; it is now managed by %s", what, arn, from, to),
	}
}

// ErrClientIDMissing marks an external OIDC provider that does not accept
// tokens for the sts.amazonaws.com audience.
var ErrClientIDMissing = errors.New("OIDC provider lacks the sts.amazonaws.com client ID")

// PolicyResult is the outcome of EnsureManagedPolicy.
type PolicyResult struct {
	ARN     string
	Changes []Change
	// DocumentUnverified is true when the endpoint cannot return policy
	// versions, so drift of the document cannot be detected.
	DocumentUnverified bool
}

// EnsureManagedPolicy makes sure the managed policy exists with want's
// document. A policy of that name the operator did not create is refused.
func (c *Client) EnsureManagedPolicy(ctx context.Context, want desired.ManagedPolicy, owner desired.Owner) (PolicyResult, error) {
	have, err := c.GetPolicy(ctx, want.ARN)
	if IsNotFound(err) {
		arn, err := c.CreatePolicy(ctx, want)
		if IsAlreadyExists(err) {
			return PolicyResult{}, fmt.Errorf("policy %s: %w", want.ARN, ErrPropagating)
		}
		if err != nil {
			return PolicyResult{}, err
		}
		return PolicyResult{ARN: arn, Changes: []Change{{
			Reason: "PolicyCreated", Resource: "policy", Action: "create",
			Message: fmt.Sprintf("Created IAM policy %s", arn),
		}}}, nil
	}
	if err != nil {
		return PolicyResult{}, err
	}
	res := PolicyResult{ARN: have.ARN}
	switch desired.OwnershipOf(have.Tags, owner) {
	case desired.Orphaned:
		switch err := c.TagPolicy(ctx, have.ARN, owner.Tags(have.Tags)); {
		case err == nil:
			res.Changes = append(res.Changes, takeOver("policy", "IAM policy", have.ARN, have.Tags[desired.TagOwner], owner.Name))
		case !IsUnsupported(err):
			return res, err
		}
	case desired.Foreign, desired.OtherOwner:
		return PolicyResult{ARN: have.ARN}, fmt.Errorf(
			"%w: IAM policy %s exists and was not created by this operator for this AwsKubeflowProfiles of cluster %s; delete it or set spec.profileController.policyName to another name",
			ErrNotOwned, have.ARN, owner.Cluster)
	}
	if have.Document == nil {
		res.DocumentUnverified = true
		return res, nil
	}
	if !policy.Equal(*have.Document, want.Document) {
		if err := c.UpdatePolicyDocument(ctx, have.ARN, want.Document); err != nil {
			return res, err
		}
		res.Changes = append(res.Changes, Change{
			Reason: "PolicyUpdated", Resource: "policy", Action: "update",
			Message: fmt.Sprintf("Set a new default version of IAM policy %s", have.ARN),
		})
	}
	return res, nil
}

// RoleResult is the outcome of EnsureRole.
type RoleResult struct {
	ARN     string
	Created bool
	Adopted bool
	Changes []Change
	// Skipped lists writes the endpoint does not support.
	Skipped Unsupported
	// OpenTrust is set when the role was found trusting a principal other
	// than its identity, such as every service account of the cluster, as
	// Kubeflow's revoke leaves it; nil when the trust admitted no one else.
	OpenTrust *policy.Foreign
}

// RolePlan is the minimal set of writes that makes a role match its spec.
type RolePlan struct {
	UpdateTrust    bool
	UpdateSettings bool
	// SetBoundary is the boundary to put ("" deletes it); nil leaves it.
	SetBoundary  *string
	Tags         map[string]string
	Attach       []string
	Detach       []string
	PutInline    []string
	DeleteInline []string
}

// Empty reports whether the plan makes no write.
func (p RolePlan) Empty() bool {
	return !p.UpdateTrust && !p.UpdateSettings && p.SetBoundary == nil && len(p.Tags) == 0 &&
		len(p.Attach) == 0 && len(p.Detach) == 0 && len(p.PutInline) == 0 && len(p.DeleteInline) == 0
}

// defaultMaxSessionDuration is what IAM uses when a role sets none.
const defaultMaxSessionDuration = 3600

// PlanRole compares an observed role with its spec, semantically.
func PlanRole(have Role, attached []string, inline map[string]policy.Document, want desired.Role) RolePlan {
	plan := RolePlan{
		UpdateTrust: !policy.Equal(have.Trust, want.Trust),
		Tags:        missingTags(have.Tags, want.Tags),
	}
	wantSession := want.MaxSessionDuration
	if wantSession == 0 {
		wantSession = defaultMaxSessionDuration
	}
	haveSession := have.MaxSessionDuration
	if haveSession == 0 {
		haveSession = defaultMaxSessionDuration
	}
	plan.UpdateSettings = have.Description != want.Description || haveSession != wantSession
	if have.PermissionsBoundaryARN != want.PermissionsBoundaryARN {
		b := want.PermissionsBoundaryARN
		plan.SetBoundary = &b
	}
	planPolicies(&plan, attached, inline, want)
	return plan
}

// planPolicies adds to plan the attachments and inline policies that differ.
func planPolicies(plan *RolePlan, attached []string, inline map[string]policy.Document, want desired.Role) {
	for _, arn := range want.ManagedPolicyARNs {
		if !slices.Contains(attached, arn) {
			plan.Attach = append(plan.Attach, arn)
		}
	}
	for _, arn := range attached {
		if !slices.Contains(want.ManagedPolicyARNs, arn) {
			plan.Detach = append(plan.Detach, arn)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want.InlinePolicies)) {
		if cur, ok := inline[name]; !ok || !policy.Equal(cur, want.InlinePolicies[name]) {
			plan.PutInline = append(plan.PutInline, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(inline)) {
		if _, ok := want.InlinePolicies[name]; !ok {
			plan.DeleteInline = append(plan.DeleteInline, name)
		}
	}
}

// Adoption says whether EnsureRole may take over a role of the desired name
// that the operator did not create.
type Adoption struct {
	// Allowed lets the role be managed from now on; it is tagged as adopted
	// and never deleted by the operator.
	Allowed bool
	// RemoveUnlisted lets the first adoption remove what the spec does not
	// list. Without it, an adoption that would remove anything (another
	// principal from the trust, a managed or inline policy, a permissions
	// boundary) writes nothing and reports what it would remove.
	RemoveUnlisted bool
}

// ErrAdoptionWouldRemove marks an adoption that was not made because it
// would remove what the spec does not list.
var ErrAdoptionWouldRemove = errors.New("adoption would remove permissions the spec does not list")

// CreateOrEnsureRole is EnsureRole for a role believed not to exist yet,
// such as a new profile's: it creates the role first, so a new role costs
// no read, and only a role that exists after all is read and ensured.
func (c *Client) CreateOrEnsureRole(ctx context.Context, want desired.Role, owner desired.Owner, adopt Adoption) (RoleResult, error) {
	arn, err := c.CreateRole(ctx, want)
	switch {
	case IsAlreadyExists(err):
		return c.EnsureRole(ctx, want, owner, adopt)
	case err != nil:
		return RoleResult{}, err
	}
	return c.completeCreated(ctx, want, arn)
}

// completeCreated writes what creating a role leaves to write: its policies.
func (c *Client) completeCreated(ctx context.Context, want desired.Role, arn string) (RoleResult, error) {
	res := RoleResult{ARN: arn, Created: true}
	res.Changes = append(res.Changes, Change{
		Reason: "RoleCreated", Resource: "role", Action: "create",
		Message: fmt.Sprintf("Created IAM role %s trusting %s", arn, subjectsOf(want.Trust)),
	})
	have := Role{Name: want.Name, Path: want.Path, ARN: arn, Description: want.Description, Trust: want.Trust,
		PermissionsBoundaryARN: want.PermissionsBoundaryARN, MaxSessionDuration: want.MaxSessionDuration, Tags: want.Tags}
	return c.applyRolePlan(ctx, res, want, PlanRole(have, nil, nil, want))
}

// rolePolicies reads the managed and inline policies of a role.
func (c *Client) rolePolicies(ctx context.Context, name string) ([]string, map[string]policy.Document, error) {
	attached, err := c.AttachedPolicies(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	inline, err := c.InlinePolicies(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	return attached, inline, nil
}

// RoleMatches reports, reading only, whether a role is this owner's for
// want's profile and exactly as want says: trust, settings, tags, boundary
// and policies.
func (c *Client) RoleMatches(ctx context.Context, want desired.Role, owner desired.Owner) (bool, error) {
	have, err := c.GetRole(ctx, want.Name)
	if IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	attached, inline, err := c.rolePolicies(ctx, want.Name)
	if err != nil {
		return false, err
	}
	l := Listing{Roles: map[string]ListedRole{want.Name: {Role: *have, Detailed: true, Attached: attached, Inline: inline}}}
	return l.Judge(want.Name, want, owner) == ListedMatches, nil
}

// PoliciesMatch reports whether a role's managed and inline policies are
// exactly its spec's, reading only them: what a listing of roles leaves
// out.
func (c *Client) PoliciesMatch(ctx context.Context, want desired.Role) (bool, error) {
	attached, inline, err := c.rolePolicies(ctx, want.Name)
	if IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var plan RolePlan
	planPolicies(&plan, attached, inline, want)
	return plan.Empty(), nil
}

// EnsureRole makes sure a role exists with exactly want's trust, settings
// and permissions, writing only what differs. Whose the role is, is decided
// before any write: a role of that name another object manages is refused;
// one the operator did not create is refused unless adopt allows it; one a
// deleted object of this cluster left behind is taken over.
func (c *Client) EnsureRole(ctx context.Context, want desired.Role, owner desired.Owner, adopt Adoption) (RoleResult, error) {
	have, err := c.GetRole(ctx, want.Name)
	res := RoleResult{}
	switch {
	case IsNotFound(err):
		arn, err := c.CreateRole(ctx, want)
		if IsAlreadyExists(err) {
			return res, fmt.Errorf("role %s: %w", want.Name, ErrPropagating)
		}
		if err != nil {
			return res, err
		}
		return c.completeCreated(ctx, want, arn)
	case err != nil:
		return res, err
	}
	res.ARN = have.ARN
	ownership := desired.OwnershipOf(have.Tags, owner)
	switch ownership {
	case desired.OtherOwner:
		return res, fmt.Errorf(
			"%w: IAM role %s is managed by AwsKubeflowProfiles %s of cluster %s; a role has one owner, so remove the profile from one of them or choose another role name",
			ErrNotOwned, have.ARN, have.Tags[desired.TagOwner], have.Tags[desired.TagCluster])
	case desired.Foreign:
		if !adopt.Allowed {
			return res, fmt.Errorf(
				"%w: IAM role %s exists and was not created by this operator for %s; delete or rename it, choose another role name, or set adoptExisting to let the operator manage it",
				ErrNotOwned, have.ARN, owner.Name)
		}
	}
	if profile, want := have.Tags[desired.TagProfile], want.Tags[desired.TagProfile]; profile != "" && profile != want {
		// The role belongs to another profile of this object, typically a
		// retained one whose notebooks still use it: re-trusting it for
		// this profile would cut them off.
		return res, fmt.Errorf("%w: IAM role %s belongs to profile %q, not %q; set a distinct spec.profiles[].roleName",
			ErrNotOwned, have.ARN, profile, want)
	}
	adopting := ownership == desired.Foreign
	res.Adopted = adopting || desired.Adopted(have.Tags)
	if !res.Adopted && have.Path != want.Path {
		return res, fmt.Errorf(
			"%w: IAM role %s is at path %s but the spec asks for %s, and IAM cannot move a role; restore spec.iam.rolePath or delete the role so the operator recreates it",
			ErrPathMismatch, have.ARN, have.Path, want.Path)
	}
	attached, inline, err := c.rolePolicies(ctx, want.Name)
	if err != nil {
		return res, err
	}
	if f, open := want.Identity.OpenTo(have.Trust); open {
		res.OpenTrust = &f
	}
	if adopting && !adopt.RemoveUnlisted {
		if removed := adoptionRemovals(*have, PlanRole(*have, attached, inline, want), res.OpenTrust); len(removed) > 0 {
			return res, fmt.Errorf(
				"%w: adopting IAM role %s would remove %s; nothing was changed: list them in the profile's spec to keep them, or set removeUnlistedOnAdoption: true on the profile to let the adoption remove them",
				ErrAdoptionWouldRemove, have.ARN, strings.Join(removed, "; "))
		}
	}
	if adopting || ownership == desired.Orphaned {
		tags := owner.Tags(want.Tags)
		if res.Adopted {
			tags[desired.TagAdopted] = "true"
		}
		if err := c.TagRole(ctx, want.Name, tags); err != nil {
			return res, err
		}
		if adopting {
			res.Changes = append(res.Changes, Change{
				Reason: "RoleAdopted", Resource: "role", Action: "tag",
				Message: fmt.Sprintf("Adopted IAM role %s as the spec asks; it will never be deleted by the operator", have.ARN),
			})
		} else {
			res.Changes = append(res.Changes, takeOver("role", "IAM role", have.ARN, have.Tags[desired.TagOwner], owner.Name))
		}
		maps.Copy(have.Tags, tags)
	}
	return c.applyRolePlan(ctx, res, want, PlanRole(*have, attached, inline, want))
}

// adoptionRemovals lists what applying plan to an adopted role would take
// away from it.
func adoptionRemovals(have Role, plan RolePlan, open *policy.Foreign) []string {
	var out []string
	if plan.UpdateTrust && open != nil {
		out = append(out, "its trust of "+open.String())
	}
	if len(plan.Detach) > 0 {
		out = append(out, fmt.Sprintf("managed policies %s", strings.Join(plan.Detach, ", ")))
	}
	if len(plan.DeleteInline) > 0 {
		out = append(out, fmt.Sprintf("inline policies %s, which cannot be recovered once deleted", strings.Join(plan.DeleteInline, ", ")))
	}
	if plan.SetBoundary != nil && have.PermissionsBoundaryARN != "" {
		out = append(out, "permissions boundary "+have.PermissionsBoundaryARN)
	}
	return out
}

// ErrPathMismatch marks a role whose IAM path differs from the spec.
var ErrPathMismatch = errors.New("role path differs from the spec")

func (c *Client) applyRolePlan(ctx context.Context, res RoleResult, want desired.Role, plan RolePlan) (RoleResult, error) {
	name := want.Name
	change := func(reason, action, format string, args ...any) {
		res.Changes = append(res.Changes, Change{Reason: reason, Resource: "role", Action: action, Message: fmt.Sprintf(format, args...)})
	}
	skip := func(err error) bool {
		if errors.Is(err, ErrUnsupported) || IsUnsupported(err) {
			res.Skipped = append(res.Skipped, err.Error())
			return true
		}
		return false
	}
	if plan.UpdateTrust && !res.Created {
		if err := c.UpdateTrust(ctx, name, want.Trust); err != nil {
			if res.OpenTrust != nil {
				return res, fmt.Errorf("IAM role %s admits %s, not only %s, and restoring its trust failed: %w", name, res.OpenTrust, want.Identity.Subject, err)
			}
			return res, err
		}
		if res.OpenTrust != nil {
			change("TrustPolicyRestored", "update", "IAM role %s admitted %s; restored it to trust exactly %s", name, res.OpenTrust, subjectsOf(want.Trust))
		} else {
			change("TrustPolicyUpdated", "update", "Updated the trust policy of IAM role %s to trust exactly %s", name, subjectsOf(want.Trust))
		}
	}
	if plan.UpdateSettings && !res.Created {
		if err := c.UpdateRoleSettings(ctx, name, want.Description, max(want.MaxSessionDuration, defaultMaxSessionDuration)); err != nil && !skip(err) {
			return res, err
		}
		change("RoleUpdated", "update", "Updated the description and maximum session duration of IAM role %s", name)
	}
	if plan.SetBoundary != nil && !res.Created {
		err := c.SetPermissionsBoundary(ctx, name, *plan.SetBoundary)
		switch {
		case err == nil:
			change("PermissionsBoundaryUpdated", "update", "Set the permissions boundary of IAM role %s to %q", name, *plan.SetBoundary)
		case !skip(err):
			return res, err
		}
	}
	if len(plan.Tags) > 0 && !res.Created {
		if err := c.TagRole(ctx, name, plan.Tags); err != nil {
			return res, err
		}
		change("RoleTagged", "tag", "Tagged IAM role %s with %v", name, slices.Sorted(maps.Keys(plan.Tags)))
	}
	for _, arn := range plan.Attach {
		if err := c.AttachPolicy(ctx, name, arn); err != nil {
			if IsNotFound(err) {
				return res, fmt.Errorf("%w: managed policy %s does not exist; create it or remove it from the spec", ErrInvalidPolicy, arn)
			}
			return res, err
		}
		change("PolicyAttached", "attach", "Attached managed policy %s to IAM role %s", arn, name)
	}
	for _, arn := range plan.Detach {
		if err := c.DetachPolicy(ctx, name, arn); err != nil {
			return res, err
		}
		change("PolicyDetached", "detach", "Detached managed policy %s from IAM role %s", arn, name)
	}
	for _, p := range plan.PutInline {
		if err := c.PutInlinePolicy(ctx, name, p, want.InlinePolicies[p]); err != nil {
			return res, err
		}
		change("InlinePolicyPut", "update", "Put inline policy %s on IAM role %s", p, name)
	}
	for _, p := range plan.DeleteInline {
		if err := c.DeleteInlinePolicy(ctx, name, p); err != nil {
			return res, err
		}
		change("InlinePolicyDeleted", "delete", "Deleted inline policy %s of IAM role %s", p, name)
	}
	return res, nil
}

// ErrInvalidPolicy marks a managed policy ARN that IAM does not know.
var ErrInvalidPolicy = errors.New("managed policy not found")

// DeleteOwnedRole detaches and deletes the policies of a role the operator
// created, then the role. A role it did not create, or adopted, or created
// for a profile other than profile (when profile is not ""), is refused; a
// missing role is not an error.
func (c *Client) DeleteOwnedRole(ctx context.Context, name string, owner desired.Owner, profile string) ([]Change, error) {
	have, err := c.GetRole(ctx, name)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !owns(have.Tags, owner) || desired.Adopted(have.Tags) {
		return nil, fmt.Errorf("%w: refusing to delete IAM role %s", ErrNotOwned, have.ARN)
	}
	if profile != "" && have.Tags[desired.TagProfile] != profile {
		return nil, fmt.Errorf("%w: refusing to delete IAM role %s, which is not profile %s's", ErrNotOwned, have.ARN, profile)
	}
	// IAM refuses to delete a role that is in an instance profile, and only
	// after its policies were taken away: look first, so that a role that
	// cannot go is left whole.
	profiles, err := c.InstanceProfiles(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(profiles) > 0 {
		return nil, fmt.Errorf("%w: IAM role %s is in instance profile(s) %s, which this operator did not create and will not change; remove it with `aws iam remove-role-from-instance-profile --role-name %s --instance-profile-name <name>`",
			ErrDeleteBlocked, have.ARN, strings.Join(profiles, ", "), name)
	}
	attached, err := c.AttachedPolicies(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, arn := range attached {
		if err := c.DetachPolicy(ctx, name, arn); err != nil {
			return nil, err
		}
	}
	inline, err := c.InlinePolicies(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, p := range slices.Sorted(maps.Keys(inline)) {
		if err := c.DeleteInlinePolicy(ctx, name, p); err != nil {
			return nil, err
		}
	}
	if err := c.DeleteRole(ctx, name); err != nil {
		if IsDeleteConflict(err) {
			return nil, fmt.Errorf("%w: IAM refuses to delete role %s because something still uses it: %w", ErrDeleteBlocked, have.ARN, err)
		}
		return nil, err
	}
	return []Change{{Reason: "RoleDeleted", Resource: "role", Action: "delete", Message: fmt.Sprintf("Deleted IAM role %s", have.ARN)}}, nil
}

// ErrDeleteBlocked marks a resource the deletion policy asks to delete that
// IAM will not delete until something outside the operator's reach lets go
// of it.
var ErrDeleteBlocked = errors.New("deletion blocked")

// ErrRoleGone marks a role that no longer exists.
var ErrRoleGone = errors.New("role does not exist")

// NeutraliseTrust makes a role the operator owns for profile trust no one
// (see policy.Identity.Neutralised), writing only when its trust admits
// someone. The role itself and its permissions stay. A missing role is
// ErrRoleGone; one the operator does not own, or owns for another profile,
// is refused.
func (c *Client) NeutraliseTrust(ctx context.Context, name string, id policy.Identity, owner desired.Owner, profile string) ([]Change, error) {
	have, err := c.GetRole(ctx, name)
	if IsNotFound(err) {
		return nil, fmt.Errorf("%w: %s", ErrRoleGone, name)
	}
	if err != nil {
		return nil, err
	}
	if !owns(have.Tags, owner) || have.Tags[desired.TagProfile] != profile {
		return nil, fmt.Errorf("%w: refusing to change the trust of IAM role %s, which is not profile %s's", ErrNotOwned, have.ARN, profile)
	}
	if id.AdmitsNoOne(have.Trust) {
		return nil, nil
	}
	if err := c.UpdateTrust(ctx, name, id.Neutralised()); err != nil {
		return nil, err
	}
	return []Change{{Reason: "TrustPolicyNeutralised", Resource: "role", Action: "update",
		Message: fmt.Sprintf("IAM role %s, kept by the deletion policy, now admits no one: its Kubeflow Profile is gone, and whoever next gets namespace %s must not inherit it", have.ARN, strings.TrimSuffix(strings.TrimPrefix(id.Subject, "system:serviceaccount:"), ":"+desired.KubeflowEditorServiceAccount))}}, nil
}

// DeleteOwnedPolicy deletes a managed policy the operator created; it must be
// detached from every role first. One it did not create is refused.
func (c *Client) DeleteOwnedPolicy(ctx context.Context, arn string, owner desired.Owner) ([]Change, error) {
	have, err := c.GetPolicy(ctx, arn)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !owns(have.Tags, owner) {
		return nil, fmt.Errorf("%w: refusing to delete IAM policy %s", ErrNotOwned, arn)
	}
	if err := c.DeletePolicy(ctx, arn); err != nil {
		return nil, err
	}
	return []Change{{Reason: "PolicyDeleted", Resource: "policy", Action: "delete", Message: fmt.Sprintf("Deleted IAM policy %s", arn)}}, nil
}

// DeleteOwnedOIDCProvider deletes an OIDC provider the operator created.
// createdBefore has the meaning of EnsureOIDCProvider's.
func (c *Client) DeleteOwnedOIDCProvider(ctx context.Context, arn string, owner desired.Owner, createdBefore bool) ([]Change, error) {
	have, err := c.GetOIDCProvider(ctx, arn)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !ownsProvider(have, owner, createdBefore) {
		return nil, fmt.Errorf("%w: refusing to delete OIDC provider %s", ErrNotOwned, arn)
	}
	if err := c.DeleteOIDCProvider(ctx, arn); err != nil {
		return nil, err
	}
	return []Change{{Reason: "OIDCProviderDeleted", Resource: "oidc_provider", Action: "delete", Message: fmt.Sprintf("Deleted IAM OIDC provider %s", arn)}}, nil
}

func subjectsOf(doc policy.Document) []string {
	var subs []string
	for _, s := range doc.Statement {
		for _, keys := range s.Condition {
			for k, v := range keys {
				if strings.HasSuffix(k, ":sub") {
					subs = append(subs, v...)
				}
			}
		}
	}
	return subs
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
