package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// Reasons of a trust finding that are not an opening of the trust.
const (
	// TrustRoleMissing: the Profile names a role IAM does not have.
	TrustRoleMissing = "RoleMissing"
	// TrustCannotRead: the role could not be read (another account, or no
	// iam:GetRole for it).
	TrustCannotRead = "CannotRead"
)

// TrustTooWideReason is the Event reason of a new trust finding.
const TrustTooWideReason = "TrustTooWide"

// maxTrustFindings bounds the findings kept on the status; the count of
// checked Profiles and the metric cover the rest.
const maxTrustFindings = 100

// auditDue reports whether the trust audit of the object is due: it runs
// once per resync period, not on every pass an event causes. A pass a little
// early for the period (the resync requeue is not exact) still runs it.
func (r *Reconciler) auditDue(s *scope) bool {
	last := s.cr.Status.TrustAudit.CheckedAt
	return last == nil || r.Clock.Since(last.Time) >= r.ResyncPeriod*9/10
}

// auditTrust reads, and never writes, the role of every Profile with
// Kubeflow's AwsIamForServiceAccount plugin that no existing
// AwsKubeflowProfiles manages (retained ones of a deleted object included), and reports on the status, as a Warning Event and as a metric the
// roles whose trust admits more than the Profile's own default-editor through
// this cluster's OIDC provider. Roles this object manages are not audited
// here: every pass keeps their trust exact.
func (r *Reconciler) auditTrust(ctx context.Context, s *scope, profiles map[string]*unstructured.Unstructured) {
	if !r.auditDue(s) || s.state.OIDCProvider.ARN == "" {
		// A restarted operator shows what the last audit found until its own.
		if r.Metrics != nil {
			r.Metrics.setTrustFindings(s.cr.Name, s.cr.Status.TrustAudit.Findings)
		}
		return
	}
	previous := map[string]v1alpha1.TrustFinding{}
	for _, f := range s.cr.Status.TrustAudit.Findings {
		previous[f.Profile] = f
	}
	roles := map[string]string{} // Profile -> the role its plugin names
	for name, p := range profiles {
		// A Profile retained by an object since deleted is no one's: audit it.
		if owner := p.GetLabels()[desired.LabelOwner]; owner != "" && !s.isGone(owner) {
			continue
		}
		if roleARN, _, found := desired.ProfilePlugin(p); found {
			roles[name] = roleARN
		}
	}
	names := slices.Sorted(maps.Keys(roles))
	var findings []v1alpha1.TrustFinding
	for _, name := range names {
		f, ok, err := r.auditRole(ctx, s, name, roles[name])
		if err != nil {
			// A transient failure keeps what the last audit found.
			ctrl.LoggerFrom(ctx).V(1).Info("Could not audit the trust of a Profile's role; keeping the last finding", "profile", name, "role", roles[name], "error", err.Error())
			if last, had := previous[name]; had {
				findings = append(findings, last)
			}
			continue
		}
		if !ok {
			continue
		}
		findings = append(findings, f)
		if last, had := previous[name]; (!had || last.Reason != f.Reason || last.RoleARN != f.RoleARN) && r.Recorder != nil {
			r.Recorder.Eventf(s.cr, nil, corev1.EventTypeWarning, TrustTooWideReason, "AuditTrust", "Profile %s: %s", name, f.Message)
		}
	}
	if r.Metrics != nil {
		r.Metrics.setTrustFindings(s.cr.Name, findings)
	}
	if len(findings) > maxTrustFindings {
		findings = findings[:maxTrustFindings]
	}
	now := metav1.NewTime(r.Clock.Now().Truncate(time.Second))
	s.cr.Status.TrustAudit = v1alpha1.TrustAuditStatus{CheckedAt: &now, Profiles: int32(len(names)), Findings: findings}
}

// auditRole checks one Profile's role. It returns a finding and true for a
// role that admits more than it should or that cannot be checked, false for
// a closed one, and an error for a failure worth retrying.
func (r *Reconciler) auditRole(ctx context.Context, s *scope, profile, roleARN string) (v1alpha1.TrustFinding, bool, error) {
	f := v1alpha1.TrustFinding{Profile: profile, RoleARN: roleARN}
	parsed, err := arn.Parse(roleARN)
	if err != nil || parsed.Service != "iam" || !strings.HasPrefix(parsed.Resource, "role/") {
		f.Reason = TrustCannotRead
		f.Message = fmt.Sprintf("its plugin names %q, which is not an IAM role ARN; set spec.plugins[].spec.awsIamRole of the Profile to its role's ARN", roleARN)
		return f, true, nil
	}
	if parsed.AccountID != s.facts.AccountID {
		f.Reason = TrustCannotRead
		f.Message = fmt.Sprintf("role %s is in account %s, and the operator reads roles in its own account %s only; check its trust there", roleARN, parsed.AccountID, s.facts.AccountID)
		return f, true, nil
	}
	name := parsed.Resource[strings.LastIndex(parsed.Resource, "/")+1:]
	role, err := s.iam.GetRole(ctx, name)
	switch {
	case awsiam.IsNotFound(err):
		f.Reason = TrustRoleMissing
		f.Message = fmt.Sprintf("role %s does not exist, so its default-editor gets no AWS credentials; create the role or correct the Profile's plugin", roleARN)
		return f, true, nil
	case awsiam.IsAccessDenied(err):
		f.Reason = TrustCannotRead
		f.Message = fmt.Sprintf("the operator may not read role %s: grant it iam:GetRole on that role", roleARN)
		return f, true, nil
	case err != nil:
		return f, false, err
	}
	subject := policy.ServiceAccountSubject(profile, desired.KubeflowEditorServiceAccount)
	id := policy.Identity{ProviderARN: s.state.OIDCProvider.ARN, Issuer: s.state.IssuerURL, Subject: subject}
	foreign, open := id.OpenTo(role.Trust)
	if !open {
		return f, false, nil
	}
	f.Reason = string(foreign.Opening)
	f.Message = fmt.Sprintf("the trust of role %s admits %s, not only %s through %s; narrow it to that subject, or manage the profile with spec.profiles[] (adoptExisting: true)",
		roleARN, foreign, subject, s.state.OIDCProvider.ARN)
	if len(f.Message) > 1024 {
		f.Message = f.Message[:1021] + "..."
	}
	return f, true, nil
}
