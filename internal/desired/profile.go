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
	_, haveQuota := haveSpec["resourceQuotaSpec"]
	_, wantQuota := wantSpec["resourceQuotaSpec"]
	var h quotaHolders // no one holds a quota the Profile lacks
	if haveQuota {
		h = quotaHoldersOf(have, manager)
	}
	for k, v := range wantSpec {
		if k == "resourceQuotaSpec" && h.byOthers {
			// Parts someone else added are theirs: the operator's quota
			// only has to be there.
			if !covers(normalize(haveSpec[k]), normalize(v)) {
				return false
			}
			continue
		}
		if !equality.Semantic.DeepEqual(normalize(haveSpec[k]), normalize(v)) {
			return false
		}
	}
	return !quotaToRemove(haveQuota, wantQuota, h)
}

// covers reports whether have holds every field of want with its value.
func covers(have, want any) bool {
	wantMap, ok := want.(map[string]any)
	if !ok {
		return equality.Semantic.DeepEqual(have, want)
	}
	haveMap, ok := have.(map[string]any)
	if !ok {
		return false
	}
	for k, v := range wantMap {
		if !covers(haveMap[k], v) {
			return false
		}
	}
	return true
}

// QuotaToReset reports whether the quota must be removed by a patch before
// want is applied: the operator holds it by an Update entry, as when it
// created the Profile, no one else holds a part of it, and it differs from
// want's. An apply of the operator's removes or shrinks only what its Apply
// entry holds; after the patch and the apply, the Apply entry holds it.
func QuotaToReset(have, want *unstructured.Unstructured, manager string) bool {
	haveQuota, found, _ := unstructured.NestedFieldNoCopy(have.Object, "spec", "resourceQuotaSpec")
	if !found {
		return false
	}
	h := quotaHoldersOf(have, manager)
	if !h.byUpdate || h.byOthers {
		return false
	}
	wantQuota, _, _ := unstructured.NestedFieldNoCopy(want.Object, "spec", "resourceQuotaSpec")
	return !equality.Semantic.DeepEqual(normalize(haveQuota), normalize(wantQuota))
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
	return quotaToRemove(haveQuota, wantQuota, quotaHoldersOf(have, manager))
}

func quotaToRemove(haveQuota, wantQuota bool, h quotaHolders) bool {
	return haveQuota && !wantQuota && (h.byUpdate || h.byApply) && !h.byOthers
}

// quotaHolders says who holds a part of a Profile's resourceQuotaSpec.
type quotaHolders struct {
	byUpdate, byApply bool // the operator's entries
	byOthers          bool
}

func quotaHoldersOf(u *unstructured.Unstructured, manager string) quotaHolders {
	var h quotaHolders
	for _, mf := range u.GetManagedFields() {
		held, part := quotaHeld(mf)
		switch {
		case !held:
		case mf.Manager != manager:
			// Kubeflow's controller writes an empty resourceQuotaSpec with
			// every update (its Go field is no pointer): holding the bare
			// field is holding none of the quota.
			h.byOthers = h.byOthers || part
		case mf.Operation == metav1.ManagedFieldsOperationApply:
			h.byApply = true
		default:
			h.byUpdate = true
		}
	}
	return h
}

// quotaHeld says whether the entry holds the resourceQuotaSpec field, and
// whether it holds a part of it beyond the bare field.
func quotaHeld(mf metav1.ManagedFieldsEntry) (held, part bool) {
	if mf.FieldsV1 == nil {
		return false, false
	}
	var fields map[string]any
	if err := json.Unmarshal(mf.FieldsV1.Raw, &fields); err != nil {
		return false, false
	}
	spec, _ := fields["f:spec"].(map[string]any)
	quota, held := spec[quotaField].(map[string]any)
	if !held {
		return false, false
	}
	for k := range quota {
		if k != "." {
			return true, true
		}
	}
	return true, false
}

// TrimManagedFields keeps of u's managed fields only what the operator
// reads of them: who holds the resourceQuotaSpec field or a part of it, by
// which kind of entry. manager's entries are kept, and other managers' that
// hold a part of the quota; each then holds a part, the bare field, or
// nothing. The manager's cache keeps Profiles so: their field sets are a
// large part of each cached Profile and are never read otherwise.
func TrimManagedFields(u *unstructured.Unstructured, manager string) {
	all := u.GetManagedFields()
	if len(all) == 0 {
		return
	}
	kept := all[:0]
	for _, mf := range all {
		held, part := quotaHeld(mf)
		if mf.Manager != manager && !part {
			continue
		}
		raw := `{}`
		switch {
		case part:
			raw = `{"f:spec":{"` + quotaField + `":{"f:hard":{}}}}`
		case held:
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
