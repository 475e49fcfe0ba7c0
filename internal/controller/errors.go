package controller

import (
	"errors"
	"regexp"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

// errNamespaceMissing marks a service account whose namespace is absent.
var errNamespaceMissing = errors.New("namespace does not exist")

// errDiscovery marks a failure to discover the account or the issuer.
var errDiscovery = errors.New("discovery failed")

// errProfileChanged marks a Kubeflow Profile that changed under a pass,
// or that the cache had not seen yet: read again shortly.
var errProfileChanged = errors.New("the Kubeflow Profile changed while the operator wrote it")

// Retry delays for failures that resolve on their own.
const (
	propagationDelay = 5 * time.Second
	throttleDelay    = 30 * time.Second
	// stuckRecheck is how often a teardown that waits for a human looks
	// again: Kubernetes finalizers and IAM instance profiles have no watch
	// the operator holds.
	stuckRecheck = 30 * time.Second
)

// failure turns a phase error into the outcome of its part and says when to
// try again: terminal failures wait for the periodic resync (or a spec
// change); transient ones come back sooner.
func failure(err error) (outcome, time.Duration) {
	msg := stableMessage(err)
	stalled := func(reason string) (outcome, time.Duration) {
		return outcome{reason: reason, message: msg, stalled: true}, 0
	}
	retry := func(reason string, after time.Duration) (outcome, time.Duration) {
		return outcome{reason: reason, message: msg}, after
	}
	switch {
	case errors.Is(err, errWaitingForProfile):
		return retry(v1alpha1.WaitingForProfileDeletionReason, propagationDelay)
	case errors.Is(err, errProfileDeletionStuck):
		return outcome{reason: v1alpha1.ProfileDeletionStuckReason, message: msg, stalled: true}, stuckRecheck
	case errors.Is(err, awsiam.ErrDeleteBlocked):
		return outcome{reason: v1alpha1.DeleteBlockedReason, message: msg, stalled: true}, stuckRecheck
	case errors.Is(err, errPolicyMissing):
		// A human creates the policy in IAM, not in the spec: look again soon.
		return outcome{reason: v1alpha1.InvalidSpecReason, message: msg, stalled: true}, missingPolicyRecheck
	case errors.Is(err, desired.ErrInvalidSpec), errors.Is(err, awsiam.ErrInvalidPolicy), errors.Is(err, awsiam.ErrPathMismatch):
		return stalled(v1alpha1.InvalidSpecReason)
	case errors.Is(err, awsiam.ErrNotOwned):
		return stalled(v1alpha1.NotOwnedReason)
	case errors.Is(err, awsiam.ErrAdoptionWouldRemove):
		return stalled(v1alpha1.AdoptionWouldRemoveReason)
	case errors.Is(err, awsiam.ErrClientIDMissing):
		return stalled(v1alpha1.ClientIDMissingReason)
	case errors.Is(err, errNamespaceMissing):
		return stalled(v1alpha1.NamespaceMissingReason)
	case errors.Is(err, errKubeflowMissing):
		// Installing Kubeflow is no spec change: look again soon.
		return outcome{reason: v1alpha1.KubeflowMissingReason, message: msg, stalled: true}, stuckRecheck
	case awsiam.IsAccessDenied(err):
		return stalled(v1alpha1.AccessDeniedReason)
	case awsiam.IsLimitExceeded(err):
		return stalled(v1alpha1.LimitExceededReason)
	case errors.Is(err, awsiam.ErrPropagating):
		return retry(v1alpha1.WaitingForIAMPropagationReason, propagationDelay)
	case errors.Is(err, errProfileChanged):
		return retry(v1alpha1.KubernetesErrorReason, propagationDelay)
	case awsiam.IsThrottled(err):
		return retry(v1alpha1.ThrottledReason, throttleDelay)
	case errors.Is(err, errDiscovery) && awsiam.IsTerminal(err):
		return stalled(v1alpha1.DiscoveryFailedReason)
	case errors.Is(err, errDiscovery):
		return retry(v1alpha1.DiscoveryFailedReason, 0)
	case awsiam.IsTerminal(err):
		return stalled(v1alpha1.IAMErrorReason)
	case apierrors.IsInvalid(err) || apierrors.IsForbidden(err):
		return stalled(v1alpha1.KubernetesErrorReason)
	case awsiam.IsAWSError(err):
		return retry(v1alpha1.IAMErrorReason, 0)
	default:
		return retry(v1alpha1.KubernetesErrorReason, 0)
	}
}

// requestDetails are the parts of an AWS SDK error that change on every
// call; left in, a persistent failure would rewrite the status and raise a
// new Warning on each retry.
var requestDetails = regexp.MustCompile(`(https response error StatusCode: \d+, )?RequestID: [^,]*, `)

// stableMessage is the error's text without per-request details.
func stableMessage(err error) string {
	return requestDetails.ReplaceAllString(err.Error(), "")
}
