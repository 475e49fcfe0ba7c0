/*
Copyright 2026 The AwsKubeflowProfiles Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

// Condition types. Ready summarises the others. Reconciling and Stalled follow
// kstatus "abnormal-true": they are present only while true.
const (
	// ReadyCondition is True when every part below is ready for the current
	// generation.
	ReadyCondition = "Ready"
	// ReconcilingCondition is True while the operator is still converging,
	// for example waiting for IAM to propagate or for a Profile to go away.
	ReconcilingCondition = "Reconciling"
	// StalledCondition is True when progress needs a change by a human: an
	// invalid spec, a resource the operator may not touch, missing permissions
	// or an IAM quota.
	StalledCondition = "Stalled"
	// OIDCProviderReadyCondition is True when IAM has an OIDC provider for the
	// cluster's issuer that trusts the sts.amazonaws.com audience.
	OIDCProviderReadyCondition = "OIDCProviderReady"
	// ControllerIRSAReadyCondition is True when the profile controller's
	// policy, role, trust, attachment and service-account annotation match.
	ControllerIRSAReadyCondition = "ControllerIRSAReady"
	// ProfileRolesReadyCondition is True when every profile role has the
	// exact trust and the permissions of the spec.
	ProfileRolesReadyCondition = "ProfileRolesReady"
	// ProfilesReadyCondition is True when every Kubeflow Profile carries the
	// spec's owner, quota and AwsIamForServiceAccount plugin.
	ProfilesReadyCondition = "ProfilesReady"
)

// Condition reasons: UpperCamel outcomes shared by the conditions above.
const (
	// ReconciledReason: the part matches the spec.
	ReconciledReason = "Reconciled"
	// ProgressingReason: writes were made and the part is converging.
	ProgressingReason = "Progressing"
	// WaitingForIAMPropagationReason: IAM has not yet made a new resource
	// visible everywhere; the operator retries shortly.
	WaitingForIAMPropagationReason = "WaitingForIAMPropagation"
	// InvalidSpecReason: the spec cannot be applied; nothing was sent to AWS.
	InvalidSpecReason = "InvalidSpec"
	// NotOwnedReason: a resource of the desired name exists and was not
	// created by the operator, which therefore leaves it alone.
	NotOwnedReason = "NotOwned"
	// AdoptionWouldRemoveReason: adopting an existing role would remove
	// permissions the spec does not list, so nothing was changed.
	AdoptionWouldRemoveReason = "AdoptionWouldRemove"
	// AccessDeniedReason: AWS refused the operator's credentials.
	AccessDeniedReason = "AccessDenied"
	// ThrottledReason: AWS throttled the operator; it backs off and retries.
	ThrottledReason = "Throttled"
	// LimitExceededReason: an IAM quota would be or was exceeded.
	LimitExceededReason = "LimitExceeded"
	// IAMErrorReason: an AWS call failed for another reason; retried.
	IAMErrorReason = "IAMError"
	// KubernetesErrorReason: a Kubernetes API call failed; retried.
	KubernetesErrorReason = "KubernetesError"
	// DiscoveryFailedReason: the issuer or account could not be discovered.
	DiscoveryFailedReason = "DiscoveryFailed"
	// ClientIDMissingReason: an OIDC provider not created by the operator
	// lacks the sts.amazonaws.com client ID.
	ClientIDMissingReason = "ClientIDMissing"
	// NamespaceMissingReason: the namespace of a service account is absent.
	NamespaceMissingReason = "NamespaceMissing"
	// KubeflowMissingReason: Kubeflow's Profile CRD is not installed.
	KubeflowMissingReason = "KubeflowMissing"
	// ProfileGoneReason: a retained profile's Kubeflow Profile is gone; its
	// role was kept and now admits no one.
	ProfileGoneReason = "ProfileGone"
	// WaitingForProfileDeletionReason: a Profile the deletion policy deletes
	// still exists, waiting for Kubeflow's finalizer.
	WaitingForProfileDeletionReason = "WaitingForProfileDeletion"
	// ProfileDeletionStuckReason: a Profile has been deleting for longer than
	// Kubeflow's finalizer takes; Kubeflow may not be running.
	ProfileDeletionStuckReason = "ProfileDeletionStuck"
	// DeleteBlockedReason: IAM refuses to delete a resource until something
	// the operator may not change lets go of it.
	DeleteBlockedReason = "DeleteBlocked"
	// DeletingReason: the deletion policy is being carried out.
	DeletingReason = "Deleting"
	// BlockedReason: the part waits for another part to be ready.
	BlockedReason = "Blocked"
	// NoProfilesReason: spec.profiles is empty.
	NoProfilesReason = "NoProfiles"
)
