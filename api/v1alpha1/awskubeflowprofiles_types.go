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

import (
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Finalizer is set on every AwsKubeflowProfiles so that deleting it runs the
// deletion policy before the object goes away.
const Finalizer = "kubeflow.aws/cleanup"

// ReleaseAnnotation, set to "true" on an AwsKubeflowProfiles that is being
// deleted, lets it go at once: whatever the deletion policy could not delete
// yet (a Profile whose Kubeflow finalizer never goes because Kubeflow is
// uninstalled, a role IAM refuses to delete) is kept, and listed in an
// Event. It is how an admin ends a teardown that cannot finish.
const ReleaseAnnotation = "kubeflow.aws/release-without-cleanup"

// AwsKubeflowProfilesSpec declares, for one EKS cluster, the IAM OIDC provider,
// the IRSA of Kubeflow's profile controller and one IAM role plus Kubeflow
// Profile per team.
// +kubebuilder:validation:XValidation:rule="!has(self.profileController) || !has(self.profileController.roleName) || !has(self.profiles) || self.profiles.all(p, !has(p.roleName) || p.roleName != self.profileController.roleName)",message="spec.profiles[].roleName must differ from spec.profileController.roleName"
// +kubebuilder:validation:XValidation:rule="!has(self.iam.rolePath) || self.iam.rolePath.contains('/' + self.cluster.name + '/')",message="spec.iam.rolePath must contain the cluster name as a path segment, such as /kubeflow/<cluster>/: the profile controller may edit the trust of every role under this path, so a path shared with another cluster would let it edit that cluster's roles"
// +kubebuilder:validation:XValidation:rule="!has(self.profiles) || self.profiles.all(p, p.name != self.profileController.serviceAccount.__namespace__)",message="spec.profiles[].name must differ from the profile controller's namespace (spec.profileController.serviceAccount.namespace): a Profile would take that namespace over"
// +kubebuilder:validation:XValidation:rule="self.profileController.serviceAccount.__namespace__ == self.profileController.deployment.__namespace__",message="spec.profileController.serviceAccount and spec.profileController.deployment must be in the same namespace, the profile controller's"
// +kubebuilder:validation:XValidation:rule="(has(oldSelf.iam.rolePath) ? oldSelf.iam.rolePath : '/kubeflow/' + oldSelf.cluster.name + '/') == (has(self.iam.rolePath) ? self.iam.rolePath : '/kubeflow/' + self.cluster.name + '/')",message="spec.iam.rolePath is immutable: IAM cannot move a role to another path, and every Profile names its role by ARN; to use another path, create a new AwsKubeflowProfiles"
type AwsKubeflowProfilesSpec struct {
	// cluster identifies the EKS cluster whose service accounts get IAM roles.
	// +required
	Cluster ClusterSpec `json:"cluster"`

	// oidcProvider configures the IAM OIDC identity provider for the cluster's
	// service-account issuer. The operator creates it when none exists for the
	// issuer and uses, but never changes, one it did not create.
	// +optional
	// +kubebuilder:default={}
	OIDCProvider OIDCProviderSpec `json:"oidcProvider,omitzero"`

	// profileController configures the IRSA of Kubeflow's profile controller,
	// which edits the trust policies of profile roles through its
	// AwsIamForServiceAccount plugin.
	// +optional
	// +kubebuilder:default={}
	ProfileController ProfileControllerSpec `json:"profileController,omitzero"`

	// iam holds options for every IAM role and policy the operator creates.
	// +optional
	// +kubebuilder:default={}
	IAM IAMSpec `json:"iam,omitzero"`

	// profileDefaults apply to every entry of profiles. Lists are merged with
	// each profile's own; single values are overridden by the profile's.
	// +optional
	ProfileDefaults ProfileDefaults `json:"profileDefaults,omitzero"`

	// profiles lists the Kubeflow Profiles to manage, each with its own IAM
	// role trusted only by the default-editor service account of its namespace.
	// At 1000 profiles with one managed policy each and short names the
	// object, with its status, measures about 1 MiB (make bench), under
	// etcd's 1.5 MiB; profiles with many policies or long names leave less
	// room.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=1000
	Profiles []ProfileSpec `json:"profiles,omitempty"`

	// deletionPolicy says what happens to created resources when a profile is
	// removed from profiles or this object is deleted. The default retains
	// everything, so no namespace, notebook or volume is ever lost by accident.
	// +optional
	// +kubebuilder:default={}
	DeletionPolicy DeletionPolicySpec `json:"deletionPolicy,omitzero"`
}

// ClusterSpec identifies the EKS cluster. Its fields name the identities of
// everything the operator creates, so they cannot change once set.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.accountID) || (has(self.accountID) && self.accountID == oldSelf.accountID)",message="spec.cluster.accountID is immutable once set: every ARN the operator wrote names this account; for another account, create a new AwsKubeflowProfiles"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.oidcIssuerURL) || (has(self.oidcIssuerURL) && self.oidcIssuerURL == oldSelf.oidcIssuerURL)",message="spec.cluster.oidcIssuerURL is immutable once set: every role's trust names this issuer's OIDC provider; a cluster with a new issuer is a new cluster, so create a new AwsKubeflowProfiles for it"
type ClusterSpec struct {
	// name is the EKS cluster name. It is part of derived role names
	// (<profile>-<cluster>-role) and of the default role path.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:Pattern=`^[0-9A-Za-z][A-Za-z0-9_-]*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.cluster.name is immutable: it is part of every role name, tag and the role path; to manage another cluster, create a new AwsKubeflowProfiles (and delete this one with the deletion policy you want)"
	Name string `json:"name"`

	// region is the AWS region of the cluster, such as us-west-2. It selects
	// the partition of every ARN and the EKS endpoint used for discovery.
	// +required
	// +kubebuilder:validation:MinLength=9
	// +kubebuilder:validation:MaxLength=25
	// +kubebuilder:validation:Pattern=`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.cluster.region is immutable: a cluster does not move, and the region selects the partition of every ARN; for a cluster in another region, create a new AwsKubeflowProfiles"
	Region string `json:"region"`

	// oidcIssuerURL is the cluster's service-account issuer, such as
	// https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE,
	// written as the cluster's discovery document reports it. The scheme and
	// host are compared in lower case and trailing slashes are ignored. When
	// absent it is read with eks:DescribeCluster; when present and EKS can be
	// asked, it must match what EKS reports.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self.lowerAscii().startsWith('https://')",message="oidcIssuerURL must start with https://"
	// +kubebuilder:validation:XValidation:rule="!self.contains('?') && !self.contains('#')",message="oidcIssuerURL must not have a query or a fragment: an OIDC issuer is an https URL with a host and an optional path"
	// +kubebuilder:validation:XValidation:rule="self.matches('^(?i:https)://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%-]+)*/*$')",message="oidcIssuerURL must be an https URL with a host and an optional path"
	OIDCIssuerURL string `json:"oidcIssuerURL,omitempty"`

	// accountID is the 12-digit AWS account that holds the IAM resources.
	// When absent it is read with sts:GetCallerIdentity.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]{12}$`
	AccountID string `json:"accountID,omitempty"`
}

// OIDCProviderSpec configures the IAM OIDC identity provider.
type OIDCProviderSpec struct {
	// thumbprints are SHA-1 fingerprints (40 hex digits) of the issuer's
	// certificate chain. Leave empty for EKS: IAM then secures the connection
	// with its own library of trusted root CAs and ignores thumbprints.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:items:Pattern=`^[0-9A-Fa-f]{40}$`
	Thumbprints []string `json:"thumbprints,omitempty"`
}

// ProfileControllerSpec configures the IRSA of Kubeflow's profile controller.
type ProfileControllerSpec struct {
	// serviceAccount is the profile controller's service account. It gets the
	// eks.amazonaws.com/role-arn annotation and is created when missing.
	// +optional
	// +kubebuilder:default={namespace: kubeflow, name: profiles-controller-service-account}
	ServiceAccount ObjectReference `json:"serviceAccount,omitzero"`

	// policyName is the customer managed IAM policy that allows iam:GetRole
	// and iam:UpdateAssumeRolePolicy on the profile roles of this object only.
	// The default is kf-profile-controller-<cluster>-policy, so clusters that
	// share an account do not compete for one policy. (Objects created before
	// this default have kf-profile-controller-policy stored, and keep it.)
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9+=,.@_-]+$`
	PolicyName string `json:"policyName,omitempty"`

	// roleName is the IAM role the profile controller assumes. The default is
	// kf-profile-controller-<cluster>-role, shortened with a hash suffix when
	// longer than 64 characters.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9+=,.@_-]+$`
	RoleName string `json:"roleName,omitempty"`

	// deployment runs the profile controller. Its pods are restarted once when
	// the role annotation changes, because the EKS pod identity webhook only
	// injects credentials when a pod is admitted.
	// +optional
	// +kubebuilder:default={namespace: kubeflow, name: profiles-deployment}
	Deployment ObjectReference `json:"deployment,omitzero"`

	// restartOnRoleChange turns the restart of deployment's pods on or off.
	// +optional
	// +kubebuilder:default=true
	RestartOnRoleChange *bool `json:"restartOnRoleChange,omitempty"`
}

// ObjectReference names a namespaced Kubernetes object.
type ObjectReference struct {
	// namespace of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`

	// name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// IAMSpec holds options for the IAM roles and policies the operator creates.
type IAMSpec struct {
	// rolePath is the IAM path of every profile role, such as /kubeflow/prod/.
	// The profile controller's policy is scoped to this path, so it must be a
	// path that holds nothing else and names the cluster as one of its
	// segments; "/" is refused for that reason. The default is
	// /kubeflow/<cluster>/. It cannot change once set: IAM cannot move roles.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^/[!-~]*/$`
	// +kubebuilder:validation:XValidation:rule="self != '/'",message="rolePath must not be /: the profile controller's policy is scoped to this path, so use a dedicated one such as /kubeflow/<cluster>/"
	// +kubebuilder:validation:XValidation:rule="!self.contains('*') && !self.contains('?') && !self.contains('//')",message="rolePath must not contain *, ? or an empty segment"
	RolePath string `json:"rolePath,omitempty"`

	// permissionsBoundaryARN is set as the permissions boundary of every role
	// the operator creates.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/[!-~]+$`
	PermissionsBoundaryARN string `json:"permissionsBoundaryARN,omitempty"`

	// tags are added to every IAM resource the operator creates, besides the
	// kubeflow.aws/ ownership tags it sets itself.
	// +optional
	// +listType=map
	// +listMapKey=key
	// +kubebuilder:validation:MaxItems=40
	Tags []Tag `json:"tags,omitempty"`

	// quotas are the account's IAM quotas that the operator checks before it
	// calls IAM, so a spec that would exceed one is reported instead of
	// half-applied. Raise them here after raising them in Service Quotas.
	// +optional
	// +kubebuilder:default={}
	Quotas IAMQuotas `json:"quotas,omitzero"`
}

// IAMQuotas are adjustable IAM quotas of the account.
type IAMQuotas struct {
	// managedPoliciesPerRole is the number of managed policies a role may
	// have attached: 10 unless raised (at most 20).
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	ManagedPoliciesPerRole int32 `json:"managedPoliciesPerRole,omitempty"`

	// roleTrustPolicySize is the maximum length of a trust policy, whitespace
	// not counted: 2048 unless raised (at most 4096).
	// +optional
	// +kubebuilder:default=2048
	// +kubebuilder:validation:Minimum=2048
	// +kubebuilder:validation:Maximum=4096
	RoleTrustPolicySize int32 `json:"roleTrustPolicySize,omitempty"`
}

// Tag is an IAM tag.
type Tag struct {
	// key of the tag. Keys starting with aws: or kubeflow.aws/ are reserved.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[\p{L}\p{Z}\p{N}_.:/=+@-]+$`
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('aws:') && !self.startsWith('kubeflow.aws/')",message="tag keys starting with aws: or kubeflow.aws/ are reserved"
	Key string `json:"key"`

	// value of the tag.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[\p{L}\p{Z}\p{N}_.:/=+@-]*$`
	Value string `json:"value"`
}

// DeletionPolicy says whether resources the operator created are deleted or
// kept when they leave its management.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

const (
	// DeletionPolicyRetain keeps the resources and stops managing them.
	DeletionPolicyRetain DeletionPolicy = "Retain"
	// DeletionPolicyDelete deletes the resources the operator created.
	DeletionPolicyDelete DeletionPolicy = "Delete"
)

// DeletionPolicySpec says what is deleted when a profile is removed from the
// spec or the AwsKubeflowProfiles is deleted. Resources the operator did not
// create are never deleted, and whatever a retained Profile depends on (its
// role and the OIDC provider its role trusts) is retained with it.
type DeletionPolicySpec struct {
	// profiles applies to Kubeflow Profiles and their IAM roles. Delete
	// removes the Profile, and with it its namespace, notebooks and volumes.
	// +optional
	// +kubebuilder:default=Retain
	Profiles DeletionPolicy `json:"profiles,omitempty"`

	// clusterIAM applies to the OIDC provider and the profile controller's
	// policy and role. The OIDC provider is kept while a retained profile role
	// or another AwsKubeflowProfiles still uses it; otherwise Delete removes
	// it, which ends IRSA for every workload of the cluster that relied on it.
	// +optional
	// +kubebuilder:default=Retain
	ClusterIAM DeletionPolicy `json:"clusterIAM,omitempty"`
}

// ProfileDefaults apply to every profile.
type ProfileDefaults struct {
	// managedPolicyARNs are attached to every profile role, in addition to the
	// profile's own.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:items:Pattern=`^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/[!-~]+$`
	ManagedPolicyARNs []string `json:"managedPolicyARNs,omitempty"`

	// inlinePolicies are put on every profile role; a profile's inline policy
	// of the same name replaces the default one.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	InlinePolicies []InlinePolicy `json:"inlinePolicies,omitempty"`

	// resourceQuotaSpec is passed to Profiles that set none of their own.
	// +optional
	ResourceQuotaSpec *corev1.ResourceQuotaSpec `json:"resourceQuotaSpec,omitempty"`

	// maxSessionDurationSeconds of profile roles that set none of their own.
	// +optional
	// +kubebuilder:validation:Minimum=3600
	// +kubebuilder:validation:Maximum=43200
	MaxSessionDurationSeconds *int32 `json:"maxSessionDurationSeconds,omitempty"`
}

// ProfileSpec declares one Kubeflow Profile and its IAM role.
// +kubebuilder:validation:XValidation:rule="!has(self.removeUnlistedOnAdoption) || !self.removeUnlistedOnAdoption || (has(self.adoptExisting) && self.adoptExisting)",message="removeUnlistedOnAdoption applies to an adoption: set adoptExisting: true as well, or remove it"
type ProfileSpec struct {
	// name of the Kubeflow Profile and of its namespace. Namespaces that
	// Kubernetes or Kubeflow reserve (kube-*, default, kubeflow) are refused:
	// a Profile takes its namespace over, and its default-editor would get
	// the role.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('kube-') && !(self in ['default', 'kubeflow'])",message="a profile name is its namespace, and kube-*, default and kubeflow are namespaces Kubernetes or Kubeflow reserve: choose another name"
	Name string `json:"name"`

	// owner of the Profile, who administers its namespace in Kubeflow.
	// +required
	Owner ProfileOwner `json:"owner"`

	// managedPolicyARNs are attached to the profile role.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:items:Pattern=`^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/[!-~]+$`
	ManagedPolicyARNs []string `json:"managedPolicyARNs,omitempty"`

	// inlinePolicies are put on the profile role.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	InlinePolicies []InlinePolicy `json:"inlinePolicies,omitempty"`

	// roleName overrides the default role name <profile>-<cluster>-role.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9+=,.@_-]+$`
	RoleName string `json:"roleName,omitempty"`

	// resourceQuotaSpec is passed through to the Profile.
	// +optional
	ResourceQuotaSpec *corev1.ResourceQuotaSpec `json:"resourceQuotaSpec,omitempty"`

	// maxSessionDurationSeconds of the profile role.
	// +optional
	// +kubebuilder:validation:Minimum=3600
	// +kubebuilder:validation:Maximum=43200
	MaxSessionDurationSeconds *int32 `json:"maxSessionDurationSeconds,omitempty"`

	// adoptExisting lets the operator take over a Profile or IAM role of this
	// name that it did not create. Adopted resources are managed from then on
	// but never deleted by the operator. A Profile or role another
	// AwsKubeflowProfiles manages is never adopted.
	// +optional
	AdoptExisting bool `json:"adoptExisting,omitempty"`

	// removeUnlistedOnAdoption lets the first adoption of an existing role
	// remove what this spec does not list: other principals from its trust,
	// managed and inline policies, and a permissions boundary. Without it, an
	// adoption that would remove anything changes nothing and reports on
	// status what it would remove, so that it can be listed here first. An
	// inline policy removed this way cannot be recovered.
	// +optional
	RemoveUnlistedOnAdoption bool `json:"removeUnlistedOnAdoption,omitempty"`
}

// ProfileOwner is the owner of a Kubeflow Profile.
type ProfileOwner struct {
	// kind of the owner.
	// +optional
	// +kubebuilder:default=User
	// +kubebuilder:validation:Enum=User;Group
	Kind string `json:"kind,omitempty"`

	// name of the owner, usually an e-mail address known to the identity
	// provider in front of Kubeflow.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// InlinePolicy is an IAM inline policy put on a role.
type InlinePolicy struct {
	// name of the inline policy.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9+=,.@_-]+$`
	Name string `json:"name"`

	// document is the IAM policy document, written as YAML or JSON: a
	// Version and a list of Statements, each with an Effect and an Action or
	// NotAction. The operator parses every key strictly before any call, so a
	// misspelt one is refused rather than ignored.
	// +required
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	Document apiextensionsv1.JSON `json:"document"`
}

// Ownership says how the operator relates to an external resource.
// +kubebuilder:validation:Enum=Created;Adopted;External
type Ownership string

const (
	// OwnershipCreated marks a resource the operator created and manages.
	OwnershipCreated Ownership = "Created"
	// OwnershipAdopted marks a resource the spec asked the operator to take
	// over: managed, but never deleted.
	OwnershipAdopted Ownership = "Adopted"
	// OwnershipExternal marks a resource someone else created: used, never
	// changed or deleted.
	OwnershipExternal Ownership = "External"
)

// IAMResourceStatus is an IAM resource the operator observed or created.
type IAMResourceStatus struct {
	// arn of the resource.
	// +optional
	ARN string `json:"arn,omitempty"`

	// ownership says whether the operator created, adopted or only uses it.
	// +optional
	Ownership Ownership `json:"ownership,omitempty"`
}

// ProfileControllerStatus is the observed IRSA of the profile controller.
type ProfileControllerStatus struct {
	// policy is the profile controller's IAM policy.
	// +optional
	Policy IAMResourceStatus `json:"policy,omitzero"`

	// role is the profile controller's IAM role.
	// +optional
	Role IAMResourceStatus `json:"role,omitzero"`

	// serviceAccount is the annotated service account, as namespace/name.
	// +optional
	ServiceAccount string `json:"serviceAccount,omitzero"`
}

// ProfileState says whether a profile is managed or was left behind.
// +kubebuilder:validation:Enum=Managed;Retained;NotOwned;Deleting
type ProfileState string

const (
	// ProfileStateManaged is a profile in spec.profiles that the operator
	// manages.
	ProfileStateManaged ProfileState = "Managed"
	// ProfileStateRetained is a profile removed from spec.profiles whose
	// Profile and role were kept by the deletion policy and are no longer
	// managed.
	ProfileStateRetained ProfileState = "Retained"
	// ProfileStateNotOwned is a profile whose Profile or role exists but was
	// not created by the operator; it is left alone.
	ProfileStateNotOwned ProfileState = "NotOwned"
	// ProfileStateDeleting is a profile being deleted by the deletion policy.
	ProfileStateDeleting ProfileState = "Deleting"
)

// ProfileStatus is the observed state of one profile.
type ProfileStatus struct {
	// name of the profile.
	// +required
	Name string `json:"name"`

	// state says whether the profile is managed, retained or not owned.
	// +optional
	State ProfileState `json:"state,omitempty"`

	// roleARN of the profile role.
	// +optional
	RoleARN string `json:"roleARN,omitempty"`

	// ready is true when the role, its trust and permissions and the Profile
	// match the spec.
	// +optional
	Ready bool `json:"ready"`

	// reason is a CamelCase word for the last outcome.
	// +optional
	Reason string `json:"reason,omitempty"`

	// message says what happened and, when not ready, what to fix.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// chain is the credential chain of the profile's notebooks as the
	// operator sees it without a pod, from what it reads anyway: the
	// Profile's plugin, default-editor's annotation, the OIDC provider's
	// client ID, and the role's trust and policies. Set for ready profiles.
	// `kubectl awskubeflowprofiles diagnose -n <profile>` says what fixes a
	// broken one, and checks the rest: the pod identity webhook, a pod and a
	// real token.
	// +optional
	Chain ChainState `json:"chain,omitempty"`

	// chainBrokenLink is the first link that is broken, such as "Service
	// account". Only the link is kept here, so that a status of 1000
	// profiles whose chains all broke at once stays well under etcd's limit.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ChainBrokenLink string `json:"chainBrokenLink,omitempty"`
}

// ChainState is the outcome of a profile's chain summary.
// +kubebuilder:validation:Enum=Whole;Broken
type ChainState string

const (
	// ChainWhole: every link the operator sees holds.
	ChainWhole ChainState = "Whole"
	// ChainBroken: a link is broken; chainBrokenLink says which.
	ChainBroken ChainState = "Broken"
)

// AwsKubeflowProfilesStatus is the observed state of AwsKubeflowProfiles.
type AwsKubeflowProfilesStatus struct {
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready summarises; Reconciling and Stalled are present while
	// true; OIDCProviderReady, ControllerIRSAReady, ProfileRolesReady and
	// ProfilesReady describe each part.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// accountID is the AWS account that holds the IAM resources.
	// +optional
	AccountID string `json:"accountID,omitempty"`

	// oidcIssuerURL is the issuer in use, from the spec or from EKS.
	// +optional
	OIDCIssuerURL string `json:"oidcIssuerURL,omitempty"`

	// oidcProvider is the IAM OIDC provider for the issuer.
	// +optional
	OIDCProvider IAMResourceStatus `json:"oidcProvider,omitzero"`

	// profileController is the IRSA of Kubeflow's profile controller.
	// +optional
	ProfileController ProfileControllerStatus `json:"profileController,omitzero"`

	// profiles has one entry per managed, retained or refused profile.
	// +optional
	// +listType=map
	// +listMapKey=name
	Profiles []ProfileStatus `json:"profiles,omitempty"`

	// profilesReady counts ready profiles as "ready/total", for kubectl get.
	// +optional
	ProfilesReady string `json:"profilesReady,omitempty"`

	// chainsWhole counts the ready profiles whose chain summary is whole, as
	// "whole/ready", for kubectl get; see profiles[].chain.
	// +optional
	ChainsWhole string `json:"chainsWhole,omitempty"`

	// trustAudit is the read-only check, once per resync period, of the
	// trust of the roles of Kubeflow Profiles that no AwsKubeflowProfiles
	// manages; the roles this object manages are kept exact instead.
	// +optional
	TrustAudit TrustAuditStatus `json:"trustAudit,omitzero"`
}

// TrustAuditStatus reports the roles of unmanaged Profiles whose trust
// admits more than their namespace's default-editor.
type TrustAuditStatus struct {
	// checkedAt is when the roles were last read.
	// +optional
	CheckedAt *metav1.Time `json:"checkedAt,omitempty"`

	// profiles is how many Profiles with the AwsIamForServiceAccount plugin
	// and no AwsKubeflowProfiles were checked.
	// +optional
	Profiles int32 `json:"profiles,omitempty"`

	// findings has one entry per checked Profile whose role admits more
	// than its namespace's default-editor, or that could not be checked.
	// +optional
	// +listType=map
	// +listMapKey=profile
	// +kubebuilder:validation:MaxItems=100
	Findings []TrustFinding `json:"findings,omitempty"`
}

// TrustFinding is one Profile whose role's trust is wider than it should be.
type TrustFinding struct {
	// profile is the Kubeflow Profile, and so the namespace.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Profile string `json:"profile"`

	// roleARN is the role its plugin names.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	RoleARN string `json:"roleARN,omitempty"`

	// reason is how the trust is open (AnySubject, WildcardSubject,
	// ListedSubject, OtherProvider, OtherPrincipal, Unevaluable), or why it
	// could not be checked (RoleMissing, CannotRead).
	// +required
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason"`

	// message says what the role admits and what to do.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message"`
}

// AwsKubeflowProfiles gives every Kubeflow Profile of an EKS cluster its own
// IAM role through IRSA, and sets up the OIDC provider and the profile
// controller's IRSA that this needs.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=akp,categories=kubeflow
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster.name`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Profiles",type=string,JSONPath=`.status.profilesReady`
// +kubebuilder:printcolumn:name="Chains",type=string,JSONPath=`.status.chainsWhole`,description="Ready profiles whose credential chain, as the operator sees it, is whole"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AwsKubeflowProfiles struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is the desired state.
	// +required
	Spec AwsKubeflowProfilesSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status AwsKubeflowProfilesStatus `json:"status,omitzero"`
}

// GetConditions returns the status conditions.
func (in *AwsKubeflowProfiles) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the status conditions.
func (in *AwsKubeflowProfiles) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// +kubebuilder:object:root=true

// AwsKubeflowProfilesList contains a list of AwsKubeflowProfiles.
type AwsKubeflowProfilesList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []AwsKubeflowProfiles `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AwsKubeflowProfiles{}, &AwsKubeflowProfilesList{})
}

// Profile returns the status entry of the named profile.
func (in *AwsKubeflowProfilesStatus) Profile(name string) (ProfileStatus, bool) {
	for _, p := range in.Profiles {
		if p.Name == name {
			return p, true
		}
	}
	return ProfileStatus{Name: name}, false
}
