package framework

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestSkipReason(t *testing.T) {
	local, kind := &localTarget{}, &kindTarget{}
	cases := map[string]struct {
		target Target
		labels []string
		want   string
	}{
		"a spec for every target runs on local": {target: local, labels: []string{"local", "kind", "eks"}},
		"a pod spec says why local cannot run it": {
			target: local, labels: []string{"kind", "eks", "needs:pod"},
			want: "local: no kubelet runs pods on the local control plane (needs:pod)",
		},
		"kind runs pod specs": {target: kind, labels: []string{"kind", "eks", "needs:pod", "needs:kubeflow"}},
		"kind has no real IAM": {
			target: kind, labels: []string{"eks", "needs:real-iam"},
			want: "kind: LocalStack enforces no IAM policy (needs:real-iam)",
		},
		"a spec not labelled for the target": {target: kind, labels: []string{"local"}, want: "kind: this spec runs only on local"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			NewWithT(t).Expect(SkipReason(tc.target, tc.labels)).To(Equal(tc.want))
		})
	}
}
