package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
)

// emit records each write as a Normal Event on the object, a log line and a
// metric. A steady-state pass makes no writes and so emits nothing.
func (r *Reconciler) emit(ctx context.Context, cr *v1alpha1.AwsKubeflowProfiles, changes []awsiam.Change) {
	log := ctrl.LoggerFrom(ctx)
	for _, c := range changes {
		log.Info(c.Message, "reason", c.Reason)
		if r.Recorder != nil {
			r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, c.Reason, c.Action, "%s", c.Message)
		}
		if r.Metrics != nil {
			r.Metrics.writes.WithLabelValues(c.Resource, c.Action).Inc()
		}
	}
}

// warnOnNewFailures emits a Warning Event, and logs, when a part turns
// not-ready or its reason or message changes, so a failure that persists
// across resyncs is reported once.
func (r *Reconciler) warnOnNewFailures(s *scope) {
	for _, t := range partConditions {
		now := meta.FindStatusCondition(s.cr.Status.Conditions, t)
		if now == nil || now.Status == "True" || now.Reason == v1alpha1.BlockedReason || now.Reason == v1alpha1.DeletingReason {
			continue
		}
		was := meta.FindStatusCondition(s.before.Status.Conditions, t)
		if was != nil && was.Status == now.Status && was.Reason == now.Reason && was.Message == now.Message {
			continue
		}
		if r.Recorder != nil {
			r.Recorder.Eventf(s.cr, nil, corev1.EventTypeWarning, now.Reason, "Reconcile", "%s: %s", t, now.Message)
		}
	}
}
