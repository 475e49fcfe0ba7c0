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
	withQuota := func(entries ...metav1.ManagedFieldsEntry) *unstructured.Unstructured {
		have := want.DeepCopy()
		have.Object["spec"].(map[string]any)["resourceQuotaSpec"] = map[string]any{"hard": map[string]any{"cpu": "8"}}
		have.SetManagedFields(entries)
		return have
	}
	entry := func(manager string, op metav1.ManagedFieldsOperationType, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
	}
	const quota = `{"f:spec":{"f:resourceQuotaSpec":{".":{}},"f:owner":{}}}`
	const cpu = `{"f:spec":{"f:resourceQuotaSpec":{"f:hard":{"f:cpu":{}}}}}`
	const operator = "awskubeflowprofiles-operator"
	cases := map[string]struct {
		have  *unstructured.Unstructured
		match bool
	}{
		"same fields": {have: want.DeepCopy(), match: true},
		"a quota the operator applied and no longer wants": {have: withQuota(entry(operator, metav1.ManagedFieldsOperationApply, quota))},
		"a quota the operator created and no longer wants": {have: withQuota(entry(operator, metav1.ManagedFieldsOperationUpdate, quota))},
		"a quota someone else set":                         {have: withQuota(entry("kubectl", metav1.ManagedFieldsOperationUpdate, quota)), match: true},
		"a quota the operator created and someone edited since": {have: withQuota(
			entry(operator, metav1.ManagedFieldsOperationUpdate, quota), entry("kubectl-edit", metav1.ManagedFieldsOperationUpdate, cpu)), match: true},
		"a quota the operator applied, beside Kubeflow's empty resourceQuotaSpec": {have: withQuota(
			entry(operator, metav1.ManagedFieldsOperationApply, quota), entry("kubeflow", metav1.ManagedFieldsOperationUpdate, `{"f:spec":{"f:resourceQuotaSpec":{}}}`))},
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

// A cached Profile keeps of its managed fields who holds a part of its
// quota, by which kind of entry: the operator's entries and the others'
// that hold a part, each holding the quota or nothing. ProfileMatches,
// QuotaToRemove and QuotaHeldByUpdate read the same from it as from the
// whole Profile.
func TestTrimManagedFields(t *testing.T) {
	const operator = "awskubeflowprofiles-operator"
	profile := desired.Profile{Name: "team-a", Owner: v1alpha1Owner()}
	want := desired.ProfileObject(profile, "kf", "arn:aws:iam::123456789012:role/r", false)
	entry := func(manager string, op metav1.ManagedFieldsOperationType, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, APIVersion: "kubeflow.org/v1",
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
	}
	const (
		apply  = metav1.ManagedFieldsOperationApply
		update = metav1.ManagedFieldsOperationUpdate
	)
	const withQuota = `{"f:metadata":{"f:labels":{"f:awskubeflowprofiles.kubeflow.aws/owner":{}}},"f:spec":{"f:owner":{"f:kind":{},"f:name":{}},"f:plugins":{},"f:resourceQuotaSpec":{".":{},"f:hard":{"f:cpu":{}}}}}`
	const withoutQuota = `{"f:metadata":{"f:labels":{"f:awskubeflowprofiles.kubeflow.aws/owner":{}}},"f:spec":{"f:owner":{"f:kind":{},"f:name":{}},"f:plugins":{}}}`
	const held = `{"f:spec":{"f:resourceQuotaSpec":{}}}`
	const part = `{"f:spec":{"f:resourceQuotaSpec":{"f:hard":{}}}}`
	type kept struct {
		manager string
		op      metav1.ManagedFieldsOperationType
		fields  string
	}
	cases := map[string]struct {
		entries []metav1.ManagedFieldsEntry
		kept    []kept
	}{
		"none": {},
		"the operator's apply, holding the quota":  {entries: []metav1.ManagedFieldsEntry{entry(operator, apply, withQuota)}, kept: []kept{{operator, apply, part}}},
		"the operator's create, holding the quota": {entries: []metav1.ManagedFieldsEntry{entry(operator, update, withQuota)}, kept: []kept{{operator, update, part}}},
		"Kubeflow's empty resourceQuotaSpec":       {entries: []metav1.ManagedFieldsEntry{entry(operator, apply, withQuota), entry("kubeflow", update, held)}, kept: []kept{{operator, apply, part}}},
		"the operator's bare field":                {entries: []metav1.ManagedFieldsEntry{entry(operator, update, held)}, kept: []kept{{operator, update, held}}},
		"the operator's, without the quota":        {entries: []metav1.ManagedFieldsEntry{entry(operator, apply, withoutQuota)}, kept: []kept{{operator, apply, `{}`}}},
		"another manager's, without the quota":     {entries: []metav1.ManagedFieldsEntry{entry("kubectl", update, withoutQuota)}},
		"another manager's, holding the quota":     {entries: []metav1.ManagedFieldsEntry{entry("kubectl", update, withQuota)}, kept: []kept{{"kubectl", update, part}}},
		"the operator's create and an edit of the quota since": {
			entries: []metav1.ManagedFieldsEntry{entry(operator, update, withQuota), entry("kubectl-edit", update, `{"f:spec":{"f:resourceQuotaSpec":{"f:hard":{"f:memory":{}}}}}`), entry("other", update, withoutQuota)},
			kept:    []kept{{operator, update, part}, {"kubectl-edit", update, part}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			have := want.DeepCopy()
			have.Object["spec"].(map[string]any)["resourceQuotaSpec"] = map[string]any{"hard": map[string]any{"cpu": "8"}}
			if tc.entries != nil {
				have.SetManagedFields(tc.entries)
			}
			matches, remove, reset := desired.ProfileMatches(have, want, operator), desired.QuotaToRemove(have, want, operator), desired.QuotaToReset(have, want, operator)
			desired.TrimManagedFields(have, operator)
			var got []kept
			for _, mf := range have.GetManagedFields() {
				got = append(got, kept{mf.Manager, mf.Operation, string(mf.FieldsV1.Raw)})
			}
			g.Expect(got).To(Equal(tc.kept))
			g.Expect(desired.ProfileMatches(have, want, operator)).To(Equal(matches), "ProfileMatches on the trimmed Profile")
			g.Expect(desired.QuotaToRemove(have, want, operator)).To(Equal(remove), "QuotaToRemove on the trimmed Profile")
			g.Expect(desired.QuotaToReset(have, want, operator)).To(Equal(reset), "QuotaToReset on the trimmed Profile")
			_, found, _ := unstructured.NestedFieldNoCopy(have.Object, "metadata", "managedFields")
			g.Expect(found).To(Equal(len(tc.kept) > 0))
		})
	}
}

// The quota is removed by a patch before the apply only where the
// operator's Update entry holds it (it created the Profile), no one else
// holds a part, and it differs from the spec's; an Apply entry's quota the
// apply itself removes or shrinks.
func TestQuotaToReset(t *testing.T) {
	const operator = "awskubeflowprofiles-operator"
	profile := desired.Profile{Name: "team-a", Owner: v1alpha1Owner()}
	quota := func(cpu string) *unstructured.Unstructured {
		u := desired.ProfileObject(profile, "kf", "arn:aws:iam::123456789012:role/r", false)
		if cpu != "" {
			u.Object["spec"].(map[string]any)["resourceQuotaSpec"] = map[string]any{"hard": map[string]any{"cpu": cpu}}
		}
		return u
	}
	entry := func(manager string, op metav1.ManagedFieldsOperationType) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, FieldsType: "FieldsV1",
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:resourceQuotaSpec":{".":{},"f:hard":{"f:cpu":{}}}}}`)}}
	}
	for name, tc := range map[string]struct {
		entries    []metav1.ManagedFieldsEntry
		have, want string
		reset      bool
	}{
		"created, dropped from the spec": {entries: []metav1.ManagedFieldsEntry{entry(operator, metav1.ManagedFieldsOperationUpdate)}, have: "4", reset: true},
		"created, changed in the spec":   {entries: []metav1.ManagedFieldsEntry{entry(operator, metav1.ManagedFieldsOperationUpdate)}, have: "4", want: "8", reset: true},
		"created, unchanged":             {entries: []metav1.ManagedFieldsEntry{entry(operator, metav1.ManagedFieldsOperationUpdate)}, have: "4", want: "4"},
		"applied, dropped from the spec": {entries: []metav1.ManagedFieldsEntry{entry(operator, metav1.ManagedFieldsOperationApply)}, have: "4"},
		"created, and edited by someone": {entries: []metav1.ManagedFieldsEntry{entry(operator, metav1.ManagedFieldsOperationUpdate), entry("kubectl-edit", metav1.ManagedFieldsOperationUpdate)}, have: "4"},
		"no quota on the Profile":        {entries: []metav1.ManagedFieldsEntry{entry(operator, metav1.ManagedFieldsOperationUpdate)}, want: "4"},
	} {
		t.Run(name, func(t *testing.T) {
			have := quota(tc.have)
			have.SetManagedFields(tc.entries)
			NewWithT(t).Expect(desired.QuotaToReset(have, quota(tc.want), operator)).To(Equal(tc.reset))
		})
	}
}
