package controller

import (
	"context"
	"maps"
	"slices"

	v1alpha1 "github.com/awskubeflowprofiles/operator/api/v1alpha1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

// listRoles reads the roles under each path in bulk: their trust and
// settings from ListRoles, and, where the operator may call it, their
// policies, tags and boundaries from GetAccountAuthorizationDetails. Without
// the details, the listing still serves for the roles' own attributes.
func (r *Reconciler) listRoles(ctx context.Context, iamClient *awsiam.Client, paths []string) (awsiam.Listing, bool, error) {
	l := awsiam.Listing{Roles: map[string]awsiam.ListedRole{}}
	for _, path := range paths {
		part, err := iamClient.ListRoles(ctx, path)
		if awsiam.IsAccessDenied(err) && !r.listDenied.Swap(true) {
			ctrl.LoggerFrom(ctx).Info("Reading each role on its own, three calls a profile per resync: grant the operator iam:ListRoles to read the roles' trust in bulk", "error", err.Error())
		}
		if err != nil {
			return l, false, err
		}
		maps.Copy(l.Roles, part.Roles)
	}
	err := iamClient.AddDetails(ctx, l)
	switch {
	case err == nil, awsiam.IsUnsupported(err):
	case awsiam.IsAccessDenied(err):
		if !r.detailsDenied.Swap(true) {
			ctrl.LoggerFrom(ctx).Info("Reading each role's policies on its own, two calls a profile per resync: grant the operator iam:GetAccountAuthorizationDetails to read them in bulk", "error", err.Error())
		}
	default:
		ctrl.LoggerFrom(ctx).V(1).Info("Could not read the roles' details in bulk; reading them on their own", "error", err.Error())
	}
	return l, err == nil, nil
}

// listedAt is when an object's roles were last listed, and whether with
// their details.
type listedAt struct {
	at       int64 // unix nanoseconds
	detailed bool
}

// rolePaths are the distinct IAM paths of the roles of the valid profiles.
func rolePaths(profiles []desired.Profile) []string {
	paths := map[string]bool{}
	for _, p := range profiles {
		if p.Invalid == nil && p.Role.Path != "" {
			paths[p.Role.Path] = true
		}
	}
	return slices.Sorted(maps.Keys(paths))
}

// listForUnrecorded lists the object's roles in bulk when two or more of its
// profiles that can reach IAM have no verification on record, as after a
// restart or when an object is created: one call per 1000 roles instead of
// three per role. Profiles that keep failing stay unrecorded, so a listing
// is taken at most once per tenth of the resync period.
func (r *Reconciler) listForUnrecorded(ctx context.Context, s *scope) *awsiam.Listing {
	unrecorded := 0
	for _, p := range s.state.Profiles {
		if p.Invalid != nil || missingPolicyOf(s, p) != nil {
			continue
		}
		if _, ok := r.verified.Load(verificationKey(s, profileUnit(p.Name))); !ok {
			unrecorded++
		}
	}
	if unrecorded < 2 {
		return nil
	}
	now := r.Clock.Now().UnixNano()
	if last, ok := r.listed.Load(s.cr.UID); ok && now-last.(listedAt).at < r.ResyncPeriod.Nanoseconds()/10 {
		return nil
	}
	l, detailed, err := r.listRoles(ctx, s.iam, rolePaths(s.state.Profiles))
	if err != nil {
		ctrl.LoggerFrom(ctx).V(1).Info("Could not list the roles in bulk; reading them one by one", "error", err.Error())
		return nil
	}
	r.listed.Store(s.cr.UID, listedAt{at: now, detailed: detailed})
	return &l
}

// verifiedByListing takes a profile's role as verified from the pass's
// listing: a role that matches in full, or, after a restart, one whose own
// attributes match and that the status reported ready for this generation.
// The policies of the latter are checked by the verifier when its turn
// comes, within a resync period. A role verified before in this process
// whose record is gone was found to differ, or its spec changed: it is read
// whole.
func (r *Reconciler) verifiedByListing(s *scope, p desired.Profile, hash string) (string, bool) {
	if s.listing == nil {
		return "", false
	}
	listed := s.listing.Roles[p.Role.Name]
	switch s.listing.Judge(p.Role.Name, p.Role, s.owner()) {
	case awsiam.ListedMatches:
	case awsiam.ListedRoleMatches:
		if r.seenBefore(s, p) || !wasReady(s, p.Name, listed.ARN) {
			return "", false
		}
	default:
		return "", false
	}
	r.markRoleVerified(s, p, hash, listed.ARN)
	return listed.ARN, true
}

// wasReady reports whether the status, written for the current generation,
// has the profile ready with that role.
func wasReady(s *scope, name, roleARN string) bool {
	if s.cr.Status.ObservedGeneration != s.cr.Generation {
		return false
	}
	i := slices.IndexFunc(s.cr.Status.Profiles, func(st v1alpha1.ProfileStatus) bool { return st.Name == name })
	return i >= 0 && s.cr.Status.Profiles[i].Ready && s.cr.Status.Profiles[i].RoleARN == roleARN
}

// believedNew reports whether a profile's role is most likely not there
// yet: the status never had it, or the pass's listing does not show it. Such
// a role is created before it is read. A role the spec says to adopt is
// there by definition.
func believedNew(s *scope, p desired.Profile) bool {
	if p.AdoptExisting {
		return false
	}
	if s.listing != nil {
		_, listed := s.listing.Roles[p.Role.Name]
		return !listed
	}
	i := slices.IndexFunc(s.cr.Status.Profiles, func(st v1alpha1.ProfileStatus) bool { return st.Name == p.Name })
	return i < 0 || s.cr.Status.Profiles[i].RoleARN == ""
}
