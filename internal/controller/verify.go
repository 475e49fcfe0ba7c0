package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/awskubeflowprofiles/operator/internal/awsiam"
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
