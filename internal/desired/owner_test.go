package desired_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

func TestClusterOwner(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	obj := func(name, cluster, region, account string, created time.Duration) v1alpha1.AwsKubeflowProfiles {
		return v1alpha1.AwsKubeflowProfiles{
			ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(created))},
			Spec:       v1alpha1.AwsKubeflowProfilesSpec{Cluster: v1alpha1.ClusterSpec{Name: cluster, Region: region, AccountID: account}},
		}
	}
	tests := []struct {
		name   string
		cr     v1alpha1.AwsKubeflowProfiles
		others []v1alpha1.AwsKubeflowProfiles
		want   string
	}{
		{name: "alone", cr: obj("a", "prod", "us-west-2", "", 0)},
		{name: "an older object of the cluster owns it", cr: obj("b", "prod", "us-west-2", "", time.Minute),
			others: []v1alpha1.AwsKubeflowProfiles{obj("a", "prod", "us-west-2", "", 0)}, want: "a"},
		{name: "a newer one does not displace it", cr: obj("a", "prod", "us-west-2", "", 0),
			others: []v1alpha1.AwsKubeflowProfiles{obj("b", "prod", "us-west-2", "", time.Minute)}},
		{name: "the oldest of several", cr: obj("c", "prod", "us-west-2", "", 2*time.Minute),
			others: []v1alpha1.AwsKubeflowProfiles{obj("b", "prod", "us-west-2", "", time.Minute), obj("a", "prod", "us-west-2", "", 0)}, want: "a"},
		{name: "created in the same second: by name", cr: obj("b", "prod", "us-west-2", "", 0),
			others: []v1alpha1.AwsKubeflowProfiles{obj("a", "prod", "us-west-2", "", 0)}, want: "a"},
		{name: "created in the same second: the one already managing it", cr: func() v1alpha1.AwsKubeflowProfiles {
			o := obj("a", "prod", "us-west-2", "", 0)
			return o
		}(), others: []v1alpha1.AwsKubeflowProfiles{func() v1alpha1.AwsKubeflowProfiles {
			o := obj("z", "prod", "us-west-2", "", 0)
			o.Status.ObservedGeneration = 1
			return o
		}()}, want: "z"},
		{name: "another cluster", cr: obj("b", "dev", "us-west-2", "", time.Minute),
			others: []v1alpha1.AwsKubeflowProfiles{obj("a", "prod", "us-west-2", "", 0)}},
		{name: "the same name in another region", cr: obj("b", "prod", "eu-west-1", "", time.Minute),
			others: []v1alpha1.AwsKubeflowProfiles{obj("a", "prod", "us-west-2", "", 0)}},
		{name: "the same name in another account", cr: obj("b", "prod", "us-west-2", "111111111111", time.Minute),
			others: []v1alpha1.AwsKubeflowProfiles{obj("a", "prod", "us-west-2", "222222222222", 0)}},
		{name: "an account left to discovery may be the same", cr: obj("b", "prod", "us-west-2", "", time.Minute),
			others: []v1alpha1.AwsKubeflowProfiles{obj("a", "prod", "us-west-2", "222222222222", 0)}, want: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := append([]v1alpha1.AwsKubeflowProfiles{tt.cr}, tt.others...)
			got, found := desired.ClusterOwner(&tt.cr, all)
			if got != tt.want || found != (tt.want != "") {
				t.Fatalf("ClusterOwner = %q, %v; want %q", got, found, tt.want)
			}
		})
	}
}
