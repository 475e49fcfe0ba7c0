package desired_test

import (
	"fmt"
	"testing"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

// Build runs on every reconcile; this is its cost at the API's limit of 1000
// profiles.
func BenchmarkBuild1000Profiles(b *testing.B) {
	spec := baseSpec()
	spec.Profiles = nil
	for i := range 1000 {
		spec.Profiles = append(spec.Profiles, v1alpha1.ProfileSpec{Name: fmt.Sprintf("team-%04d", i), Owner: v1alpha1.ProfileOwner{Name: "x"}})
	}
	for b.Loop() {
		if _, err := desired.Build("kf", spec, facts); err != nil {
			b.Fatal(err)
		}
	}
}
