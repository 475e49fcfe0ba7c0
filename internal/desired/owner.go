package desired

import (
	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
)

// ClusterOwner returns the name of the object that manages cr's cluster
// instead of cr: the oldest other object (by creation time; see
// createdBefore for a tie) that
// names the same cluster (name and region, and the account where both name
// one) and was created before cr. Of a set of objects naming one cluster,
// exactly one has no such owner, and a newer object never displaces it.
func ClusterOwner(cr *v1alpha1.AwsKubeflowProfiles, all []v1alpha1.AwsKubeflowProfiles) (string, bool) {
	var owner *v1alpha1.AwsKubeflowProfiles
	for i := range all {
		other := &all[i]
		if other.Name == cr.Name || !sameCluster(cr.Spec.Cluster, other.Spec.Cluster) || !createdBefore(other, cr) {
			continue
		}
		if owner == nil || createdBefore(other, owner) {
			owner = other
		}
	}
	if owner == nil {
		return "", false
	}
	return owner.Name, true
}

func sameCluster(a, b v1alpha1.ClusterSpec) bool {
	if a.Name != b.Name || a.Region != b.Region {
		return false
	}
	return a.AccountID == "" || b.AccountID == "" || a.AccountID == b.AccountID
}

// createdBefore orders objects by creation time. Creation times have whole
// seconds, so of two created in one second the one that already manages the
// cluster (it has a status) comes first, and only then the name: a newer
// object must not displace one already writing for the cluster.
func createdBefore(a, b *v1alpha1.AwsKubeflowProfiles) bool {
	ta, tb := a.CreationTimestamp, b.CreationTimestamp
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	if ha, hb := holdsCluster(a), holdsCluster(b); ha != hb {
		return ha
	}
	return a.Name < b.Name
}

func holdsCluster(o *v1alpha1.AwsKubeflowProfiles) bool {
	return o.Status.ObservedGeneration > 0 || o.Status.OIDCProvider.ARN != ""
}
