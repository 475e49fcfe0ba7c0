package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
