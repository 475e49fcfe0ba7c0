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
}

// OwnershipTags are the tags that mark a resource as created for owner,
// merged over the user's extra tags.
func OwnershipTags(owner Owner, extra []v1alpha1.Tag) map[string]string {
	tags := make(map[string]string, len(extra)+3)
	for _, t := range extra {
		tags[t.Key] = t.Value
	}
	tags[TagManagedBy] = ManagedByValue
	tags[TagCluster] = owner.Cluster
	tags[TagOwner] = owner.Name
	return tags
}

// OwnedBy reports whether tags mark a resource as created or adopted for owner.
func OwnedBy(tags map[string]string, owner Owner) bool {
	return tags[TagManagedBy] == ManagedByValue &&
		tags[TagCluster] == owner.Cluster &&
		tags[TagOwner] == owner.Name
}

// Adopted reports whether tags mark a resource the operator took over rather
// than created; such a resource is never deleted by the operator.
func Adopted(tags map[string]string) bool {
	return tags[TagAdopted] == "true"
}

// LabelOwner is the label the operator puts on Kubernetes objects it manages
// (service accounts, Profiles), valued with the AwsKubeflowProfiles name.
const LabelOwner = TagOwner
