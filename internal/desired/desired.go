// Package desired turns an AwsKubeflowProfiles spec and a few facts about the
// cluster into the IAM and Kubernetes objects that should exist. It does no
// I/O: everything it returns is computed from its arguments, sorted, so that
// comparing it with what exists yields stable diffs.
package desired

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// ErrInvalidSpec marks a spec that cannot be applied. Nothing derived from it
// may be sent to AWS.
var ErrInvalidSpec = errors.New("invalid spec")

// MaxInlinePoliciesSize is IAM's limit on the total size of a role's inline
// policies, whitespace not counted.
const MaxInlinePoliciesSize = 10240

// ClusterFacts are what the spec may leave to discovery.
type ClusterFacts struct {
	// AccountID is the 12-digit account of the IAM resources.
	AccountID string
	// IssuerURL is the cluster's service-account issuer, https://...
	IssuerURL string
}

// State is everything the operator should make exist for one spec.
type State struct {
	Owner     Owner
	Partition string
	IssuerURL string

	OIDCProvider     OIDCProvider
	ControllerPolicy ManagedPolicy
	ControllerRole   Role
	// ControllerServiceAccount gets the role annotation.
	ControllerServiceAccount types.NamespacedName
	// ControllerDeployment is restarted when the annotation changes; nil when
	// restarts are turned off.
	ControllerDeployment *types.NamespacedName

	// Profiles are sorted by name.
	Profiles []Profile
}

// OIDCProvider is the IAM OIDC identity provider for the cluster's issuer.
type OIDCProvider struct {
	URL         string
	ARN         string
	ClientIDs   []string
	Thumbprints []string
	Tags        map[string]string
}

// ManagedPolicy is a customer managed IAM policy.
type ManagedPolicy struct {
	Name     string
	ARN      string
	Document policy.Document
	Tags     map[string]string
}

// Role is an IAM role with its trust and permissions.
type Role struct {
	Name        string
	Path        string
	ARN         string
	Description string
	// Identity is the one web identity the role is for; Trust admits it
	// and no one else.
	Identity               policy.Identity
	Trust                  policy.Document
	PermissionsBoundaryARN string
	// MaxSessionDuration in seconds; 0 leaves IAM's default of one hour.
	MaxSessionDuration int32
	// ManagedPolicyARNs are sorted.
	ManagedPolicyARNs []string
	// InlinePolicies by name.
	InlinePolicies map[string]policy.Document
	Tags           map[string]string
}

// Profile is one Kubeflow Profile and its role.
type Profile struct {
	// Invalid says why the profile's spec cannot be applied (wrapping
	// ErrInvalidSpec); the rest of the struct may then be incomplete.
	Invalid error

	Name              string
	Owner             v1alpha1.ProfileOwner
	ResourceQuotaSpec *corev1.ResourceQuotaSpec
	AdoptExisting     bool
	// RemoveUnlistedOnAdoption lets adopting an existing role remove what
	// the spec does not list.
	RemoveUnlistedOnAdoption bool
	Role                     Role
}

// Build computes the desired state of the AwsKubeflowProfiles named name.
// Errors wrap ErrInvalidSpec and name the field to fix.
func Build(name string, spec v1alpha1.AwsKubeflowProfilesSpec, facts ClusterFacts) (State, error) {
	if !accountPattern(facts.AccountID) {
		return State{}, fmt.Errorf("%w: account ID %q is not 12 digits", ErrInvalidSpec, facts.AccountID)
	}
	issuer, err := NormalizeIssuer(facts.IssuerURL)
	if err != nil {
		return State{}, err
	}
	owner := Owner{Name: name, Cluster: spec.Cluster.Name}
	arns := arnBuilder{partition: Partition(spec.Cluster.Region), account: facts.AccountID}
	tags := func(extra ...string) map[string]string {
		t := OwnershipTags(owner, spec.IAM.Tags)
		for i := 0; i+1 < len(extra); i += 2 {
			t[extra[i]] = extra[i+1]
		}
		return t
	}
	quotas := quotasOf(spec.IAM.Quotas)

	st := State{Owner: owner, Partition: arns.partition, IssuerURL: issuer}
	st.OIDCProvider = OIDCProvider{
		URL:         issuer,
		ARN:         arns.oidcProvider(issuer),
		ClientIDs:   []string{policy.Audience},
		Thumbprints: sortedCopy(spec.OIDCProvider.Thumbprints),
		Tags:        tags(),
	}

	rolePath := spec.IAM.RolePath
	if rolePath == "" {
		rolePath = DefaultRolePath(spec.Cluster.Name)
	}
	if !strings.Contains(rolePath, "/"+spec.Cluster.Name+"/") {
		return State{}, fmt.Errorf("%w: spec.iam.rolePath %q must contain the cluster name as a path segment, such as %s: the profile controller may edit the trust of every role under it, so a path shared with another cluster would let it edit that cluster's roles",
			ErrInvalidSpec, rolePath, DefaultRolePath(spec.Cluster.Name))
	}

	pc := spec.ProfileController
	policyName := defaultString(pc.PolicyName, ControllerPolicyName(spec.Cluster.Name))
	st.ControllerPolicy = ManagedPolicy{
		Name:     policyName,
		ARN:      arns.policy(policyName),
		Document: ControllerPolicyDocument(spec.Cluster.Name, arns.rolePattern(rolePath)),
		Tags:     tags(),
	}
	sa := types.NamespacedName{
		Namespace: defaultString(pc.ServiceAccount.Namespace, "kubeflow"),
		Name:      defaultString(pc.ServiceAccount.Name, "profiles-controller-service-account"),
	}
	st.ControllerServiceAccount = sa
	roleName := defaultString(pc.RoleName, ControllerRoleName(spec.Cluster.Name))
	controllerIdentity := policy.Identity{ProviderARN: st.OIDCProvider.ARN, Issuer: issuer, Subject: policy.ServiceAccountSubject(sa.Namespace, sa.Name)}
	st.ControllerRole = Role{
		Name:                   roleName,
		Path:                   "/",
		ARN:                    arns.role("/", roleName),
		Description:            fmt.Sprintf("IRSA of Kubeflow's profile controller (%s) in EKS cluster %s", sa, spec.Cluster.Name),
		Identity:               controllerIdentity,
		Trust:                  controllerIdentity.Trust(),
		PermissionsBoundaryARN: spec.IAM.PermissionsBoundaryARN,
		ManagedPolicyARNs:      []string{st.ControllerPolicy.ARN},
		InlinePolicies:         map[string]policy.Document{},
		Tags:                   tags(),
	}
	if err := checkTrustSize(st.ControllerRole, quotas, "spec.profileController"); err != nil {
		return State{}, err
	}
	if pc.RestartOnRoleChange == nil || *pc.RestartOnRoleChange {
		st.ControllerDeployment = &types.NamespacedName{
			Namespace: defaultString(pc.Deployment.Namespace, "kubeflow"),
			Name:      defaultString(pc.Deployment.Name, "profiles-deployment"),
		}
	}

	// A profile that cannot be applied is marked, not fatal: the other
	// profiles go ahead, and nothing of the marked one reaches AWS.
	usedBy := map[string][]int{}
	for i, p := range spec.Profiles {
		field := fmt.Sprintf("spec.profiles[%d] (%s)", i, p.Name)
		prof, err := buildProfile(p, spec, field, quotas, func(role *Role) {
			role.Path = rolePath
			role.ARN = arns.role(rolePath, role.Name)
			role.Identity = policy.Identity{ProviderARN: st.OIDCProvider.ARN, Issuer: issuer, Subject: policy.ServiceAccountSubject(p.Name, KubeflowEditorServiceAccount)}
			role.Trust = role.Identity.Trust()
			role.Tags = tags(TagProfile, p.Name)
		})
		prof.Invalid = err
		if prof.Role.Name == roleName {
			prof.Invalid = fmt.Errorf("%w: %s would use role name %q, the profile controller's; set spec.profiles[].roleName", ErrInvalidSpec, field, roleName)
		}
		usedBy[prof.Role.Name] = append(usedBy[prof.Role.Name], len(st.Profiles))
		st.Profiles = append(st.Profiles, prof)
	}
	for name, idx := range usedBy {
		if len(idx) < 2 || name == "" {
			continue
		}
		var names []string
		for _, i := range idx {
			names = append(names, st.Profiles[i].Name)
		}
		for _, i := range idx {
			st.Profiles[i].Invalid = fmt.Errorf("%w: profiles %s would share role name %q; set a distinct spec.profiles[].roleName",
				ErrInvalidSpec, strings.Join(names, " and "), name)
		}
	}
	slices.SortFunc(st.Profiles, func(a, b Profile) int { return strings.Compare(a.Name, b.Name) })
	return st, nil
}

// KubeflowEditorServiceAccount is the service account that Kubeflow runs
// notebooks and pipelines as in a profile namespace.
const KubeflowEditorServiceAccount = "default-editor"

// RoleARNAnnotation is the service account annotation that the EKS pod
// identity webhook turns into a pod's AWS_ROLE_ARN and token.
const RoleARNAnnotation = "eks.amazonaws.com/role-arn"

// ControllerPolicyDocument allows the profile controller to read roles and
// edit their trust, only for roles matching rolePattern, and never for a
// role the operator tagged for another cluster: a role path nested under
// this cluster's (/kubeflow/a/b/ under /kubeflow/a/) stays out of reach.
// Roles without the tag, which Profiles the operator does not manage may
// name, remain in reach under the path.
func ControllerPolicyDocument(cluster, rolePattern string) policy.Document {
	return policy.Document{
		Version: policy.Version2012,
		Statement: []policy.Statement{{
			Sid:      "EditProfileRoleTrust",
			Effect:   policy.Allow,
			Action:   policy.Values{"iam:GetRole", "iam:UpdateAssumeRolePolicy"},
			Resource: policy.Values{rolePattern},
			Condition: policy.Conditions{
				"StringEqualsIfExists": {"aws:ResourceTag/" + TagCluster: policy.Values{cluster}},
			},
		}},
	}
}

// NormalizeIssuer is an OIDC issuer as IAM and the trust policies name it:
// the scheme and host in lower case and no trailing slash, so an issuer
// written as a cluster's discovery document reports it (with a trailing
// slash, say) names the same OIDC provider. A query or fragment is refused.
func NormalizeIssuer(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: OIDC issuer %q is not a URL: %v; set spec.cluster.oidcIssuerURL to the cluster's issuer", ErrInvalidSpec, raw, err)
	case !strings.EqualFold(u.Scheme, "https") || u.Host == "":
		return "", fmt.Errorf("%w: OIDC issuer %q is not an https URL with a host; set spec.cluster.oidcIssuerURL to the cluster's issuer", ErrInvalidSpec, raw)
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(raw, "?#"):
		return "", fmt.Errorf("%w: OIDC issuer %q has a query or fragment, which an issuer never has; remove it from spec.cluster.oidcIssuerURL", ErrInvalidSpec, raw)
	case u.User != nil:
		return "", fmt.Errorf("%w: OIDC issuer %q carries user information; remove it from spec.cluster.oidcIssuerURL", ErrInvalidSpec, raw)
	}
	return "https://" + strings.ToLower(u.Host) + strings.TrimRight(u.EscapedPath(), "/"), nil
}

func buildProfile(p v1alpha1.ProfileSpec, spec v1alpha1.AwsKubeflowProfilesSpec, field string, quotas v1alpha1.IAMQuotas, finish func(*Role)) (Profile, error) {
	defaults := spec.ProfileDefaults
	role := Role{
		Name:                   RoleNameOf(p, spec.Cluster.Name),
		Description:            fmt.Sprintf("Kubeflow profile %s in EKS cluster %s", p.Name, spec.Cluster.Name),
		PermissionsBoundaryARN: spec.IAM.PermissionsBoundaryARN,
		ManagedPolicyARNs:      union(defaults.ManagedPolicyARNs, p.ManagedPolicyARNs),
		InlinePolicies:         map[string]policy.Document{},
	}
	if d := firstNonNil(p.MaxSessionDurationSeconds, defaults.MaxSessionDurationSeconds); d != nil {
		role.MaxSessionDuration = *d
	}
	base := Profile{Name: p.Name, Owner: p.Owner, Role: role}
	if n := len(role.ManagedPolicyARNs); n > int(quotas.ManagedPoliciesPerRole) {
		return base, fmt.Errorf("%w: %s would have %d managed policies attached, more than the quota of %d; remove some or raise spec.iam.quotas.managedPoliciesPerRole after raising the quota in Service Quotas",
			ErrInvalidSpec, field, n, quotas.ManagedPoliciesPerRole)
	}
	inline := map[string]v1alpha1.InlinePolicy{}
	for _, ip := range defaults.InlinePolicies {
		inline[ip.Name] = ip
	}
	for _, ip := range p.InlinePolicies {
		inline[ip.Name] = ip
	}
	size := 0
	for name, ip := range inline {
		doc, err := policy.Parse(string(ip.Document.Raw))
		if err != nil {
			return base, fmt.Errorf("%w: inline policy %q of %s: %v", ErrInvalidSpec, name, field, err)
		}
		role.InlinePolicies[name] = doc
		size += doc.Size()
	}
	if size > MaxInlinePoliciesSize {
		return base, fmt.Errorf("%w: the inline policies of %s total %d characters, more than IAM's %d per role; move permissions into managed policies",
			ErrInvalidSpec, field, size, MaxInlinePoliciesSize)
	}
	finish(&role)
	base.Role = role
	if err := checkTrustSize(role, quotas, field); err != nil {
		return base, err
	}
	quota := p.ResourceQuotaSpec
	if quota == nil && defaults.ResourceQuotaSpec != nil {
		quota = defaults.ResourceQuotaSpec.DeepCopy()
	}
	owner := p.Owner
	if owner.Kind == "" {
		owner.Kind = "User"
	}
	return Profile{Name: p.Name, Owner: owner, ResourceQuotaSpec: quota, AdoptExisting: p.AdoptExisting,
		RemoveUnlistedOnAdoption: p.RemoveUnlistedOnAdoption, Role: role}, nil
}

func checkTrustSize(role Role, quotas v1alpha1.IAMQuotas, field string) error {
	if n := role.Trust.Size(); n > int(quotas.RoleTrustPolicySize) {
		return fmt.Errorf("%w: the trust policy of role %s (%s) would be %d characters, more than the quota of %d; shorten the names or raise spec.iam.quotas.roleTrustPolicySize after raising the quota in Service Quotas",
			ErrInvalidSpec, role.Name, field, n, quotas.RoleTrustPolicySize)
	}
	return nil
}

func quotasOf(q v1alpha1.IAMQuotas) v1alpha1.IAMQuotas {
	if q.ManagedPoliciesPerRole == 0 {
		q.ManagedPoliciesPerRole = 10
	}
	if q.RoleTrustPolicySize == 0 {
		q.RoleTrustPolicySize = 2048
	}
	return q
}

// Partition is the AWS partition of a region.
func Partition(region string) string {
	for _, p := range []struct{ prefix, partition string }{
		{"cn-", "aws-cn"},
		{"us-gov-", "aws-us-gov"},
		{"us-isob-", "aws-iso-b"},
		{"us-isof-", "aws-iso-f"},
		{"eu-isoe-", "aws-iso-e"},
		{"us-iso-", "aws-iso"},
	} {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}

type arnBuilder struct{ partition, account string }

func (a arnBuilder) iam(resource string) string {
	return "arn:" + a.partition + ":iam::" + a.account + ":" + resource
}
func (a arnBuilder) oidcProvider(issuer string) string {
	return a.iam("oidc-provider/" + policy.IssuerHost(issuer))
}
func (a arnBuilder) policy(name string) string      { return a.iam("policy/" + name) }
func (a arnBuilder) role(path, name string) string  { return a.iam("role" + path + name) }
func (a arnBuilder) rolePattern(path string) string { return a.iam("role" + path + "*") }

func accountPattern(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func defaultString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func firstNonNil[T any](v ...*T) *T {
	for _, p := range v {
		if p != nil {
			return p
		}
	}
	return nil
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func union(a, b []string) []string {
	return sortedCopy(append(slices.Clone(a), b...))
}
