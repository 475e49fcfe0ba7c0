package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// FieldOwner is the server-side apply field manager of the operator.
const FieldOwner = "awskubeflowprofiles-operator"

// errKubeflowMissing marks a cluster without Kubeflow's Profile CRD.
var errKubeflowMissing = errors.New("the Kubeflow Profile CRD (profiles.kubeflow.org, version v1) is not installed; install Kubeflow's profile controller")

// profileResult is what reconciling one profile found out.
type profileResult struct {
	status    v1alpha1.ProfileStatus
	roleReady bool
	err       error
	// keep is false when the entry should leave the status (a Profile that
	// was deleted, or someone else's).
	keep bool
	// retainsRole is true when a Profile that stays depends on a role that
	// trusts the cluster's OIDC provider.
	retainsRole bool
}

// failed records err as the profile's outcome.
func (res profileResult) failed(err error) profileResult {
	o, _ := failure(err)
	res.err, res.status.Reason, res.status.Message = err, o.reason, truncate(o.message)
	return res
}

// reconcileProfiles reconciles every profile of the spec, each on its own,
// and lets go of profiles that left the spec as the deletion policy says.
func (r *Reconciler) reconcileProfiles(ctx context.Context, s *scope) {
	existing, err := r.listProfiles(ctx)
	if err != nil {
		s.record(v1alpha1.ProfileRolesReadyCondition, err, outcome{})
		s.record(v1alpha1.ProfilesReadyCondition, err, outcome{})
		return
	}
	s.missingPolicies = r.checkPolicies(ctx, s)
	s.listing = r.listForUnrecorded(ctx, s)
	s.editors = r.listEditors(ctx)
	inSpec := map[string]bool{}
	tasks := make([]profileTask, 0, len(s.state.Profiles))
	for _, p := range s.state.Profiles {
		inSpec[p.Name] = true
		tasks = append(tasks, profileTask{s.priorStatus(p.Name), func(ctx context.Context) profileResult {
			return r.reconcileProfile(ctx, s, p, existing[p.Name])
		}})
	}
	for _, name := range r.formerProfiles(s, existing, inSpec) {
		tasks = append(tasks, profileTask{s.priorStatus(name), func(ctx context.Context) profileResult {
			return r.releaseProfile(ctx, s, name, existing[name], false)
		}})
	}
	r.runAndRecord(ctx, s, tasks, existing, inSpec)
	r.auditTrust(ctx, s, existing)
}

// runAndRecord runs the tasks together with closing the roles of retained
// profiles whose Profile is gone, lists the retained Profiles still there,
// and records it all on the status.
func (r *Reconciler) runAndRecord(ctx context.Context, s *scope, tasks []profileTask,
	existing map[string]*unstructured.Unstructured, inSpec map[string]bool) []profileResult {
	for _, st := range retainedGone(s, existing, inSpec) {
		tasks = append(tasks, profileTask{st, func(ctx context.Context) profileResult {
			return r.neutraliseRetained(ctx, s, st)
		}})
	}
	results := r.runProfiles(ctx, tasks)
	results = append(results, retainedProfiles(s, existing, inSpec, released(results))...)
	r.recordProfiles(s, results)
	return results
}

// retainedGone are the retained profiles of the status whose retained
// Profile the cache no longer holds: it is gone, or the name now belongs to
// another Profile (Kubeflow's self-registration may recreate it at once).
func retainedGone(s *scope, existing map[string]*unstructured.Unstructured, inSpec map[string]bool) []v1alpha1.ProfileStatus {
	var out []v1alpha1.ProfileStatus
	for _, st := range s.cr.Status.Profiles {
		if st.State == v1alpha1.ProfileStateRetained && !inSpec[st.Name] && st.RoleARN != "" && !isRetainedBy(existing[st.Name], s.cr.Name) {
			out = append(out, st)
		}
	}
	return out
}

// isRetainedBy reports whether u is a Profile that the deletion policy of
// owner kept.
func isRetainedBy(u *unstructured.Unstructured, owner string) bool {
	return u != nil && desired.ProfileOwnedBy(u, owner) && desired.ProfileRetained(u)
}

// retainedProfileKept reads, from the API server rather than the cache,
// whether the retained Profile of name is still there.
func (r *Reconciler) retainedProfileKept(ctx context.Context, s *scope, name string) (bool, error) {
	u := desired.NewProfileObject()
	err := r.APIReader.Get(ctx, types.NamespacedName{Name: name}, u)
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading Kubeflow Profile %s: %w", name, err)
	}
	return isRetainedBy(u, s.cr.Name), nil
}

// neutraliseRetained closes the role of a retained profile whose Profile is
// gone: it still trusts <namespace>:default-editor, and whoever next gets
// that namespace name (Kubeflow's self-registration, say) would inherit it.
// The role is kept, as the deletion policy said, and reported until someone
// deletes it or the profile returns to the spec.
func (r *Reconciler) neutraliseRetained(ctx context.Context, s *scope, st v1alpha1.ProfileStatus) profileResult {
	log := ctrl.LoggerFrom(ctx).WithValues("profile", st.Name)
	ctx = ctrl.LoggerInto(ctx, log)
	res := profileResult{keep: true, status: st}
	kept, err := r.retainedProfileKept(ctx, s, st.Name)
	if err != nil {
		return res.failed(err)
	}
	if kept {
		// The cache is behind; the Profile, and with it the role's use, is
		// still there.
		res.retainsRole = true
		return res
	}
	id := policy.Identity{
		ProviderARN: s.cr.Status.OIDCProvider.ARN,
		Issuer:      s.cr.Status.OIDCIssuerURL,
		Subject:     policy.ServiceAccountSubject(st.Name, desired.KubeflowEditorServiceAccount),
	}
	role := roleNameFromARN(st.RoleARN)
	unit, hash := "retained/"+st.Name, hashOf(id, role)
	if _, ok := r.fresh(s, unit, hash); !ok {
		changes, err := s.iam.NeutraliseTrust(ctx, role, id, s.owner(), st.Name)
		r.emit(ctx, s, changes)
		switch {
		case errors.Is(err, awsiam.ErrRoleGone):
			log.Info("The role of a retained profile is gone; nothing left to report", "roleARN", st.RoleARN)
			res.keep = false
			return res
		case errors.Is(err, awsiam.ErrNotOwned):
			log.Info("The role of a retained profile is no longer the operator's; leaving it alone", "roleARN", st.RoleARN)
			res.keep = false
			return res
		case err != nil:
			return res.failed(err)
		}
		r.markVerified(s, unit, hash, st.RoleARN)
	}
	res.status.Ready = false
	res.status.Reason = v1alpha1.ProfileGoneReason
	res.status.Message = fmt.Sprintf("Kubeflow Profile %s is gone. The deletion policy kept IAM role %s, which now admits no one, so whoever next gets namespace %s does not inherit it; delete the role when nothing needs it, or add the profile back to spec.profiles to trust the namespace's default-editor again.",
		st.Name, st.RoleARN, st.Name)
	return res
}

// released names the profiles a pass has just let go of and still lists:
// their Profiles now carry the retained mark, and must not be listed twice.
func released(results []profileResult) map[string]bool {
	out := map[string]bool{}
	for _, res := range results {
		if res.keep {
			out[res.status.Name] = true
		}
	}
	return out
}

// runProfiles runs one task per profile, several at a time, so that a slow
// or failing profile does not hold up the others. A panicking task fails
// its own profile only.
func (r *Reconciler) runProfiles(ctx context.Context, tasks []profileTask) []profileResult {
	results := make([]profileResult, len(tasks))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(max(r.ProfileConcurrency, 1), len(tasks)) {
		wg.Go(func() {
			for i := range next {
				results[i] = runTask(ctx, tasks[i])
			}
		})
	}
	for i := range tasks {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// profileTask is the work of one pass for one profile. It carries the
// profile's status entry from before the pass, so that a task that panics
// leaves what the status knew (a Retained state, the role it keeps) rather
// than an entry the next pass would misread.
type profileTask struct {
	prior v1alpha1.ProfileStatus
	run   func(context.Context) profileResult
}

// runTask runs one profile's task; a panic fails that profile only, and its
// status entry keeps what it said before, marked not ready with why.
func runTask(ctx context.Context, task profileTask) (res profileResult) {
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("reconciling profile %s panicked: %v; this is a bug in the operator, please report it with the operator's log", task.prior.Name, p)
			ctrl.LoggerFrom(ctx).Error(err, "Profile task panicked", "profile", task.prior.Name)
			st := task.prior
			st.Ready, st.Reason, st.Message = false, v1alpha1.KubernetesErrorReason, truncate(err.Error())
			res = profileResult{keep: true, err: err, status: st,
				retainsRole: st.State == v1alpha1.ProfileStateRetained && st.RoleARN != ""}
		}
	}()
	return task.run(ctx)
}

// priorStatus is the profile's status entry at the start of the pass, or
// one with only its name.
func (s *scope) priorStatus(name string) v1alpha1.ProfileStatus {
	if st, ok := s.cr.Status.Profile(name); ok {
		return st
	}
	return v1alpha1.ProfileStatus{Name: name}
}

// recordProfiles folds per-profile results into the status entries and the
// two aggregate conditions. Each failed profile sets its own retry, so one
// that waits for a human does not make the others wait for the resync.
func (r *Reconciler) recordProfiles(s *scope, results []profileResult) {
	var entries []v1alpha1.ProfileStatus
	managed := 0
	roles, profiles := &profileAggregate{}, &profileAggregate{}
	for _, res := range results {
		if res.retainsRole {
			s.retainedRoles = true
		}
		if !res.keep {
			continue
		}
		entries = append(entries, res.status)
		if res.err != nil {
			o, after := failure(res.err)
			s.noteRetry(o, after, res.err)
		}
		state := res.status.State
		if state != v1alpha1.ProfileStateManaged && state != v1alpha1.ProfileStateNotOwned {
			profiles.fail(res)
			continue
		}
		managed++
		if res.roleReady || state == v1alpha1.ProfileStateNotOwned {
			roles.ready++
		} else {
			roles.fail(res)
		}
		if res.status.Ready {
			profiles.ready++
		} else if res.roleReady || state == v1alpha1.ProfileStateNotOwned {
			profiles.fail(res)
		}
	}
	slices.SortFunc(entries, func(a, b v1alpha1.ProfileStatus) int { return strings.Compare(a.Name, b.Name) })
	s.cr.Status.Profiles = entries
	s.cr.Status.ProfilesReady = fmt.Sprintf("%d/%d", profiles.ready, managed)
	s.cr.Status.ChainsWhole = chainsWhole(entries)
	s.parts[v1alpha1.ProfileRolesReadyCondition] = roles.outcome(managed, "profile roles")
	s.parts[v1alpha1.ProfilesReadyCondition] = profiles.outcome(managed, "Profiles")
}

// profileAggregate counts the ready profiles of one aggregate condition and
// collects the failures of the others.
type profileAggregate struct {
	ready    int
	failures []profileResult
}

func (a *profileAggregate) fail(res profileResult) {
	if res.err != nil {
		a.failures = append(a.failures, res)
	}
}

// outcome is the aggregate condition: ready when every managed profile is;
// otherwise it takes the reason of the first profile that needs a human, or
// of the first failure, and lists every failed profile in its message.
func (a *profileAggregate) outcome(managed int, what string) outcome {
	counts := fmt.Sprintf("%d of %d %s ready.", a.ready, managed, what)
	switch {
	case managed == 0 && len(a.failures) == 0:
		return outcome{ready: true, reason: v1alpha1.NoProfilesReason, message: "spec.profiles is empty."}
	case len(a.failures) == 0 && a.ready == managed:
		return outcome{ready: true, reason: v1alpha1.ReconciledReason, message: counts}
	case len(a.failures) == 0:
		// The rest wait on their roles, whose failures drive the retry.
		return outcome{reason: v1alpha1.BlockedReason, message: counts + " The others wait for their roles."}
	}
	var first, stalled *outcome
	msgs := make([]string, 0, len(a.failures))
	progressing := false
	for _, res := range a.failures {
		o, _ := failure(res.err)
		msgs = append(msgs, res.status.Name+": "+res.status.Message)
		if first == nil {
			first = &o
		}
		if o.stalled && stalled == nil {
			stalled = &o
		}
		progressing = progressing || !o.stalled
	}
	o := *first
	if stalled != nil {
		o = *stalled
	}
	o.progressing = progressing
	o.message = counts + " " + strings.Join(msgs, "; ")
	return o
}

// listProfiles reads the Kubeflow Profiles by name from the cache, first
// starting their watch if Kubeflow was installed since the operator started.
func (r *Reconciler) listProfiles(ctx context.Context) (map[string]*unstructured.Unstructured, error) {
	switch err := r.profileWatch.ensure(ctx, true); {
	case errors.Is(err, errProfileKindMissing):
		return nil, fmt.Errorf("%w: %w", errKubeflowMissing, err)
	case err != nil:
		return nil, err
	}
	list := desired.NewProfileList()
	// The cache's own objects, not copies of each at every pass: what
	// changes a Profile copies it first.
	if err := r.Client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("%w: %w", errKubeflowMissing, err)
		}
		return nil, fmt.Errorf("listing Kubeflow Profiles: %w", err)
	}
	out := make(map[string]*unstructured.Unstructured, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].GetName()] = &list.Items[i]
	}
	return out, nil
}

// formerProfiles are profiles this object manages that left the spec: from
// the status, and Profiles that carry its label. Retained ones are no
// longer managed and are not judged again, whatever the deletion policy
// says today.
func (r *Reconciler) formerProfiles(s *scope, existing map[string]*unstructured.Unstructured, inSpec map[string]bool) []string {
	seen := map[string]bool{}
	for _, e := range s.cr.Status.Profiles {
		if inSpec[e.Name] || e.State == v1alpha1.ProfileStateNotOwned || e.State == v1alpha1.ProfileStateRetained {
			continue
		}
		if u := existing[e.Name]; u != nil && desired.ProfileRetained(u) {
			continue
		}
		seen[e.Name] = true
	}
	for name, u := range existing {
		if !inSpec[name] && desired.ProfileOwnedBy(u, s.cr.Name) && !desired.ProfileRetained(u) {
			seen[name] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// retainedProfiles reports the retained Profiles of this object that still
// exist, except those in skip. They are read from the Profiles themselves,
// not from the status, which a pass working from a stale cache may have
// written without them: what depends on the OIDC provider must never be
// forgotten.
func retainedProfiles(s *scope, existing map[string]*unstructured.Unstructured, inSpec, skip map[string]bool) []profileResult {
	var out []profileResult
	for _, name := range slices.Sorted(maps.Keys(existing)) {
		u := existing[name]
		if inSpec[name] || skip[name] || !desired.ProfileOwnedBy(u, s.cr.Name) || !desired.ProfileRetained(u) {
			continue
		}
		st := v1alpha1.ProfileStatus{Name: name, State: v1alpha1.ProfileStateRetained, Reason: v1alpha1.ReconciledReason}
		if arn, _, ok := desired.ProfilePlugin(u); ok {
			st.RoleARN = arn
		}
		st.Message = fmt.Sprintf("No longer managed. The deletion policy kept Kubeflow Profile %s and IAM role %s; its plugin is set to annotateOnly.", name, st.RoleARN)
		if prev, ok := s.cr.Status.Profile(name); ok && prev.State == v1alpha1.ProfileStateRetained && prev.Message != "" {
			st.Message = prev.Message
		}
		out = append(out, profileResult{keep: true, status: st, retainsRole: st.RoleARN != ""})
	}
	return out
}

// reconcileProfile makes one profile's role and Profile match the spec.
func (r *Reconciler) reconcileProfile(ctx context.Context, s *scope, p desired.Profile, have *unstructured.Unstructured) profileResult {
	log := ctrl.LoggerFrom(ctx).WithValues("profile", p.Name)
	ctx = ctrl.LoggerInto(ctx, log)
	res := profileResult{keep: true, status: v1alpha1.ProfileStatus{Name: p.Name, State: v1alpha1.ProfileStateManaged}}
	if p.Invalid != nil {
		// Nothing of an invalid profile reaches AWS or the Profile.
		return res.failed(p.Invalid)
	}
	if err := missingPolicyOf(s, p); err != nil {
		return res.failed(err)
	}
	ours := have != nil && desired.ProfileOwnedBy(have, s.cr.Name)
	if owner := profileOwner(have); have != nil && !ours && owner != "" {
		if !s.isGone(owner) {
			// Adopting it too would leave the two objects flipping its owner.
			res.status.State = v1alpha1.ProfileStateNotOwned
			return res.failed(fmt.Errorf("%w: Kubeflow Profile %s is managed by AwsKubeflowProfiles %s, and a Profile has one owner; remove the profile from one of them",
				awsiam.ErrNotOwned, p.Name, owner))
		}
		// What a deleted object of this cluster left behind is taken over.
		ours = true
	}
	if have != nil && !ours && !p.AdoptExisting {
		res.status.State = v1alpha1.ProfileStateNotOwned
		return res.failed(fmt.Errorf("%w: Kubeflow Profile %s exists and was not created by this operator, so it is left alone; set adoptExisting: true on the profile to manage it, or remove the profile from the spec",
			awsiam.ErrNotOwned, p.Name))
	}
	// Managed again, the profile's role was or will be re-trusted: if it is
	// retained later, it must be closed again.
	r.forget(s, "retained/"+p.Name)
	if have == nil || !have.GetDeletionTimestamp().IsZero() {
		// A Profile that is missing or going away may have been deleted by
		// hand, and Kubeflow's finalizer of a Profile that was not
		// annotateOnly rewrites the role's trust to admit every service
		// account just before it lets go: what was verified before proves
		// nothing, so the role is read and repaired before the profile is
		// reported ready again.
		r.forget(s, profileUnit(p.Name))
	}
	if have != nil && !have.GetDeletionTimestamp().IsZero() {
		return res.failed(r.profileDeletedOutOfBand(ctx, s, p, have, ours))
	}

	roleARN, err := r.ensureProfileRole(ctx, s, p)
	if err != nil {
		return res.failed(err)
	}
	res.status.RoleARN, res.roleReady = roleARN, true

	adopted := (have != nil && !ours) || (have != nil && desired.ProfileAdopted(have))
	want := desired.ProfileObject(p, s.cr.Name, roleARN, adopted)
	change, err := r.writeProfile(ctx, have, want)
	if err != nil {
		return res.failed(err)
	}
	if change != "" {
		r.emit(ctx, s, []awsiam.Change{{Reason: "Profile" + change, Resource: "profile", Action: strings.ToLower(change),
			Message: fmt.Sprintf("%s Kubeflow Profile %s with IAM role %s", change, p.Name, roleARN)}})
	}
	res.status.Ready = true
	res.status.Reason = v1alpha1.ReconciledReason
	res.status.Message = fmt.Sprintf("Role %s trusts only system:serviceaccount:%s:%s; Profile %s uses it with its plugin annotateOnly, so only the operator writes the role's trust.",
		roleARN, p.Name, desired.KubeflowEditorServiceAccount, p.Name)
	r.summarizeChain(s, p, want, &res.status)
	return res
}

// writeProfile creates or updates the Profile and names the change, or ""
// when nothing differed. A Profile not yet seen is created, never applied:
// applying would take over one that exists but is not in the cache yet.
func (r *Reconciler) writeProfile(ctx context.Context, have, want *unstructured.Unstructured) (string, error) {
	name := want.GetName()
	switch {
	case have == nil:
		err := r.Client.Create(ctx, want.DeepCopy(), client.FieldOwner(FieldOwner))
		if apierrors.IsAlreadyExists(err) {
			// The cache had not seen it yet, as in a pass right after one
			// that created many. One this object manages, that is not
			// going, retained or adopted, is brought up to date from the
			// API server's copy; any other is judged by the next pass,
			// since only reconcileProfile may decide what to do with it.
			live := desired.NewProfileObject()
			switch err := r.APIReader.Get(ctx, types.NamespacedName{Name: name}, live); {
			case err != nil && !apierrors.IsNotFound(err):
				return "", fmt.Errorf("reading Kubeflow Profile %s, which appeared while the operator was creating it: %w", name, err)
			case err == nil && live.GetDeletionTimestamp().IsZero() && desired.ProfileOwnedBy(live, want.GetLabels()[desired.LabelOwner]) &&
				!desired.ProfileRetained(live) && !desired.ProfileAdopted(live):
				return r.writeProfile(ctx, live, want)
			}
			return "", fmt.Errorf("%w: Kubeflow Profile %s appeared while the operator was creating it; reading it again", errProfileChanged, name)
		}
		if err != nil {
			return "", fmt.Errorf("creating Kubeflow Profile %s: %w", name, err)
		}
		return "Created", nil
	case desired.ProfileRetained(have):
		have = have.DeepCopy() // the cache's own copy; see listProfiles
		patch := client.MergeFrom(have.DeepCopy())
		annotations := have.GetAnnotations()
		delete(annotations, desired.AnnotationRetained)
		have.SetAnnotations(annotations)
		if err := r.Client.Patch(ctx, have, patch); err != nil {
			return "", fmt.Errorf("taking Kubeflow Profile %s back under management: %w", name, err)
		}
		if err := r.applyProfile(ctx, want); err != nil {
			return "", err
		}
		return "Resumed", nil
	case profileOwner(have) != "" && !desired.ProfileOwnedBy(have, want.GetLabels()[desired.LabelOwner]):
		return "TakenOver", r.applyProfile(ctx, want)
	case !desired.ProfileOwnedBy(have, want.GetLabels()[desired.LabelOwner]):
		return "Adopted", r.applyProfile(ctx, want)
	case !desired.ProfileMatches(have, want, FieldOwner):
		if desired.QuotaToReset(have, want, FieldOwner) {
			if err := r.removeQuota(ctx, have); err != nil {
				return "", err
			}
		}
		return "Updated", r.applyProfile(ctx, want)
	}
	return "", nil
}

// removeQuota removes the resourceQuotaSpec the operator wrote when it
// created the Profile, which its Update entry of the managed fields holds
// and so no apply of the operator's can remove or shrink; the apply that
// follows sets the quota the spec wants, if any, as its own. The patch
// holds only for the version the pass read: a quota someone set since is
// not removed unseen.
func (r *Reconciler) removeQuota(ctx context.Context, have *unstructured.Unstructured) error {
	have = have.DeepCopy() // the cache's own copy; see listProfiles
	patch := client.MergeFromWithOptions(have.DeepCopy(), client.MergeFromWithOptimisticLock{})
	unstructured.RemoveNestedField(have.Object, "spec", "resourceQuotaSpec")
	err := r.Client.Patch(ctx, have, patch, client.FieldOwner(FieldOwner))
	if apierrors.IsConflict(err) {
		return fmt.Errorf("%w: Kubeflow Profile %s changed while the operator removed the resourceQuotaSpec it wrote; reading it again",
			errProfileChanged, have.GetName())
	}
	if err != nil {
		return fmt.Errorf("removing the resourceQuotaSpec the operator wrote in Kubeflow Profile %s, to apply the spec's: %w", have.GetName(), err)
	}
	return nil
}

// profileOwner is the AwsKubeflowProfiles named by a Profile's owner label,
// or "".
func profileOwner(u *unstructured.Unstructured) string {
	if u == nil {
		return ""
	}
	return u.GetLabels()[desired.LabelOwner]
}

// profileDeletedOutOfBand handles a managed profile whose Profile someone
// deleted: the plugin goes annotateOnly so Kubeflow's finalizer leaves IAM
// alone, and the role is verified again at once in case the finalizer
// already left its trust admitting every service account. The Profile is
// created again once it is gone.
func (r *Reconciler) profileDeletedOutOfBand(ctx context.Context, s *scope, p desired.Profile, have *unstructured.Unstructured, ours bool) error {
	if ours {
		if err := r.setAnnotateOnly(ctx, s, have, p.Name, p.Role.ARN, false); err != nil {
			return err
		}
	}
	if _, err := r.ensureProfileRole(ctx, s, p); err != nil {
		return err
	}
	return fmt.Errorf("%w: Kubeflow Profile %s is being deleted (finalizers %v); it is created again once it is gone",
		awsiam.ErrPropagating, p.Name, have.GetFinalizers())
}

// ensureProfileRole makes the role match unless it was verified with the
// same desired state, so a change to one profile costs IAM calls for that
// profile only. Roles verified before are checked again in the background,
// once per resync period (see verifier), not here: an edit never waits
// behind the checks of the other profiles.
func (r *Reconciler) ensureProfileRole(ctx context.Context, s *scope, p desired.Profile) (string, error) {
	unit := profileUnit(p.Name)
	adoption, hash := profileAdoption(p)
	if v, ok := r.current(s, unit, hash); ok {
		return v.arn, nil
	}
	if arn, ok := r.verifiedByListing(s, p, hash); ok {
		return arn, nil
	}
	ensure := s.iam.EnsureRole
	if believedNew(s, p) {
		ensure = s.iam.CreateOrEnsureRole
	}
	role, err := ensure(ctx, p.Role, s.owner(), adoption)
	r.emit(ctx, s, role.Changes)
	if err != nil {
		r.forget(s, unit)
		return "", r.propagationOf(err, s.state.OIDCProvider.ARN)
	}
	r.markRoleVerified(s, p, hash, role.ARN)
	return role.ARN, nil
}

// profileAdoption is what the profile allows of adoption, and the digest
// of its role's desired state with it.
func profileAdoption(p desired.Profile) (awsiam.Adoption, string) {
	adoption := awsiam.Adoption{Allowed: p.AdoptExisting, RemoveUnlisted: p.RemoveUnlistedOnAdoption}
	return adoption, hashOf(p.Role, adoption)
}

func (r *Reconciler) applyProfile(ctx context.Context, want *unstructured.Unstructured) error {
	err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(want), client.FieldOwner(FieldOwner), client.ForceOwnership)
	if err != nil {
		return fmt.Errorf("applying Kubeflow Profile %s: %w", want.GetName(), err)
	}
	return nil
}

// releaseProfile lets go of a profile that left the spec, or of every
// profile when the object is deleted. With the Retain policy the Profile and
// its role stay, no longer managed, and the plugin is switched to
// annotateOnly so that deleting the Profile later cannot leave the role
// trusting every service account. With the Delete policy the Profile goes
// first, then its role.
func (r *Reconciler) releaseProfile(ctx context.Context, s *scope, name string, have *unstructured.Unstructured, objectDeleted bool) profileResult {
	log := ctrl.LoggerFrom(ctx).WithValues("profile", name)
	ctx = ctrl.LoggerInto(ctx, log)
	prev, _ := s.cr.Status.Profile(name)
	res := profileResult{keep: true, status: v1alpha1.ProfileStatus{Name: name, RoleARN: prev.RoleARN}}
	if have != nil {
		if arn, _, ok := desired.ProfilePlugin(have); ok && desired.ProfileOwnedBy(have, s.cr.Name) {
			res.status.RoleARN = arn
		}
	}
	r.forget(s, profileUnit(name))
	if have != nil && !desired.ProfileOwnedBy(have, s.cr.Name) {
		// Someone else's Profile of that name: nothing of ours to let go.
		res.keep = false
		return res
	}
	deleteIt := s.cr.Spec.DeletionPolicy.Profiles == v1alpha1.DeletionPolicyDelete && (have == nil || !desired.ProfileAdopted(have))
	if !deleteIt {
		if have == nil {
			// The Profile is gone; so is the reason to list it.
			res.keep = false
			return res
		}
		if err := r.setAnnotateOnly(ctx, s, have, name, res.status.RoleARN, true); err != nil {
			return res.failed(err)
		}
		res.retainsRole = res.status.RoleARN != ""
		res.status.State = v1alpha1.ProfileStateRetained
		res.status.Reason = v1alpha1.ReconciledReason
		why := "removed from spec.profiles"
		if objectDeleted {
			why = "its AwsKubeflowProfiles was deleted"
		}
		res.status.Message = fmt.Sprintf("No longer managed (%s). The deletion policy keeps Kubeflow Profile %s and IAM role %s; its plugin is set to annotateOnly.", why, name, res.status.RoleARN)
		return res
	}

	res.status.State = v1alpha1.ProfileStateDeleting
	res.status.Reason = v1alpha1.DeletingReason
	if have != nil {
		if err := r.setAnnotateOnly(ctx, s, have, name, res.status.RoleARN, false); err != nil {
			return res.failed(err)
		}
		if have.GetDeletionTimestamp().IsZero() {
			// The UID precondition deletes this Profile only, never one
			// created under the same name since it was read.
			uid := have.GetUID()
			if err := r.Client.Delete(ctx, have, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
				return res.failed(fmt.Errorf("deleting Kubeflow Profile %s: %w", name, err))
			}
			r.emit(ctx, s, []awsiam.Change{{Reason: "ProfileDeleted", Resource: "profile", Action: "delete",
				Message: fmt.Sprintf("Deleted Kubeflow Profile %s as the deletion policy asks; its role goes once the Profile is gone", name)}})
		}
		res.status.Message = fmt.Sprintf("Waiting for Kubeflow Profile %s (finalizers %v) to be gone before deleting IAM role %s.", name, have.GetFinalizers(), res.status.RoleARN)
		res.err = errWaitingForProfile
		if since := have.GetDeletionTimestamp(); since != nil && r.Clock.Since(since.Time) > r.profileDeletionPatience() {
			res.status.Reason = v1alpha1.ProfileDeletionStuckReason
			res.status.Message = fmt.Sprintf("Waiting for Kubeflow Profile %s, deleting since %s (finalizers %v), for longer than Kubeflow takes: its profile controller removes the finalizer once it has cleaned up, so if Kubeflow is not running, start it or remove the finalizer yourself; IAM role %s is deleted once the Profile is gone.",
				name, since.UTC().Format(time.RFC3339), have.GetFinalizers(), res.status.RoleARN)
			if objectDeleted {
				res.status.Message += " " + releaseHint + "."
			}
			res.err = fmt.Errorf("%w: %s", errProfileDeletionStuck, res.status.Message)
		}
		return res
	}
	if gone, err := r.profileGone(ctx, name); err != nil || !gone {
		if err == nil {
			err = errWaitingForProfile
		}
		return res.failed(err)
	}
	// The role is found by the ARN the status or the Profile recorded, or
	// else by the deterministic name the operator would have given it: a
	// profile whose role was created but failed later never recorded one.
	role := roleNameFromARN(res.status.RoleARN)
	if role == "" {
		role = profileRoleName(s, name)
	}
	changes, err := s.iam.DeleteOwnedRole(ctx, role, s.owner(), name)
	r.emit(ctx, s, changes)
	if errors.Is(err, awsiam.ErrDeleteBlocked) && objectDeleted {
		err = fmt.Errorf("%w; or: %s", err, releaseHint)
	}
	if errors.Is(err, awsiam.ErrNotOwned) {
		// An adopted or foreign role is never deleted; the Profile is
		// gone, so nothing depends on it through this object any more.
		log.Info("Keeping an IAM role the operator did not create", "roleName", role)
	} else if err != nil {
		return res.failed(err)
	}
	res.keep = false
	return res
}

// profileRoleName is the role name the operator gives a profile: as the
// spec says while it lists the profile, else the default.
func profileRoleName(s *scope, profile string) string {
	for _, p := range s.cr.Spec.Profiles {
		if p.Name == profile {
			return desired.RoleNameOf(p, s.cr.Spec.Cluster.Name)
		}
	}
	return desired.ProfileRoleName(profile, s.cr.Spec.Cluster.Name)
}

// errWaitingForProfile keeps a deleting profile in progress until Kubeflow's
// profile controller has removed its finalizer.
var errWaitingForProfile = errors.New("waiting for the Kubeflow Profile to be deleted")

// errProfileDeletionStuck marks a Profile that has been deleting for longer
// than Kubeflow's finalizer takes.
var errProfileDeletionStuck = errors.New("the Kubeflow Profile's deletion is not progressing")

// releaseHint tells an admin how to end a teardown that waits for them.
var releaseHint = fmt.Sprintf("to let this AwsKubeflowProfiles go now and keep the role, annotate it with %s=true", v1alpha1.ReleaseAnnotation)

// DefaultProfileDeletionPatience is how long a Profile may take to go before
// its deletion is reported as stuck: Kubeflow's finalizer normally takes
// seconds.
const DefaultProfileDeletionPatience = 2 * time.Minute

// profileGone reads the API server, not the cache, so a role is never deleted
// while its Profile might still exist.
func (r *Reconciler) profileGone(ctx context.Context, name string) (bool, error) {
	err := r.APIReader.Get(ctx, types.NamespacedName{Name: name}, desired.NewProfileObject())
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading Kubeflow Profile %s: %w", name, err)
	}
	return false, nil
}

// setAnnotateOnly switches the Profile's plugin to annotateOnly, so Kubeflow's
// profile controller stops editing the role's trust; on Profile deletion it
// would otherwise leave a trust policy that admits every service account.
// retain also marks the Profile as retained: no longer managed, and never
// deleted by the operator, whatever its deletion policy says later.
func (r *Reconciler) setAnnotateOnly(ctx context.Context, s *scope, have *unstructured.Unstructured, name, roleARN string, retain bool) error {
	_, only, found := desired.ProfilePlugin(have)
	needPlugin := found && !only && roleARN != ""
	needMark := retain && !desired.ProfileRetained(have)
	if !needPlugin && !needMark {
		return nil
	}
	have = have.DeepCopy() // the cache's own copy; see listProfiles
	patch := client.MergeFrom(have.DeepCopy())
	if needPlugin {
		plugins, _, _ := unstructured.NestedSlice(have.Object, "spec", "plugins")
		for i, p := range plugins {
			m, ok := p.(map[string]any)
			if !ok || m["kind"] != desired.PluginKindAwsIam {
				continue
			}
			spec, _ := m["spec"].(map[string]any)
			if spec == nil {
				spec = map[string]any{}
			}
			spec["annotateOnly"] = true
			m["spec"] = spec
			plugins[i] = m
		}
		if err := unstructured.SetNestedSlice(have.Object, plugins, "spec", "plugins"); err != nil {
			return fmt.Errorf("setting annotateOnly on Kubeflow Profile %s: %w", name, err)
		}
	}
	if needMark {
		annotations := have.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[desired.AnnotationRetained] = "true"
		have.SetAnnotations(annotations)
	}
	if err := r.Client.Patch(ctx, have, patch); err != nil {
		return fmt.Errorf("setting annotateOnly on Kubeflow Profile %s: %w", name, err)
	}
	if needPlugin {
		r.emit(ctx, s, []awsiam.Change{{Reason: "ProfileSetAnnotateOnly", Resource: "profile", Action: "update",
			Message: fmt.Sprintf("Set the AwsIamForServiceAccount plugin of Kubeflow Profile %s to annotateOnly, so Kubeflow no longer edits the trust of IAM role %s", name, roleARN)}})
	}
	return nil
}

// deleteProfiles lets go of every profile when the object is deleted and
// reports whether all are done.
func (r *Reconciler) deleteProfiles(ctx context.Context, s *scope) bool {
	existing, err := r.listProfiles(ctx)
	switch {
	case errors.Is(err, errKubeflowMissing):
		// No Profile kind, so no Profiles: only roles may be left to release.
		existing = map[string]*unstructured.Unstructured{}
	case err != nil:
		s.record(v1alpha1.ProfilesReadyCondition, err, outcome{})
		return false
	}
	names := r.formerProfiles(s, existing, map[string]bool{})
	// Profiles of the spec that never reached the status, or whose Profile
	// was never created, may still have a role the operator created.
	for _, p := range s.cr.Spec.Profiles {
		if prev, ok := s.cr.Status.Profile(p.Name); !slices.Contains(names, p.Name) &&
			(!ok || (prev.State != v1alpha1.ProfileStateRetained && prev.State != v1alpha1.ProfileStateNotOwned)) {
			if u := existing[p.Name]; u == nil || (desired.ProfileOwnedBy(u, s.cr.Name) && !desired.ProfileRetained(u)) {
				names = append(names, p.Name)
			}
		}
	}
	tasks := make([]profileTask, 0, len(names))
	for _, name := range names {
		tasks = append(tasks, profileTask{s.priorStatus(name), func(ctx context.Context) profileResult {
			return r.releaseProfile(ctx, s, name, existing[name], true)
		}})
	}
	for _, res := range r.runAndRecord(ctx, s, tasks, existing, map[string]bool{}) {
		if res.err != nil {
			return false
		}
	}
	return true
}
