package desired_test

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

type unstructuredProfile = unstructured.Unstructured

func v1alpha1Owner() v1alpha1.ProfileOwner {
	return v1alpha1.ProfileOwner{Kind: "User", Name: "a@example.com"}
}

// A quota the operator applied and the spec dropped must go; one someone
// else set is theirs (an adopted Profile's, say) and must not make every
// reconcile apply again. A plugin that is not annotateOnly is changed.
func TestProfileMatches(t *testing.T) {
	profile := desired.Profile{Name: "team-a", Owner: v1alpha1.ProfileOwner{Kind: "User", Name: "a@example.com"}}
	want := desired.ProfileObject(profile, "kf", "arn:aws:iam::123456789012:role/r", false)
	withQuota := func(manager string) *unstructured.Unstructured {
		have := want.DeepCopy()
		have.Object["spec"].(map[string]any)["resourceQuotaSpec"] = map[string]any{"hard": map[string]any{"cpu": "8"}}
		have.SetManagedFields([]metav1.ManagedFieldsEntry{{
			Manager: manager, Operation: metav1.ManagedFieldsOperationApply, FieldsType: "FieldsV1",
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:resourceQuotaSpec":{".":{}},"f:owner":{}}}`)},
		}})
		return have
	}
	cases := map[string]struct {
		have  *unstructured.Unstructured
		match bool
	}{
		"same fields": {have: want.DeepCopy(), match: true},
		"a quota the operator set and no longer wants": {have: withQuota("awskubeflowprofiles-operator")},
		"a quota someone else set":                     {have: withQuota("kubectl"), match: true},
		"a plugin that lets Kubeflow write IAM, as older versions made it": {have: func() *unstructured.Unstructured {
			have := want.DeepCopy()
			plugin := have.Object["spec"].(map[string]any)["plugins"].([]any)[0].(map[string]any)
			delete(plugin["spec"].(map[string]any), "annotateOnly")
			return have
		}()},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			NewWithT(t).Expect(desired.ProfileMatches(tc.have, want, "awskubeflowprofiles-operator")).To(Equal(tc.match))
		})
	}
}

// A cached Profile keeps of its managed fields only the operator's entries,
// holding resourceQuotaSpec or nothing, and ProfileMatches reads the same
// from it as from the whole Profile.
func TestTrimManagedFields(t *testing.T) {
	const operator = "awskubeflowprofiles-operator"
	profile := desired.Profile{Name: "team-a", Owner: v1alpha1Owner()}
	want := desired.ProfileObject(profile, "kf", "arn:aws:iam::123456789012:role/r", false)
	entry := func(manager, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationApply, APIVersion: "kubeflow.org/v1",
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
	}
	const withQuota = `{"f:metadata":{"f:labels":{"f:awskubeflowprofiles.kubeflow.aws/owner":{}}},"f:spec":{"f:owner":{"f:kind":{},"f:name":{}},"f:plugins":{},"f:resourceQuotaSpec":{".":{},"f:hard":{"f:cpu":{}}}}}`
	const withoutQuota = `{"f:metadata":{"f:labels":{"f:awskubeflowprofiles.kubeflow.aws/owner":{}}},"f:spec":{"f:owner":{"f:kind":{},"f:name":{}},"f:plugins":{}}}`
	cases := map[string]struct {
		entries []metav1.ManagedFieldsEntry
		kept    []string // the kept entries' field sets, in order
	}{
		"none":                                    {},
		"the operator's, holding the quota":       {entries: []metav1.ManagedFieldsEntry{entry(operator, withQuota)}, kept: []string{`{"f:spec":{"f:resourceQuotaSpec":{}}}`}},
		"the operator's, without the quota":       {entries: []metav1.ManagedFieldsEntry{entry(operator, withoutQuota)}, kept: []string{`{}`}},
		"another manager's only":                  {entries: []metav1.ManagedFieldsEntry{entry("kubectl", withQuota)}},
		"another manager's holding the quota too": {entries: []metav1.ManagedFieldsEntry{entry("kubectl", withQuota), entry(operator, withoutQuota)}, kept: []string{`{}`}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			have := want.DeepCopy()
			have.Object["spec"].(map[string]any)["resourceQuotaSpec"] = map[string]any{"hard": map[string]any{"cpu": "8"}}
			if tc.entries != nil {
				have.SetManagedFields(tc.entries)
			}
			whole := desired.ProfileMatches(have, want, operator)
			desired.TrimManagedFields(have, operator)
			var kept []string
			for _, mf := range have.GetManagedFields() {
				g.Expect(mf.Manager).To(Equal(operator))
				kept = append(kept, string(mf.FieldsV1.Raw))
			}
			g.Expect(kept).To(Equal(tc.kept))
			g.Expect(desired.ProfileMatches(have, want, operator)).To(Equal(whole), "ProfileMatches on the trimmed Profile")
			_, found, _ := unstructured.NestedFieldNoCopy(have.Object, "metadata", "managedFields")
			g.Expect(found).To(Equal(len(tc.kept) > 0))
		})
	}
}
