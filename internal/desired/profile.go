package desired

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ProfileGVK is the Kubeflow Profile kind.
var ProfileGVK = schema.GroupVersionKind{Group: "kubeflow.org", Version: "v1", Kind: "Profile"}

// ProfileListGVK is the list kind of Kubeflow Profiles.
var ProfileListGVK = schema.GroupVersionKind{Group: "kubeflow.org", Version: "v1", Kind: "ProfileList"}

// PluginKindAwsIam is the kind of Kubeflow's IRSA plugin in spec.plugins.
const PluginKindAwsIam = "AwsIamForServiceAccount"

// AnnotationAdopted marks a Profile the operator took over; it is never
// deleted by the operator.
const AnnotationAdopted = "kubeflow.aws/adopted"

// AnnotationRetained marks a Profile the deletion policy kept when it left
// the spec: no longer managed, and never deleted by the operator, unless it
// returns to the spec.
const AnnotationRetained = "kubeflow.aws/retained"

// NewProfileObject is an empty Kubeflow Profile to read into.
func NewProfileObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(ProfileGVK)
	return u
}

// NewProfileList is an empty list of Kubeflow Profiles to read into.
func NewProfileList() *unstructured.UnstructuredList {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(ProfileListGVK)
	return l
}

// ProfileObject is the Kubeflow Profile the operator applies for p: its
// owner, its quota and the AwsIamForServiceAccount plugin naming roleARN.
// The plugin is always annotateOnly: Kubeflow's profile controller then
// annotates default-editor with the role but never writes the role's trust,
// which the operator owns completely. Without it, Kubeflow's finalizer would
// rewrite the trust to admit every service account of the cluster when the
// Profile is deleted, a window no repair can close in time.
func ProfileObject(p Profile, owner, roleARN string, adopted bool) *unstructured.Unstructured {
	pluginSpec := map[string]any{"awsIamRole": roleARN, "annotateOnly": true}
	spec := map[string]any{
		"owner": map[string]any{
			"apiGroup": "rbac.authorization.k8s.io",
			"kind":     p.Owner.Kind,
			"name":     p.Owner.Name,
		},
		"plugins": []any{map[string]any{"kind": PluginKindAwsIam, "spec": pluginSpec}},
	}
	if p.ResourceQuotaSpec != nil {
		quota, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p.ResourceQuotaSpec)
		if err == nil {
			spec["resourceQuotaSpec"] = quota
		}
	}
	u := NewProfileObject()
	u.SetName(p.Name)
	u.SetLabels(map[string]string{LabelOwner: owner})
	if adopted {
		u.SetAnnotations(map[string]string{AnnotationAdopted: "true"})
	}
	u.Object["spec"] = spec
	return u
}

// ProfileMatches reports whether applying want as field manager would
// change nothing: the Profile has every field want sets, and no quota that
// the manager set earlier and want no longer has. A quota someone else set is
// theirs to keep.
func ProfileMatches(have, want *unstructured.Unstructured, manager string) bool {
	for k, v := range want.GetLabels() {
		if have.GetLabels()[k] != v {
			return false
		}
	}
	for k, v := range want.GetAnnotations() {
		if have.GetAnnotations()[k] != v {
			return false
		}
	}
	haveSpec, _, _ := unstructured.NestedMap(have.Object, "spec")
	wantSpec, _, _ := unstructured.NestedMap(want.Object, "spec")
	for k, v := range wantSpec {
		if !equality.Semantic.DeepEqual(normalize(haveSpec[k]), normalize(v)) {
			return false
		}
	}
	return !QuotaToRemove(have, want, manager)
}

// QuotaToRemove reports whether have carries a resourceQuotaSpec that
// manager wrote, that no other manager holds any part of, and that want no
// longer has. A quota another manager edited since, or set, is theirs.
func QuotaToRemove(have, want *unstructured.Unstructured, manager string) bool {
	_, haveQuota, _ := unstructured.NestedFieldNoCopy(have.Object, "spec", "resourceQuotaSpec")
	_, wantQuota, _ := unstructured.NestedFieldNoCopy(want.Object, "spec", "resourceQuotaSpec")
	if !haveQuota || wantQuota {
		return false
	}
	h := quotaHoldersOf(have, manager)
	return (h.byUpdate || h.byApply) && !h.byOthers
}

// QuotaHeldByUpdate reports whether manager holds the Profile's quota by an
// Update entry of the managed fields, as when it created the Profile: an
// apply of manager's removes only the fields of its Apply entry, so such a
// quota must be removed by a patch.
func QuotaHeldByUpdate(have *unstructured.Unstructured, manager string) bool {
	return quotaHoldersOf(have, manager).byUpdate
}

// quotaHolders says who holds a part of a Profile's resourceQuotaSpec.
type quotaHolders struct {
	byUpdate, byApply bool // the operator's entries
	byOthers          bool
}

func quotaHoldersOf(u *unstructured.Unstructured, manager string) quotaHolders {
	var h quotaHolders
	for _, mf := range u.GetManagedFields() {
		if !entryHoldsSpecField(mf, quotaField) {
			continue
		}
		switch {
		case mf.Manager != manager:
			h.byOthers = true
		case mf.Operation == metav1.ManagedFieldsOperationApply:
			h.byApply = true
		default:
			h.byUpdate = true
		}
	}
	return h
}

func entryHoldsSpecField(mf metav1.ManagedFieldsEntry, field string) bool {
	if mf.FieldsV1 == nil {
		return false
	}
	var fields map[string]any
	if err := json.Unmarshal(mf.FieldsV1.Raw, &fields); err != nil {
		return false
	}
	spec, ok := fields["f:spec"].(map[string]any)
	if !ok {
		return false
	}
	_, ok = spec[field]
	return ok
}

// TrimManagedFields keeps of u's managed fields only what the operator
// reads of them: who holds a part of resourceQuotaSpec, by which kind of
// entry. manager's entries are kept, and other managers' that hold a part
// of the quota; each then holds the quota or nothing. The manager's cache
// keeps Profiles so: their field sets are a large part of each cached
// Profile and are never read otherwise.
func TrimManagedFields(u *unstructured.Unstructured, manager string) {
	all := u.GetManagedFields()
	if len(all) == 0 {
		return
	}
	kept := all[:0]
	for _, mf := range all {
		holds := entryHoldsSpecField(mf, quotaField)
		if mf.Manager != manager && !holds {
			continue
		}
		raw := `{}`
		if holds {
			raw = `{"f:spec":{"` + quotaField + `":{}}}`
		}
		mf.FieldsV1 = &metav1.FieldsV1{Raw: []byte(raw)}
		kept = append(kept, mf)
	}
	if len(kept) == 0 {
		kept = nil // removes the field, where an empty list would keep it
	}
	u.SetManagedFields(kept)
}

// quotaField is the field of a Profile's spec that the operator leaves to
// others unless it applied it.
const quotaField = "f:resourceQuotaSpec"

// normalize round-trips a value through JSON so that int64 and float64
// numbers, and typed and untyped maps, compare equal.
func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return v
	}
	return out
}

// ProfileOwnedBy reports whether the operator object owner manages the
// Profile.
func ProfileOwnedBy(u *unstructured.Unstructured, owner string) bool {
	return u.GetLabels()[LabelOwner] == owner
}

// ProfileRetained reports whether the deletion policy kept the Profile.
func ProfileRetained(u *unstructured.Unstructured) bool {
	return u.GetAnnotations()[AnnotationRetained] == "true"
}

// ProfileAdopted reports whether the Profile was adopted rather than created.
func ProfileAdopted(u *unstructured.Unstructured) bool {
	return u.GetAnnotations()[AnnotationAdopted] == "true"
}

// ProfilePlugin returns the role ARN and annotateOnly flag of the Profile's
// AwsIamForServiceAccount plugin.
func ProfilePlugin(u *unstructured.Unstructured) (roleARN string, annotateOnly, found bool) {
	plugins, _, _ := unstructured.NestedSlice(u.Object, "spec", "plugins")
	for _, p := range plugins {
		m, ok := p.(map[string]any)
		if !ok || m["kind"] != PluginKindAwsIam {
			continue
		}
		spec, _ := m["spec"].(map[string]any)
		arn, _ := spec["awsIamRole"].(string)
		only, _ := spec["annotateOnly"].(bool)
		return arn, only, true
	}
	return "", false, false
}
