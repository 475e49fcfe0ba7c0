package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

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
}

// fresh reports whether unit was verified in IAM with the same desired state
// within the resync period, and returns the ARN it had. IAM has no watch, so
// the operator re-reads it once per resync period; in between, a spec change
// costs IAM calls only for the parts whose desired state changed.
func (r *Reconciler) fresh(s *scope, unit, hash string) (string, bool) {
	v, ok := r.verified.Load(string(s.cr.UID) + "/" + unit)
	if !ok {
		return "", false
	}
	ver := v.(verification)
	age := r.Clock.Now().UnixNano() - ver.at
	return ver.arn, ver.hash == hash && age >= 0 && age < r.ResyncPeriod.Nanoseconds()
}

func (r *Reconciler) markVerified(s *scope, unit, hash, arn string) {
	r.verified.Store(string(s.cr.UID)+"/"+unit, verification{hash: hash, arn: arn, at: r.Clock.Now().UnixNano()})
}

func (r *Reconciler) forget(s *scope, unit string) {
	r.verified.Delete(string(s.cr.UID) + "/" + unit)
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
