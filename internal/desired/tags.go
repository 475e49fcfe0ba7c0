package desired

import "github.com/awskubeflowprofiles/operator/api/v1alpha1"

// Tag keys the operator sets on every IAM resource it creates. Together they
// say that this operator created the resource, for which cluster and for
// which AwsKubeflowProfiles object.
const (
	TagManagedBy = "kubeflow.aws/managed-by"
	TagCluster   = "kubeflow.aws/cluster"
	TagOwner     = "kubeflow.aws/awskubeflowprofiles"
	TagProfile   = "kubeflow.aws/profile"
	TagAdopted   = "kubeflow.aws/adopted"

	// ManagedByValue is the value of TagManagedBy.
	ManagedByValue = "awskubeflowprofiles-operator"
)

// Owner identifies the AwsKubeflowProfiles object that manages a resource.
type Owner struct {
	// Name of the AwsKubeflowProfiles object.
	Name string
	// Cluster is the EKS cluster name from its spec.
	Cluster string
	// Gone reports whether the AwsKubeflowProfiles of the given name no
	// longer exists. What this operator created for this cluster on behalf
	// of an object that is gone, such as what a Retain deletion left, is
	// taken over by this owner. Nil takes nothing over.
	Gone func(name string) bool
}

// OwnershipTags are the tags that mark a resource as created for owner,
// merged over the user's extra tags.
func OwnershipTags(owner Owner, extra []v1alpha1.Tag) map[string]string {
	tags := make(map[string]string, len(extra))
	for _, t := range extra {
		tags[t.Key] = t.Value
	}
	return owner.Tags(tags)
}

// Tags are the resource's tags with the owner's ownership tags set, as
// written when the owner takes a resource over.
func (o Owner) Tags(current map[string]string) map[string]string {
	tags := make(map[string]string, len(current)+3)
	for k, v := range current {
		tags[k] = v
	}
	tags[TagManagedBy] = ManagedByValue
	tags[TagCluster] = o.Cluster
	tags[TagOwner] = o.Name
	return tags
}

// OwnedBy reports whether tags mark a resource as created or adopted for owner.
func OwnedBy(tags map[string]string, owner Owner) bool {
	return tags[TagManagedBy] == ManagedByValue &&
		tags[TagCluster] == owner.Cluster &&
		tags[TagOwner] == owner.Name
}

// Ownership is how a resource's tags relate it to an owner.
type Ownership int

const (
	// Foreign: not created by this operator; only adoption may take it.
	Foreign Ownership = iota
	// Ours: created or adopted for this owner.
	Ours
	// Orphaned: created by this operator for this cluster, for an object
	// that no longer exists; this owner takes it over.
	Orphaned
	// OtherOwner: created by this operator for another object that exists,
	// or for another cluster; never taken, not even by adoption.
	OtherOwner
)

// OwnershipOf classifies tags against owner.
func OwnershipOf(tags map[string]string, owner Owner) Ownership {
	switch {
	case tags[TagManagedBy] != ManagedByValue:
		return Foreign
	case OwnedBy(tags, owner):
		return Ours
	case tags[TagCluster] == owner.Cluster && owner.Gone != nil && tags[TagOwner] != "" && owner.Gone(tags[TagOwner]):
		return Orphaned
	default:
		return OtherOwner
	}
}

// Adopted reports whether tags mark a resource the operator took over rather
// than created; such a resource is never deleted by the operator.
func Adopted(tags map[string]string) bool {
	return tags[TagAdopted] == "true"
}

// LabelOwner is the label the operator puts on Kubernetes objects it manages
// (service accounts, Profiles), valued with the AwsKubeflowProfiles name.
const LabelOwner = TagOwner
