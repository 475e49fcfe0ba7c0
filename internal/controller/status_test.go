package controller

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

func TestSummarize(t *testing.T) {
	readyPart := outcome{ready: true, reason: v1alpha1.ReconciledReason, message: "ok"}
	allReady := map[string]outcome{}
	for _, c := range partConditions {
		allReady[c] = readyPart
	}
	with := func(cond string, o outcome) map[string]outcome {
		m := map[string]outcome{}
		for k, v := range allReady {
			m[k] = v
		}
		m[cond] = o
		return m
	}
	cases := map[string]struct {
		parts           map[string]outcome
		deleting        bool
		wantReady       metav1.ConditionStatus
		wantReason      string
		wantStalled     bool
		wantReconciling bool
	}{
		"every part ready": {parts: allReady, wantReady: metav1.ConditionTrue, wantReason: v1alpha1.ReconciledReason},
		"a part waiting for IAM": {
			parts:     with(v1alpha1.ProfileRolesReadyCondition, outcome{reason: v1alpha1.WaitingForIAMPropagationReason, message: "wait"}),
			wantReady: metav1.ConditionFalse, wantReason: v1alpha1.WaitingForIAMPropagationReason, wantReconciling: true,
		},
		"a part that needs a human": {
			parts:     with(v1alpha1.ControllerIRSAReadyCondition, outcome{reason: v1alpha1.NotOwnedReason, message: "delete it", stalled: true}),
			wantReady: metav1.ConditionFalse, wantReason: v1alpha1.NotOwnedReason, wantStalled: true,
		},
		"the first failing part in order names Ready's reason": {
			parts: func() map[string]outcome {
				m := with(v1alpha1.ProfilesReadyCondition, outcome{reason: v1alpha1.NotOwnedReason, stalled: true})
				m[v1alpha1.OIDCProviderReadyCondition] = outcome{reason: v1alpha1.AccessDeniedReason, stalled: true}
				return m
			}(),
			wantReady: metav1.ConditionFalse, wantReason: v1alpha1.AccessDeniedReason, wantStalled: true,
		},
		"deleting": {parts: map[string]outcome{}, deleting: true, wantReady: metav1.ConditionFalse, wantReason: v1alpha1.DeletingReason, wantReconciling: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			cr := &v1alpha1.AwsKubeflowProfiles{ObjectMeta: metav1.ObjectMeta{Generation: 7}}
			// A stale Stalled from an earlier pass must go away when false.
			cr.Status.Conditions = []metav1.Condition{{Type: v1alpha1.StalledCondition, Status: metav1.ConditionTrue, Reason: "Old"}}
			summarize(cr, tc.parts, tc.deleting)
			ready := findCondition(cr, v1alpha1.ReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(tc.wantReady))
			g.Expect(ready.Reason).To(Equal(tc.wantReason))
			g.Expect(ready.ObservedGeneration).To(Equal(int64(7)))
			g.Expect(findCondition(cr, v1alpha1.StalledCondition) != nil).To(Equal(tc.wantStalled))
			g.Expect(findCondition(cr, v1alpha1.ReconcilingCondition) != nil).To(Equal(tc.wantReconciling))
			g.Expect(cr.Status.Conditions[0].Type).To(Equal(v1alpha1.ReadyCondition), "Ready comes first")
			for _, c := range cr.Status.Conditions {
				g.Expect(c.ObservedGeneration).To(Equal(int64(7)))
			}
		})
	}
}

func findCondition(cr *v1alpha1.AwsKubeflowProfiles, t string) *metav1.Condition {
	for i := range cr.Status.Conditions {
		if cr.Status.Conditions[i].Type == t {
			return &cr.Status.Conditions[i]
		}
	}
	return nil
}

func TestFailure(t *testing.T) {
	apiErr := func(code string) error {
		return fmt.Errorf("reading role r: %w", &smithy.OperationError{ServiceID: "IAM", OperationName: "GetRole", Err: &smithy.GenericAPIError{Code: code}})
	}
	cases := map[string]struct {
		err         error
		wantReason  string
		wantStalled bool
		wantAfter   time.Duration
	}{
		"invalid spec":          {err: fmt.Errorf("%w: x", desired.ErrInvalidSpec), wantReason: v1alpha1.InvalidSpecReason, wantStalled: true},
		"not owned":             {err: fmt.Errorf("%w: x", awsiam.ErrNotOwned), wantReason: v1alpha1.NotOwnedReason, wantStalled: true},
		"access denied":         {err: apiErr("AccessDenied"), wantReason: v1alpha1.AccessDeniedReason, wantStalled: true},
		"limit exceeded":        {err: apiErr("LimitExceeded"), wantReason: v1alpha1.LimitExceededReason, wantStalled: true},
		"malformed policy":      {err: apiErr("MalformedPolicyDocument"), wantReason: v1alpha1.IAMErrorReason, wantStalled: true},
		"propagation":           {err: fmt.Errorf("%w", awsiam.ErrPropagating), wantReason: v1alpha1.WaitingForIAMPropagationReason, wantAfter: propagationDelay},
		"throttling":            {err: apiErr("Throttling"), wantReason: v1alpha1.ThrottledReason, wantAfter: throttleDelay},
		"a server error":        {err: apiErr("ServiceFailure"), wantReason: v1alpha1.IAMErrorReason},
		"missing namespace":     {err: fmt.Errorf("%w: kubeflow", errNamespaceMissing), wantReason: v1alpha1.NamespaceMissingReason, wantStalled: true},
		"discovery not allowed": {err: fmt.Errorf("%w: %w", errDiscovery, apiErr("AccessDenied")), wantReason: v1alpha1.AccessDeniedReason, wantStalled: true},
		"discovery timed out":   {err: fmt.Errorf("%w: %w", errDiscovery, apiErr("RequestTimeout")), wantReason: v1alpha1.DiscoveryFailedReason},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			o, after := failure(tc.err)
			g.Expect(o.reason).To(Equal(tc.wantReason))
			g.Expect(o.stalled).To(Equal(tc.wantStalled))
			g.Expect(after).To(Equal(tc.wantAfter))
			g.Expect(o.message).To(Equal(tc.err.Error()))
		})
	}
}

// The same failure must give the same message on every retry, or the status
// and the Warning events would churn.
func TestFailureMessageIsStableAcrossRetries(t *testing.T) {
	g := NewWithT(t)
	sdkErr := func(id string) error {
		return fmt.Errorf("deleting policy p: operation error IAM: DeletePolicy, https response error StatusCode: 409, RequestID: %s, DeleteConflict: Cannot delete a policy attached to entities.", id)
	}
	a, _ := failure(sdkErr("cede1d6a-30d2-4b92-80cc-273240aef2ea"))
	b, _ := failure(sdkErr("6075748c-7447-4631-9cc9-56fbc4c6e234"))
	g.Expect(a.message).To(Equal(b.message))
	g.Expect(a.message).To(Equal("deleting policy p: operation error IAM: DeletePolicy, DeleteConflict: Cannot delete a policy attached to entities."))
}
