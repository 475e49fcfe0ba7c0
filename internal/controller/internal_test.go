package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/diagnose"
)

func profileScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	scheme.AddKnownTypeWithName(desired.ProfileGVK, &unstructured.Unstructured{})
	scheme.AddKnownTypeWithName(desired.ProfileListGVK, &unstructured.UnstructuredList{})
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	return scheme
}

// A Profile the cache has not seen yet may exist: the operator creates, and
// on AlreadyExists waits to read it, rather than applying over it.
func TestWriteProfileNeverTakesOverAnUnseenProfile(t *testing.T) {
	g := NewWithT(t)
	scheme := profileScheme()
	theirs := desired.NewProfileObject()
	theirs.SetName("team-a")
	theirs.Object["spec"] = map[string]any{"owner": map[string]any{"kind": "User", "name": "carol@example.com"}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(theirs).Build()
	r := &Reconciler{Client: c, APIReader: c}

	want := desired.ProfileObject(desired.Profile{Name: "team-a"}, "kf", "arn:aws:iam::123456789012:role/r", false)
	_, err := r.writeProfile(context.Background(), nil, want)
	g.Expect(err).To(MatchError(errProfileChanged))

	now := desired.NewProfileObject()
	g.Expect(c.Get(context.Background(), client.ObjectKey{Name: "team-a"}, now)).To(Succeed())
	g.Expect(now.GetLabels()).NotTo(HaveKey(desired.LabelOwner))
	g.Expect(now.Object["spec"]).To(Equal(theirs.Object["spec"]))
}

func TestPropagationOfRecentCreates(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	r := &Reconciler{Clock: clock}
	provider := "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/id/X"
	malformed := fmt.Errorf("creating role r: %w", &smithy.OperationError{ServiceID: "IAM", OperationName: "CreateRole",
		Err: &smithy.GenericAPIError{Code: "MalformedPolicyDocument", Message: "Invalid principal in policy"}})
	g := NewWithT(t)

	g.Expect(r.propagationOf(malformed, provider)).To(Equal(malformed), "nothing was created: the error stands")
	r.noteCreated(provider)
	g.Expect(r.propagationOf(malformed, provider)).To(MatchError(awsiam.ErrPropagating), "IAM has not caught up with the new provider")
	g.Expect(r.propagationOf(errors.New("boom"), provider)).To(MatchError("boom"), "other errors stand")
	clock.SetTime(clock.Now().Add(propagationWindow + time.Second))
	g.Expect(r.propagationOf(malformed, provider)).To(Equal(malformed), "after the window the document is really malformed")
}

func TestRunProfilesContainsAPanic(t *testing.T) {
	g := NewWithT(t)
	r := &Reconciler{ProfileConcurrency: 2}
	retained := v1alpha1.ProfileStatus{Name: "team-c", State: v1alpha1.ProfileStateRetained, RoleARN: "arn:aws:iam::123456789012:role/kubeflow/c/team-c", Ready: true}
	results := r.runProfiles(context.Background(), []profileTask{
		{v1alpha1.ProfileStatus{Name: "team-a"}, func(context.Context) profileResult { return profileResult{keep: true} }},
		{v1alpha1.ProfileStatus{Name: "team-b"}, func(context.Context) profileResult { panic("nil response") }},
		{retained, func(context.Context) profileResult { panic("nil response") }},
	})
	g.Expect(results[0].err).NotTo(HaveOccurred())
	g.Expect(results[1].err).To(MatchError(ContainSubstring("profile team-b panicked: nil response")))
	g.Expect(results[1].status.Name).To(Equal("team-b"), "its status entry is its own, not a nameless one the API server refuses")
	g.Expect(results[1].status.Message).To(ContainSubstring("panicked"))
	why := "a retained profile's entry keeps its state and role, so the next pass still closes that role"
	g.Expect(results[2].status.State).To(Equal(v1alpha1.ProfileStateRetained), why)
	g.Expect(results[2].status.RoleARN).To(Equal(retained.RoleARN), why)
	g.Expect(results[2].retainsRole).To(BeTrue(), why)
	g.Expect(results[2].status.Ready).To(BeFalse())
}

// The API server refuses a status that lists a profile twice; the pass that
// retains a removed profile must write one that it accepts the first time.
func TestRetainingARemovedProfileListsItOnce(t *testing.T) {
	g := NewWithT(t)
	roleARN := "arn:aws:iam::123456789012:role/kubeflow/c/team-a-c-role"
	p := desired.ProfileObject(desired.Profile{Name: "team-a", Owner: v1alpha1.ProfileOwner{Kind: "User", Name: "a@example.com"}}, "kf", roleARN, false)
	c := fake.NewClientBuilder().WithScheme(profileScheme()).WithObjects(p).Build()
	r := &Reconciler{Client: c, APIReader: c, ProfileConcurrency: 1}
	cr := &v1alpha1.AwsKubeflowProfiles{}
	cr.Name = "kf"
	cr.Spec.DeletionPolicy.Profiles = v1alpha1.DeletionPolicyRetain
	cr.Status.Profiles = []v1alpha1.ProfileStatus{{Name: "team-a", State: v1alpha1.ProfileStateManaged, RoleARN: roleARN, Ready: true}}
	s := &scope{cr: cr, before: cr.DeepCopy(), parts: map[string]outcome{}}

	r.reconcileProfiles(context.Background(), s)

	g.Expect(cr.Status.Profiles).To(HaveLen(1))
	g.Expect(cr.Status.Profiles[0].State).To(Equal(v1alpha1.ProfileStateRetained))
	g.Expect(cr.Status.Profiles[0].RoleARN).To(Equal(roleARN))
	now := desired.NewProfileObject()
	g.Expect(c.Get(context.Background(), client.ObjectKey{Name: "team-a"}, now)).To(Succeed())
	g.Expect(desired.ProfileRetained(now)).To(BeTrue())
}

// Two passes may both carry out a deletion, the second from a stale cache:
// finding the object gone when it lets go is success, not an error to log.
func TestRemovingTheFinalizerOfAnObjectAlreadyGone(t *testing.T) {
	g := NewWithT(t)
	c := fake.NewClientBuilder().WithScheme(profileScheme()).Build()
	r := &Reconciler{Client: c}
	cr := &v1alpha1.AwsKubeflowProfiles{}
	cr.Name = "gone"
	cr.Finalizers = []string{v1alpha1.Finalizer}
	g.Expect(r.removeFinalizer(context.Background(), cr)).To(Succeed())
}

// A Profile deleted by the operator is deleted by UID: a Profile recreated
// under the same name since it was read is not the one the deletion policy
// meant.
func TestProfilesAreDeletedByUID(t *testing.T) {
	g := NewWithT(t)
	roleARN := "arn:aws:iam::123456789012:role/kubeflow/c/team-a-c-role"
	p := desired.ProfileObject(desired.Profile{Name: "team-a", Owner: v1alpha1.ProfileOwner{Kind: "User", Name: "a@example.com"}}, "kf", roleARN, false)
	p.SetUID("uid-of-the-profile-read")
	var preconditions []*metav1.Preconditions
	c := fake.NewClientBuilder().WithScheme(profileScheme()).WithObjects(p).WithInterceptorFuncs(interceptor.Funcs{
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			o := &client.DeleteOptions{}
			o.ApplyOptions(opts)
			preconditions = append(preconditions, o.Preconditions)
			return c.Delete(ctx, obj, opts...)
		},
	}).Build()
	r := &Reconciler{Client: c, APIReader: c, ProfileConcurrency: 1}
	cr := &v1alpha1.AwsKubeflowProfiles{}
	cr.Name = "kf"
	cr.Spec.DeletionPolicy.Profiles = v1alpha1.DeletionPolicyDelete
	s := &scope{cr: cr, before: cr.DeepCopy(), parts: map[string]outcome{}}
	have := desired.NewProfileObject()
	g.Expect(c.Get(context.Background(), client.ObjectKey{Name: "team-a"}, have)).To(Succeed())

	res := r.releaseProfile(context.Background(), s, "team-a", have, false)

	g.Expect(res.err).To(MatchError(errWaitingForProfile))
	g.Expect(preconditions).To(HaveLen(1))
	g.Expect(preconditions[0]).NotTo(BeNil())
	g.Expect(*preconditions[0].UID).To(Equal(types.UID("uid-of-the-profile-read")))
}

// fakeMapper answers RESTMapping with a fixed error.
type fakeMapper struct {
	meta.RESTMapper
	err error
}

func (m fakeMapper) RESTMapping(schema.GroupKind, ...string) (*meta.RESTMapping, error) {
	return nil, m.err
}

// Only a cluster that does not serve the Profile kind is "Kubeflow
// missing": teardown takes that to mean there are no Profiles, so any other
// failure must not be reported as it.
func TestProfileWatchTellsAMissingKindFromAFailure(t *testing.T) {
	g := NewWithT(t)
	missing := &profileWatch{mapper: fakeMapper{err: &meta.NoKindMatchError{GroupKind: desired.ProfileGVK.GroupKind()}}}
	g.Expect(missing.ensure(context.Background(), false)).To(MatchError(errProfileKindMissing))
	failing := &profileWatch{mapper: fakeMapper{err: errors.New("the discovery endpoint timed out")}}
	err := failing.ensure(context.Background(), false)
	g.Expect(err).To(HaveOccurred())
	g.Expect(errors.Is(err, errProfileKindMissing)).To(BeFalse())
}

func TestChainChangesOnlyOnTransitions(t *testing.T) {
	st := func(name string, chain v1alpha1.ChainState, link string) v1alpha1.ProfileStatus {
		return v1alpha1.ProfileStatus{Name: name, Chain: chain, ChainBrokenLink: link}
	}
	g := NewWithT(t)
	before := []v1alpha1.ProfileStatus{
		st("whole-to-broken", v1alpha1.ChainWhole, ""),
		st("broken-elsewhere", v1alpha1.ChainBroken, "Service account"),
		st("healed", v1alpha1.ChainBroken, "Role policies"),
		st("still-broken", v1alpha1.ChainBroken, "Service account"),
		st("still-whole", v1alpha1.ChainWhole, ""),
		st("not-ready-now", v1alpha1.ChainBroken, "Service account"),
	}
	now := []v1alpha1.ProfileStatus{
		st("whole-to-broken", v1alpha1.ChainBroken, "IAM OIDC provider"),
		st("broken-elsewhere", v1alpha1.ChainBroken, "Role trust"),
		st("healed", v1alpha1.ChainWhole, ""),
		st("still-broken", v1alpha1.ChainBroken, "Service account"),
		st("still-whole", v1alpha1.ChainWhole, ""),
		st("not-ready-now", "", ""),
		st("new-broken", v1alpha1.ChainBroken, "Service account"),
		st("new-whole", v1alpha1.ChainWhole, ""),
	}
	broke, healed := chainChanges(before, now)
	g.Expect(broke).To(Equal([]string{"whole-to-broken: IAM OIDC provider", "broken-elsewhere: Role trust"}), "a chain first seen broken is no change")
	g.Expect(healed).To(Equal([]string{"healed"}))
}

func TestNamedListBoundsAnEvent(t *testing.T) {
	g := NewWithT(t)
	g.Expect(namedList([]string{"a: x"})).To(Equal("1 profile (a: x)"))
	var many []string
	for i := range 1000 {
		many = append(many, fmt.Sprintf("p%d: Service account", i))
	}
	got := namedList(many)
	g.Expect(got).To(HavePrefix("1000 profiles (p0: Service account; "))
	g.Expect(got).To(HaveSuffix("p9: Service account; and 990 more)"))
}

func TestChainOutcome(t *testing.T) {
	g := NewWithT(t)
	state, link := chainOutcome(diagnose.Report{Checks: []diagnose.Check{
		{Link: diagnose.LinkProfile, Status: diagnose.Pass},
		{Link: diagnose.LinkServiceAccount, Status: diagnose.Fail},
		{Link: diagnose.LinkPolicies, Status: diagnose.Fail},
	}})
	g.Expect(state).To(Equal(v1alpha1.ChainBroken))
	g.Expect(link).To(Equal(diagnose.LinkServiceAccount), "the first broken link")
	state, link = chainOutcome(diagnose.Report{Checks: []diagnose.Check{{Link: diagnose.LinkProfile, Status: diagnose.Pass}, {Link: diagnose.LinkOIDCProvider, Status: diagnose.CannotCheck}}})
	g.Expect(state).To(BeEmpty(), "not known either way")
	g.Expect(link).To(BeEmpty())
	state, _ = chainOutcome(diagnose.Report{Checks: []diagnose.Check{{Link: diagnose.LinkProfile, Status: diagnose.Pass}}})
	g.Expect(state).To(Equal(v1alpha1.ChainWhole))
}

// The labelled service accounts of the profile controller's namespace stay
// cached beside every default-editor, also for an empty namespace flag,
// which is cache.AllNamespaces' key too.
func TestCacheOptionsKeepBothKindsOfServiceAccount(t *testing.T) {
	for _, ns := range []string{"", "kubeflow", "kf-system"} {
		g := NewWithT(t)
		want := ns
		if want == "" {
			want = DefaultProfileControllerNamespace
		}
		var found bool
		for obj, by := range CacheOptions(ns).ByObject {
			if _, ok := obj.(*corev1.ServiceAccount); !ok {
				continue
			}
			found = true
			g.Expect(by.Namespaces).To(HaveLen(2), "namespace flag %q", ns)
			g.Expect(by.Namespaces[want].LabelSelector.String()).To(Equal(desired.LabelOwner), "namespace flag %q", ns)
			g.Expect(by.Namespaces[cache.AllNamespaces].FieldSelector.String()).To(Equal("metadata.name=" + desired.KubeflowEditorServiceAccount))
		}
		g.Expect(found).To(BeTrue())
	}
}

// The service accounts the operator releases are those it labelled in the
// profile controller's namespace: the cache also holds every
// default-editor, and one that carries the label elsewhere (copied there
// by hand) is not the operator's to patch, nor may it.
func TestReleaseServiceAccountsStaysInTheProfileControllersNamespace(t *testing.T) {
	g := NewWithT(t)
	scheme := profileScheme()
	g.Expect(corev1.AddToScheme(scheme)).To(Succeed())
	labelled := func(namespace, name string) *corev1.ServiceAccount {
		return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Labels:      map[string]string{desired.LabelOwner: "kf"},
			Annotations: map[string]string{RoleARNAnnotation: "arn:aws:iam::123456789012:role/r"}}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(labelled("kubeflow", "old-pc"), labelled("team-a", "default-editor")).Build()
	r := &Reconciler{Client: c}
	cr := &v1alpha1.AwsKubeflowProfiles{}
	cr.Name = "kf"
	g.Expect(r.releaseServiceAccounts(context.Background(), &scope{cr: cr}, "")).To(Succeed())
	released, other := &corev1.ServiceAccount{}, &corev1.ServiceAccount{}
	g.Expect(c.Get(context.Background(), types.NamespacedName{Namespace: "kubeflow", Name: "old-pc"}, released)).To(Succeed())
	g.Expect(released.Annotations).NotTo(HaveKey(RoleARNAnnotation))
	g.Expect(c.Get(context.Background(), types.NamespacedName{Namespace: "team-a", Name: "default-editor"}, other)).To(Succeed())
	g.Expect(other.Annotations).To(HaveKey(RoleARNAnnotation), "outside the profile controller's namespace nothing is touched")
}

// The cache's default transform trims the managed fields of Profiles only:
// other objects without a transform of their own are cached whole.
func TestCacheTrimsOnlyProfiles(t *testing.T) {
	g := NewWithT(t)
	entries := []metav1.ManagedFieldsEntry{
		{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}},
		{Manager: FieldOwner, Operation: metav1.ManagedFieldsOperationApply, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:owner":{}}}`)}},
	}
	object := func(gvk schema.GroupVersionKind) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		u.SetName("team-a")
		u.SetManagedFields(entries)
		return u
	}
	transform := CacheOptions("").DefaultTransform
	g.Expect(transform).NotTo(BeNil())

	out, err := transform(object(desired.ProfileGVK))
	g.Expect(err).NotTo(HaveOccurred())
	kept := out.(*unstructured.Unstructured).GetManagedFields()
	g.Expect(kept).To(HaveLen(1))
	g.Expect(kept[0].Manager).To(Equal(FieldOwner))
	g.Expect(string(kept[0].FieldsV1.Raw)).To(Equal(`{}`))

	out, err = transform(object(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out.(*unstructured.Unstructured).GetManagedFields()).To(HaveLen(2))

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default-editor", ManagedFields: entries}}
	out, err = transform(sa)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(BeIdenticalTo(sa))
	g.Expect(sa.ManagedFields).To(HaveLen(2))
}

// A pass's writes of one reason make one note: a count, the messages that
// fit within maxMessage up to maxNamedInEvent, and how many more.
func TestCountedNote(t *testing.T) {
	messages := func(n, size int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("m%02d", i) + strings.Repeat("x", size-3)
		}
		return out
	}
	cases := map[string]struct {
		messages []string
		named    int
		want     string
	}{
		"one write is its message":        {messages: []string{"Created IAM role r"}, want: "Created IAM role r"},
		"a few are all named":             {messages: messages(3, 3), want: "3 writes: m00; m01; m02"},
		"ten named, then a count":         {messages: messages(12, 3), named: 10},
		"long messages: fewer fit":        {messages: messages(20, 200), named: 4},
		"one too long for a note is cut":  {messages: messages(1, 2000)},
		"none fits: the count alone says": {messages: messages(3, 2000), named: 0, want: "3 writes: and 3 more"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			note := countedNote(tc.messages)
			g.Expect(len(note)).To(BeNumerically("<=", maxMessage))
			if tc.want != "" {
				g.Expect(note).To(Equal(tc.want))
				return
			}
			if len(tc.messages) == 1 {
				g.Expect(note).To(HavePrefix(tc.messages[0][:100]))
				return
			}
			g.Expect(note).To(HavePrefix(fmt.Sprintf("%d writes: %s", len(tc.messages), tc.messages[0])))
			g.Expect(note).To(HaveSuffix(fmt.Sprintf("%s; and %d more", tc.messages[tc.named-1], len(tc.messages)-tc.named)))
		})
	}
}

// Writes of one reason from concurrent profile tasks gather into one note,
// and reasons keep the order they were first written in.
func TestWriteEventsGatherConcurrentWrites(t *testing.T) {
	g := NewWithT(t)
	var w writeEvents
	w.add(awsiam.Change{Reason: "PolicyCreated", Action: "create", Message: "Created IAM policy p"})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			w.add(awsiam.Change{Reason: "RoleCreated", Action: "create", Message: fmt.Sprintf("Created IAM role r%d", i)})
		})
	}
	wg.Wait()
	notes := w.notes()
	g.Expect(notes).To(HaveLen(2))
	g.Expect(notes[0]).To(Equal(writeNote{reason: "PolicyCreated", action: "create", note: "Created IAM policy p"}))
	g.Expect(notes[1].reason).To(Equal("RoleCreated"))
	g.Expect(notes[1].note).To(HavePrefix("50 writes: Created IAM role r"))
	g.Expect(notes[1].note).To(HaveSuffix("; and 40 more"))
}

// A Profile the cache has not seen yet may already exist: one this object
// manages is brought up to date from the API server's copy instead of
// failing the profile; anyone else's is left to the next pass, which alone
// may decide to adopt it.
func TestWriteProfileOnAProfileTheCacheHasNotSeen(t *testing.T) {
	profile := desired.Profile{Name: "team-a", Owner: v1alpha1.ProfileOwner{Kind: "User", Name: "a@example.com"}}
	want := desired.ProfileObject(profile, "kf", "arn:aws:iam::123456789012:role/r", false)
	for name, tc := range map[string]struct {
		existing *unstructured.Unstructured
		change   string
		err      error
	}{
		"ours, as wanted":            {existing: want.DeepCopy()},
		"ours, naming an older role": {existing: desired.ProfileObject(profile, "kf", "arn:aws:iam::123456789012:role/old", false), change: "Updated"},
		"someone else's": {existing: func() *unstructured.Unstructured {
			u := want.DeepCopy()
			u.SetLabels(nil)
			return u
		}(), err: errProfileChanged},
		"ours, adopted: its annotation is not the want's to drop": {existing: func() *unstructured.Unstructured {
			u := desired.ProfileObject(profile, "kf", "arn:aws:iam::123456789012:role/old", true)
			return u
		}(), err: errProfileChanged},
		"ours, being deleted": {existing: func() *unstructured.Unstructured {
			u := desired.ProfileObject(profile, "kf", "arn:aws:iam::123456789012:role/old", false)
			u.SetFinalizers([]string{"profile-finalizer"})
			u.SetDeletionTimestamp(&metav1.Time{Time: time.Now()})
			return u
		}(), err: errProfileChanged},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			c := fake.NewClientBuilder().WithScheme(profileScheme()).WithObjects(tc.existing).Build()
			var applied int
			withApplies := interceptor.NewClient(c, interceptor.Funcs{
				Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
					applied++
					return nil
				},
			})
			r := &Reconciler{Client: withApplies, APIReader: c}
			change, err := r.writeProfile(context.Background(), nil, want)
			if tc.err != nil {
				g.Expect(err).To(MatchError(tc.err))
			} else {
				g.Expect(err).NotTo(HaveOccurred())
			}
			g.Expect(change).To(Equal(tc.change))
			g.Expect(applied).To(Equal(map[bool]int{true: 1}[tc.change != ""]), "applies")
		})
	}
}

// A quota the operator created is removed only at the version the pass
// read: one someone changed since is read again, not removed unseen.
func TestRemoveQuotaHoldsForTheVersionRead(t *testing.T) {
	g := NewWithT(t)
	profile := desired.Profile{Name: "team-a", Owner: v1alpha1.ProfileOwner{Kind: "User", Name: "a@example.com"}}
	stored := desired.ProfileObject(profile, "kf", "arn:aws:iam::123456789012:role/r", false)
	stored.Object["spec"].(map[string]any)["resourceQuotaSpec"] = map[string]any{"hard": map[string]any{"cpu": "4"}}
	c := fake.NewClientBuilder().WithScheme(profileScheme()).WithObjects(stored).Build()
	read := desired.NewProfileObject()
	g.Expect(c.Get(context.Background(), client.ObjectKey{Name: "team-a"}, read)).To(Succeed())
	// Someone writes the Profile after the pass read it.
	changed := read.DeepCopy()
	changed.SetAnnotations(map[string]string{"edited": "true"})
	g.Expect(c.Update(context.Background(), changed)).To(Succeed())

	r := &Reconciler{Client: c}
	g.Expect(r.removeQuota(context.Background(), read)).To(MatchError(errProfileChanged))
	now := desired.NewProfileObject()
	g.Expect(c.Get(context.Background(), client.ObjectKey{Name: "team-a"}, now)).To(Succeed())
	_, found, _ := unstructured.NestedMap(now.Object, "spec", "resourceQuotaSpec")
	g.Expect(found).To(BeTrue(), "the quota is still there")

	g.Expect(r.removeQuota(context.Background(), now)).To(Succeed())
	g.Expect(c.Get(context.Background(), client.ObjectKey{Name: "team-a"}, now)).To(Succeed())
	_, found, _ = unstructured.NestedMap(now.Object, "spec", "resourceQuotaSpec")
	g.Expect(found).To(BeFalse(), "removed at the version read")
}
