package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

// verification is the desired state of one part that was last found, or
// made, true in IAM, and when.
type verification struct {
	hash string
	arn  string
	at   int64 // unix nanoseconds
	// role is set for a profile's role, which the background verifier
	// checks again once per resync period; see verifier.
	role *roleCheck
}

// roleCheck is what the verifier needs to check a profile's role on its
// own.
type roleCheck struct {
	object types.NamespacedName
	uid    types.UID
	region string
	owner  desired.Owner
	want   desired.Role
	// roleAt is when the role's own attributes (trust, settings, tags)
	// were last found true, by a listing or a full read; at is when its
	// policies were.
	roleAt int64
}

// fresh reports whether unit was verified in IAM with the same desired state
// within the resync period, and returns the ARN it had. IAM has no watch, so
// the operator re-reads it once per resync period; in between, a spec change
// costs IAM calls only for the parts whose desired state changed.
func (r *Reconciler) fresh(s *scope, unit, hash string) (string, bool) {
	ver, ok := r.current(s, unit, hash)
	if !ok {
		return "", false
	}
	age := r.Clock.Now().UnixNano() - ver.at
	return ver.arn, age >= 0 && age < r.ResyncPeriod.Nanoseconds()
}

// current returns the verification of unit if it was of the same desired
// state, however old.
func (r *Reconciler) current(s *scope, unit, hash string) (verification, bool) {
	v, ok := r.verified.Load(verificationKey(s, unit))
	if !ok || v.(verification).hash != hash {
		return verification{}, false
	}
	return v.(verification), true
}

func (r *Reconciler) markVerified(s *scope, unit, hash, arn string) {
	r.verified.Store(verificationKey(s, unit), verification{hash: hash, arn: arn, at: r.Clock.Now().UnixNano()})
}

// verificationKey names a part of an object in Reconciler.verified.
func verificationKey(s *scope, unit string) string { return string(s.cr.UID) + "/" + unit }

// profileUnit is the part of the role of a profile, by name.
func profileUnit(name string) string { return "profile/" + name }

// markRoleVerified records a profile's role as verified now. The first verification of a role in this
// process is dated back by a stable fraction of the resync period, so that
// the roles of an object created together come due one after another across
// the period rather than all at once. Its own attributes are not: the
// verifier's listing reads them for every role once a period, and a trust
// that differs shows in it whatever the endpoint leaves out.
func (r *Reconciler) markRoleVerified(s *scope, p desired.Profile, hash, arn string) {
	key := verificationKey(s, profileUnit(p.Name))
	roleAt := r.Clock.Now().UnixNano()
	at := roleAt
	if _, seen := r.seen.LoadOrStore(key, true); !seen {
		back := int64(spreadFraction(key) * float64(r.ResyncPeriod.Nanoseconds()))
		at -= back
	}
	// The owner without its Gone, which belongs to one pass.
	r.verified.Store(key, verification{hash: hash, arn: arn, at: at, role: &roleCheck{
		object: types.NamespacedName{Name: s.cr.Name}, uid: s.cr.UID, region: s.cr.Spec.Cluster.Region,
		owner: desired.Owner{Name: s.cr.Name, Cluster: s.cr.Spec.Cluster.Name}, want: p.Role, roleAt: roleAt,
	}})
}

// seenBefore reports whether a profile's role was verified before in this
// process: one whose record is gone was since found to differ or changed.
func (r *Reconciler) seenBefore(s *scope, p desired.Profile) bool {
	_, ok := r.seen.Load(verificationKey(s, profileUnit(p.Name)))
	return ok
}

// spreadFraction is a stable number in [0, 1) for key.
func spreadFraction(key string) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return float64(h.Sum64()>>11) / float64(1<<53)
}

func (r *Reconciler) forget(s *scope, unit string) {
	r.verified.Delete(verificationKey(s, unit))
}

// hashOf is a digest of a desired state; encoding/json writes map keys
// sorted, so equal states hash equal.
func hashOf(parts ...any) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, p := range parts {
		_ = enc.Encode(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// propagationWindow is how long after creating a policy or an OIDC provider
// IAM may still deny knowing it elsewhere.
const propagationWindow = 2 * time.Minute

// noteCreated remembers when the operator created an IAM resource.
func (r *Reconciler) noteCreated(arn string) {
	r.created.Store(arn, r.Clock.Now())
}

// recentlyCreated reports whether the operator created arn within the
// propagation window.
func (r *Reconciler) recentlyCreated(arn string) bool {
	v, ok := r.created.Load(arn)
	return ok && r.Clock.Since(v.(time.Time)) < propagationWindow
}

// propagationOf turns the errors IAM gives while a resource created moments
// ago is not yet visible everywhere (a role trusting a new OIDC provider is
// "malformed", a new policy "does not exist") into a wait, instead of a
// stall that would last until the next resync.
func (r *Reconciler) propagationOf(err error, arns ...string) error {
	for _, arn := range arns {
		if arn != "" && r.recentlyCreated(arn) &&
			(awsiam.Code(err) == "MalformedPolicyDocument" || errors.Is(err, awsiam.ErrInvalidPolicy) || awsiam.IsNotFound(err)) {
			return fmt.Errorf("%w: %s was created moments ago: %w", awsiam.ErrPropagating, arn, err)
		}
	}
	return err
}

// errPolicyMissing marks a profile that names a managed policy or a
// permissions boundary IAM does not know: nothing of it is written, since
// the role would be created and then fail to get its permissions.
var errPolicyMissing = fmt.Errorf("%w: named policy does not exist", awsiam.ErrInvalidPolicy)

// missingPolicyRecheck is how long a missing policy is believed missing:
// someone is expected to create it in IAM, which has no watch.
const missingPolicyRecheck = time.Minute

// policyCheck is whether a policy existed when it was last read.
type policyCheck struct {
	exists bool
	at     time.Time
}

// checkPolicies reads, once per distinct ARN, whether the managed policies
// and the permissions boundary the profiles name exist, before anything is
// written for them. Profiles share policies, so this costs a call per
// policy, not per profile, and a found policy is believed for the resync
// period; a missing one for missingPolicyRecheck. A read that fails for
// another reason (throttling, say) believes nothing: the write reports it.
func (r *Reconciler) checkPolicies(ctx context.Context, s *scope) map[string]bool {
	arns := map[string]bool{}
	for _, p := range s.state.Profiles {
		if p.Invalid != nil {
			continue
		}
		for _, arn := range p.Role.ManagedPolicyARNs {
			arns[arn] = true
		}
		if p.Role.PermissionsBoundaryARN != "" {
			arns[p.Role.PermissionsBoundaryARN] = true
		}
	}
	missing := map[string]bool{}
	for _, arn := range slices.Sorted(maps.Keys(arns)) {
		if v, ok := r.policies.Load(arn); ok {
			c := v.(policyCheck)
			ttl := r.ResyncPeriod
			if !c.exists {
				ttl = missingPolicyRecheck
			}
			if r.Clock.Since(c.at) < ttl {
				missing[arn] = !c.exists
				continue
			}
		}
		exists, err := s.iam.PolicyExists(ctx, arn)
		if err != nil {
			ctrl.LoggerFrom(ctx).V(1).Info("Could not check that a managed policy exists", "policyARN", arn, "error", err.Error())
			continue
		}
		r.policies.Store(arn, policyCheck{exists: exists, at: r.Clock.Now()})
		missing[arn] = !exists
	}
	return missing
}

// missingPolicyOf names the first policy of p that IAM does not know.
func missingPolicyOf(s *scope, p desired.Profile) error {
	for _, arn := range p.Role.ManagedPolicyARNs {
		if s.missingPolicies[arn] {
			return fmt.Errorf("%w: managed policy %s does not exist; create it in IAM or remove it from the profile's managedPolicyARNs (or spec.profileDefaults); nothing is written for profile %s until then",
				errPolicyMissing, arn, p.Name)
		}
	}
	if arn := p.Role.PermissionsBoundaryARN; arn != "" && s.missingPolicies[arn] {
		return fmt.Errorf("%w: permissions boundary %s does not exist; create it in IAM or correct spec.iam.permissionsBoundaryARN; nothing is written for profile %s until then",
			errPolicyMissing, arn, p.Name)
	}
	return nil
}
