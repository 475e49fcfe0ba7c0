package controller

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
)

// partConditions are the conditions that Ready summarises, in the order a
// reader should fix them.
var partConditions = []string{
	v1alpha1.OIDCProviderReadyCondition,
	v1alpha1.ControllerIRSAReadyCondition,
	v1alpha1.ProfileRolesReadyCondition,
	v1alpha1.ProfilesReadyCondition,
}

// outcome is what a phase found out about its part.
type outcome struct {
	ready   bool
	reason  string
	message string
	// stalled: only a human can make progress.
	stalled bool
	// progressing: a stalled part is still converging elsewhere, as when
	// one profile needs a human while another waits for IAM.
	progressing bool
}

func setCondition(cr *v1alpha1.AwsKubeflowProfiles, condType string, o outcome) {
	status := metav1.ConditionFalse
	if o.ready {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&cr.Status.Conditions, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             o.reason,
		Message:            truncate(o.message),
		ObservedGeneration: cr.Generation,
	})
}

// summarize derives Ready, Reconciling and Stalled from the part conditions.
// Reconciling and Stalled are removed when false (kstatus abnormal-true).
func summarize(cr *v1alpha1.AwsKubeflowProfiles, parts map[string]outcome, deleting bool) {
	var notReady []string
	ready := outcome{ready: true, reason: v1alpha1.ReconciledReason, message: "The OIDC provider, the profile controller's IRSA and every profile match the spec."}
	stalled, reconciling := outcome{}, outcome{}
	for _, t := range partConditions {
		o, ok := parts[t]
		if !ok || o.ready {
			continue
		}
		notReady = append(notReady, t)
		if ready.ready {
			ready = outcome{reason: o.reason, message: o.message}
		}
		if o.stalled && stalled.reason == "" {
			stalled = outcome{ready: true, reason: o.reason, message: o.message}
		}
		if !o.stalled && reconciling.reason == "" {
			reconciling = outcome{ready: true, reason: o.reason, message: o.message}
		}
		if o.stalled && o.progressing && reconciling.reason == "" {
			reconciling = outcome{ready: true, reason: v1alpha1.ProgressingReason, message: o.message}
		}
	}
	if deleting {
		ready = outcome{reason: v1alpha1.DeletingReason, message: "Carrying out the deletion policy."}
		if reconciling.reason == "" && stalled.reason == "" {
			reconciling = outcome{ready: true, reason: v1alpha1.DeletingReason, message: ready.message}
		}
	}
	if len(notReady) > 1 && !deleting {
		ready.message = fmt.Sprintf("%s (not ready: %s)", ready.message, strings.Join(notReady, ", "))
	}
	for _, t := range partConditions {
		if o, ok := parts[t]; ok {
			setCondition(cr, t, o)
		}
	}
	setCondition(cr, v1alpha1.ReadyCondition, ready)
	setOrRemove(cr, v1alpha1.StalledCondition, stalled)
	setOrRemove(cr, v1alpha1.ReconcilingCondition, reconciling)
	// Ready first, then the abnormal-true conditions, then the parts.
	order := map[string]int{v1alpha1.ReadyCondition: 0, v1alpha1.StalledCondition: 1, v1alpha1.ReconcilingCondition: 2}
	for i, t := range partConditions {
		order[t] = 3 + i
	}
	sortConditions(cr.Status.Conditions, order)
}

func setOrRemove(cr *v1alpha1.AwsKubeflowProfiles, condType string, o outcome) {
	if o.reason == "" {
		meta.RemoveStatusCondition(&cr.Status.Conditions, condType)
		return
	}
	setCondition(cr, condType, o)
}

func sortConditions(c []metav1.Condition, order map[string]int) {
	rank := func(t string) int {
		if r, ok := order[t]; ok {
			return r
		}
		return len(order)
	}
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && rank(c[j].Type) < rank(c[j-1].Type); j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
}

// maxMessage keeps condition messages within the API's 32768-byte limit
// while leaving room for the rest of the status.
const maxMessage = 1024

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage-3] + "..."
}
