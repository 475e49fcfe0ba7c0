// Package controller reconciles AwsKubeflowProfiles: it observes IAM and the
// cluster, compares them with the desired state semantically, applies only
// the writes that differ and reports the outcome as conditions, per-profile
// status, Events and metrics.
package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

// conflictRetry is how soon a pass whose status write lost to a newer
// version of the object is followed by another.
const conflictRetry = 200 * time.Millisecond

// ControllerName names the controller in logs, metrics and Events.
const ControllerName = "awskubeflowprofiles-controller"

// Reconciler reconciles AwsKubeflowProfiles objects.
type Reconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads objects the cache does not hold, such as service
	// accounts that do not carry the operator's label yet.
	APIReader client.Reader
	IAM       *awsiam.Client
	Recorder  events.EventRecorder
	Metrics   *Metrics
	// ResyncPeriod is how often a converged object is checked again for
	// drift in IAM, which has no watch.
	ResyncPeriod time.Duration
	// ProfileConcurrency is how many profiles are reconciled at once.
	ProfileConcurrency int
	// Clock tells when IAM state was last verified.
	Clock clock.PassiveClock
	// ProfileControllerNamespace is the only namespace where the operator
	// annotates or creates a service account and restarts a Deployment: the
	// profile controller's, where its Role grants that.
	// DefaultProfileControllerNamespace when empty.
	ProfileControllerNamespace string
	// ProfileDeletionPatience is how long a Profile the deletion policy
	// deletes may take to go before the teardown is reported as stuck;
	// DefaultProfileDeletionPatience when zero.
	ProfileDeletionPatience time.Duration

	// profileWatch starts watching Profiles once Kubeflow is installed.
	profileWatch *profileWatch

	// verified remembers, per object and part, the desired state last found
	// or made true in IAM and when; see fresh.
	verified sync.Map
	// clientIDs remembers the client IDs of each OIDC provider, by ARN, as
	// last read or created, for the profiles' chain summaries.
	clientIDs sync.Map
	// created remembers when the operator created an IAM resource, by ARN;
	// see propagationOf.
	created sync.Map

	// issuers caches discovered OIDC issuers by region/cluster; an EKS
	// cluster's issuer never changes.
	issuers sync.Map
	// account caches the account of the operator's credentials.
	account sync.Map
	// policies caches, by ARN, whether a managed policy a spec names exists.
	policies sync.Map
	// listed remembers, by object UID, when its roles were last listed.
	listed sync.Map
	// seen remembers the profile roles verified since the process started;
	// see markRoleVerified.
	seen sync.Map
	// verifier checks the profile roles in the background; see verifier.
	verifier     *verifier
	verifierOnce sync.Once
	// detailsDenied and listDenied are set once the operator was refused
	// iam:GetAccountAuthorizationDetails or iam:ListRoles and said so.
	detailsDenied atomic.Bool
	listDenied    atomic.Bool
}

// +kubebuilder:rbac:groups=kubeflow.aws,resources=awskubeflowprofiles,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=kubeflow.aws,resources=awskubeflowprofiles/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kubeflow.aws,resources=awskubeflowprofiles/finalizers,verbs=update
// The profile controller's service account and Deployment are written in its
// namespace only (a Role there, see config/rbac); the ClusterRole holds what
// is cluster-scoped, and reads service accounts everywhere, since the chain
// summaries read each profile's default-editor from the cache.
// +kubebuilder:rbac:groups="",namespace=kubeflow,resources=serviceaccounts,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,namespace=kubeflow,resources=deployments,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get
// +kubebuilder:rbac:groups=kubeflow.org,resources=profiles,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// scope carries what one reconcile observed and decided.
type scope struct {
	// iam is the AWS client for the partition of the object's region.
	iam    *awsiam.Client
	cr     *v1alpha1.AwsKubeflowProfiles
	before *v1alpha1.AwsKubeflowProfiles
	facts  desired.ClusterFacts
	state  desired.State
	parts  map[string]outcome
	// retry is the shortest delay a transient failure asked for; 0 with
	// transient set means "let controller-runtime back off".
	retry     time.Duration
	transient []error
	// retainedRoles is set when a Profile the deletion policy keeps uses a
	// role that trusts the cluster's OIDC provider.
	retainedRoles bool
	// gone reports whether the AwsKubeflowProfiles of a name no longer
	// exists; see Reconciler.goneChecker.
	gone func(name string) bool
	// missingPolicies are the managed policy ARNs the spec names that IAM
	// does not know; see Reconciler.checkPolicies.
	missingPolicies map[string]bool
	// listing is the bulk read of the object's roles this pass made, or
	// nil; see Reconciler.listForUnrecorded.
	listing *awsiam.Listing
	// editors are the default-editor service accounts, listed once a pass
	// for the chain summaries.
	editors editors
	// writes are the pass's writes, for its Events.
	writes writeEvents
}

func (s *scope) owner() desired.Owner {
	return desired.Owner{Name: s.cr.Name, Cluster: s.cr.Spec.Cluster.Name, Gone: s.isGone}
}

func (s *scope) isGone(name string) bool {
	return s.gone != nil && s.gone(name)
}

// goneChecker reports whether the AwsKubeflowProfiles of a name is gone,
// reading the API server rather than the cache, which may not yet hold an
// object just created: only then may what it owned be taken over. Answers
// are remembered for the pass; an error counts as not gone.
func (r *Reconciler) goneChecker(ctx context.Context) func(string) bool {
	var mu sync.Mutex
	memo := map[string]bool{}
	return func(name string) bool {
		mu.Lock()
		defer mu.Unlock()
		if gone, ok := memo[name]; ok {
			return gone
		}
		err := r.APIReader.Get(ctx, types.NamespacedName{Name: name}, &v1alpha1.AwsKubeflowProfiles{})
		memo[name] = apierrors.IsNotFound(err)
		return memo[name]
	}
}

// Reconcile brings one AwsKubeflowProfiles closer to its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cr := &v1alpha1.AwsKubeflowProfiles{}
	if err := r.Client.Get(ctx, req.NamespacedName, cr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	deleting := !cr.DeletionTimestamp.IsZero()
	if deleting && !controllerutil.ContainsFinalizer(cr, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	if !deleting && !controllerutil.ContainsFinalizer(cr, v1alpha1.Finalizer) {
		patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(cr, v1alpha1.Finalizer)
		if err := r.Client.Patch(ctx, cr, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer %s: %w", v1alpha1.Finalizer, err)
		}
	}

	s := &scope{iam: r.IAM.InRegion(cr.Spec.Cluster.Region), cr: cr, before: cr.DeepCopy(), parts: map[string]outcome{}, gone: r.goneChecker(ctx)}
	defer r.sendWriteEvents(s)
	if deleting && cr.Annotations[v1alpha1.ReleaseAnnotation] == "true" {
		r.releaseWithoutCleanup(s)
		return ctrl.Result{}, r.removeFinalizer(ctx, cr)
	}
	var done bool
	if deleting {
		done = r.reconcileDelete(ctx, s)
	} else {
		r.reconcileNormal(ctx, s)
	}
	summarize(cr, s.parts, deleting)
	r.warnOnNewFailures(s)
	if done {
		return ctrl.Result{}, r.removeFinalizer(ctx, cr)
	}
	cr.Status.ObservedGeneration = cr.Generation
	if err := r.patchStatus(ctx, s); apierrors.IsConflict(err) {
		// The pass read a copy older than the object, typically from a
		// cache that has not seen the status just written: its status is
		// dropped, and a pass on the newer copy follows.
		ctrl.LoggerFrom(ctx).V(1).Info("The object changed since this pass read it; reconciling it again", "error", err.Error())
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	// Only a status that was written is announced: a pass on a stale copy
	// would announce a change again.
	r.announceChains(s)
	return r.result(s)
}

// result turns the scope's failures into when to come back.
func (r *Reconciler) result(s *scope) (ctrl.Result, error) {
	for _, err := range s.transient {
		if err != nil {
			return ctrl.Result{}, errors.Join(s.transient...)
		}
	}
	if s.retry > 0 {
		return ctrl.Result{RequeueAfter: s.retry}, nil
	}
	return ctrl.Result{RequeueAfter: r.ResyncPeriod}, nil
}

// record stores the outcome of a part and, for a failure, when to retry.
func (s *scope) record(condType string, err error, ready outcome) {
	if err == nil {
		s.parts[condType] = ready
		return
	}
	o, after := failure(err)
	s.parts[condType] = o
	s.noteRetry(o, after, err)
}

// noteRetry remembers when to come back after a failure: stalled parts wait
// for the resync unless they name a sooner check, others for their delay or
// controller-runtime's backoff.
func (s *scope) noteRetry(o outcome, after time.Duration, err error) {
	switch {
	case o.stalled && after == 0:
	case after > 0:
		if s.retry == 0 || after < s.retry {
			s.retry = after
		}
	default:
		s.transient = append(s.transient, err)
	}
}

// block marks parts that cannot start until another part is ready.
func (s *scope) block(on string, condTypes ...string) {
	for _, t := range condTypes {
		s.parts[t] = outcome{reason: v1alpha1.BlockedReason, message: fmt.Sprintf("Waiting for %s.", on)}
	}
}

// patchStatus writes the status this pass computed, only if the object is
// still the version the pass read: a pass working from a stale cache must
// not overwrite the status of a newer one. A conflict is retried with a
// fresh read. The status is written whole, with the version read as the
// lock: a merge patch would be computed by decoding the old and the new
// object into maps, which for the status of 1000 profiles is most of what a
// pass allocates.
func (r *Reconciler) patchStatus(ctx context.Context, s *scope) error {
	if equality.Semantic.DeepEqual(s.before.Status, s.cr.Status) {
		return nil
	}
	if err := r.Client.Status().Update(ctx, s.cr); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	return nil
}

func (r *Reconciler) profileDeletionPatience() time.Duration {
	if r.ProfileDeletionPatience > 0 {
		return r.ProfileDeletionPatience
	}
	return DefaultProfileDeletionPatience
}

// releaseWithoutCleanup ends a teardown an admin gave up on: the object goes
// now, and what its status says is still there stays, named in a Warning.
func (r *Reconciler) releaseWithoutCleanup(s *scope) {
	var kept []string
	for _, p := range s.cr.Status.Profiles {
		if p.State == v1alpha1.ProfileStateNotOwned {
			continue
		}
		what := "Kubeflow Profile " + p.Name
		if p.RoleARN != "" {
			what += " and IAM role " + p.RoleARN
		}
		kept = append(kept, what)
	}
	st := s.cr.Status
	for _, res := range []v1alpha1.IAMResourceStatus{st.ProfileController.Role, st.ProfileController.Policy, st.OIDCProvider} {
		if res.ARN != "" && res.Ownership == v1alpha1.OwnershipCreated && s.cr.Spec.DeletionPolicy.ClusterIAM == v1alpha1.DeletionPolicyDelete {
			kept = append(kept, res.ARN)
		}
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(s.cr, nil, corev1.EventTypeWarning, "ReleasedWithoutCleanup", "Delete",
			"Released as the %s annotation asks; whatever the deletion policy had not deleted yet is kept and no longer managed: %s",
			v1alpha1.ReleaseAnnotation, strings.Join(kept, "; "))
	}
}

// removeFinalizer lets the object go. An object already gone is success: a
// second pass that worked from a stale cache finds nothing left to release.
func (r *Reconciler) removeFinalizer(ctx context.Context, cr *v1alpha1.AwsKubeflowProfiles) error {
	patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(cr, v1alpha1.Finalizer)
	if err := r.Client.Patch(ctx, cr, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("removing finalizer %s: %w", v1alpha1.Finalizer, err)
	}
	if r.Metrics != nil {
		r.Metrics.setTrustFindings(cr.Name, nil)
	}
	return nil
}

// SetupWithManager registers the controller. Service accounts are watched
// through the manager's cache (see CacheOptions): drift of the annotation
// of those the operator labelled is repaired at once, and a change of a
// profile's default-editor updates its chain summary.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	verifier := r.roleVerifier()
	c, err := ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&v1alpha1.AwsKubeflowProfiles{}, builder.WithPredicates(specOrDeletionChanged())).
		Watches(&corev1.ServiceAccount{}, handler.EnqueueRequestsFromMapFunc(r.serviceAccountOwners)).
		WatchesRawSource(source.Channel(verifier.events, &handler.EnqueueRequestForObject{})).
		Build(r)
	if err != nil {
		return err
	}
	if err := mgr.Add(verifier); err != nil {
		return fmt.Errorf("adding the verifier of profile roles: %w", err)
	}
	r.profileWatch = &profileWatch{ctrl: c, cache: mgr.GetCache(), mapper: mgr.GetRESTMapper(), mapFn: r.profileOwners}
	// Without Kubeflow's Profile CRD there is nothing to watch yet; the
	// operator still manages the cluster-level IAM, reports the profiles as
	// waiting for Kubeflow, and starts watching once the CRD appears.
	// Before the manager starts, the controller starts the watch itself.
	if err := r.profileWatch.ensure(context.Background(), false); err != nil {
		mgr.GetLogger().Info("Kubeflow's Profile CRD is not installed yet: Profiles are watched once it is", "reason", err.Error())
	}
	return nil
}

// profileWatch starts the watch of Kubeflow Profiles once their CRD exists,
// which may be after the operator started.
type profileWatch struct {
	mu      sync.Mutex
	started bool
	ctrl    controller.Controller
	cache   cache.Cache
	mapper  meta.RESTMapper
	mapFn   handler.MapFunc
}

// errProfileKindMissing marks a cluster that does not serve the Profile kind.
var errProfileKindMissing = errors.New("the Profile kind is not served")

// watchSyncTimeout bounds the wait for a watch started while the manager
// runs: an informer that cannot sync (RBAC, say) would otherwise hold every
// reconcile.
const watchSyncTimeout = time.Minute

// ensure starts the watch if the Profile kind is served. It returns an error
// wrapping errProfileKindMissing when Kubeflow is not installed, and another
// error when the watch cannot be started. With wait, as when the manager
// already runs, a new watch is waited for, so that no Profile written after
// ensure returns goes unseen; a watch that did not sync in time is not
// started twice, and its events flow once it does.
func (w *profileWatch) ensure(ctx context.Context, wait bool) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return nil
	}
	if _, err := w.mapper.RESTMapping(desired.ProfileGVK.GroupKind(), desired.ProfileGVK.Version); meta.IsNoMatchError(err) {
		return fmt.Errorf("%w: %w", errProfileKindMissing, err)
	} else if err != nil {
		return fmt.Errorf("looking up the Kubeflow Profile kind: %w", err)
	}
	src := source.Kind[client.Object](w.cache, desired.NewProfileObject(), handler.EnqueueRequestsFromMapFunc(w.mapFn))
	if err := w.ctrl.Watch(src); err != nil {
		return fmt.Errorf("watching Kubeflow Profiles: %w", err)
	}
	w.started = true
	if !wait {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, watchSyncTimeout)
	defer cancel()
	if err := src.WaitForSync(ctx); err != nil {
		return fmt.Errorf("waiting for the watch of Kubeflow Profiles to sync: %w", err)
	}
	return nil
}

// DefaultProfileControllerNamespace is where Kubeflow installs its profile
// controller.
const DefaultProfileControllerNamespace = "kubeflow"

// controllerNamespace is the namespace --profile-controller-namespace
// names, DefaultProfileControllerNamespace when it is empty.
func controllerNamespace(flag string) string {
	if flag == "" {
		return DefaultProfileControllerNamespace
	}
	return flag
}

// ClientOptions make the manager's client read Profiles from its cache.
// They are unstructured objects, since Kubeflow's Go types are no
// dependency of the operator, and controller-runtime's client reads
// unstructured objects from the API server unless told otherwise: every
// pass would list every Profile, which at 1000 profiles is megabytes
// decoded per pass, beside the watch's own copy of each.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{Unstructured: true}}
}

// CacheOptions limits the manager's cache of service accounts, of which a
// cluster has many: in the profile controller's namespace, those the
// operator labelled; elsewhere, the default-editor service accounts only,
// whose annotation the profiles' chain summaries read. The cached objects
// lose their managed fields, which the operator never reads and which, for
// the status of 1000 profiles, are as large as the rest of the object.
func CacheOptions(profileControllerNamespace string) cache.Options {
	// "" would also be cache.AllNamespaces, and replace the entry of the
	// labelled service accounts with that of default-editor.
	profileControllerNamespace = controllerNamespace(profileControllerNamespace)
	strip := cache.TransformStripManagedFields()
	return cache.Options{DefaultTransform: trimProfile, ByObject: map[client.Object]cache.ByObject{
		&v1alpha1.AwsKubeflowProfiles{}: {Transform: strip},
		&corev1.ServiceAccount{}: {
			Transform: strip,
			Namespaces: map[string]cache.Config{
				profileControllerNamespace: {LabelSelector: labels.SelectorFromSet(nil).Add(mustRequirement(desired.LabelOwner, selection.Exists))},
				cache.AllNamespaces:        {FieldSelector: fields.OneTermEqualSelector("metadata.name", desired.KubeflowEditorServiceAccount)},
			},
		},
	}}
}

// trimProfile is the cache's transform of the kinds without one of their
// own, the Profiles among them: a ByObject transform for Profiles would
// need their REST mapping when the manager starts, before Kubeflow may be
// installed. A cached Profile keeps of its managed fields only what the
// operator reads (desired.TrimManagedFields); other objects are kept whole.
func trimProfile(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok && u.GroupVersionKind().GroupKind() == desired.ProfileGVK.GroupKind() {
		desired.TrimManagedFields(u, FieldOwner)
	}
	return obj, nil
}

func mustRequirement(key string, op selection.Operator) labels.Requirement {
	req, err := labels.NewRequirement(key, op, nil)
	if err != nil {
		panic(fmt.Sprintf("label requirement %s: %v", key, err))
	}
	return *req
}

// profileOwners maps a Kubeflow Profile to the objects that manage it (by
// label) or name it in their spec (it may be someone else's, or gone).
func (r *Reconciler) profileOwners(ctx context.Context, obj client.Object) []reconcile.Request {
	return append(ownerFromLabel(ctx, obj), r.objectsNaming(ctx, obj.GetName(), "a Profile")...)
}

// objectsNaming are the objects whose spec.profiles name profile, for
// mapping an event of what (a Profile, its default-editor) to them.
func (r *Reconciler) objectsNaming(ctx context.Context, profile, what string) []reconcile.Request {
	all, err := r.cachedObjects(ctx)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing AwsKubeflowProfiles to map an event of "+what, "profile", profile)
		return nil
	}
	var reqs []reconcile.Request
	for _, cr := range all {
		if slices.ContainsFunc(cr.Spec.Profiles, func(p v1alpha1.ProfileSpec) bool { return p.Name == profile }) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: cr.Name}})
		}
	}
	return reqs
}

// ownerFromLabel maps an object labelled by the operator to its
// AwsKubeflowProfiles.
func ownerFromLabel(_ context.Context, obj client.Object) []reconcile.Request {
	name, ok := obj.GetLabels()[desired.LabelOwner]
	if !ok || name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
}

// specOrDeletionChanged ignores the status patches the controller makes
// itself, and passes spec changes, deletion, finalizer changes and the
// release annotation.
func specOrDeletionChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return o.GetGeneration() != n.GetGeneration() ||
				!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
				len(o.GetFinalizers()) != len(n.GetFinalizers()) ||
				o.GetAnnotations()[v1alpha1.ReleaseAnnotation] != n.GetAnnotations()[v1alpha1.ReleaseAnnotation]
		},
	}
}
