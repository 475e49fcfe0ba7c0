package controller

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
)

// verifierShare is the fraction of the AWS rate limit the verifier may
// take, so that the calls of an edit always find room.
const verifierShare = 0.5

// VerifierAppID is in the user agent of the verifier's calls, as
// app/awskubeflowprofiles-verifier: CloudTrail, or a proxy, tells the
// background reads from those of a reconcile by it.
const VerifierAppID = "awskubeflowprofiles-verifier"

// verifier checks the profile roles again, once per resync period each, in
// the background and read-only, since IAM has no watch. The checks are
// spread across the period: a role is due a period after it was last
// verified, and the first verification of a role is dated back by a stable
// fraction of the period (see markRoleVerified). Once per period and object
// it lists the roles in bulk, which settles the trust, settings and tags of
// every role in one call per 1000 roles, and with
// GetAccountAuthorizationDetails their policies too; then only the policies
// of each due role are read, two calls. A role found to differ is forgotten
// and its object queued: the reconcile repairs it as it would an edit.
//
// Reconciles never wait for it, and it never takes more than verifierShare
// of the rate limit, so an edit converges in seconds at any number of
// profiles, during a resync or not.
type verifier struct {
	r      *Reconciler
	iam    *awsiam.Client
	events chan event.GenericEvent
}

func newVerifier(r *Reconciler) *verifier {
	return &verifier{r: r, iam: r.IAM.Background(verifierShare, VerifierAppID), events: make(chan event.GenericEvent, 64)}
}

// NeedLeaderElection keeps the verifier to the leader, which alone writes.
func (v *verifier) NeedLeaderElection() bool { return true }

// tick is how often the verifier looks for due roles: often enough that a
// role is checked soon after it is due, at the cost of a scan of memory.
func (v *verifier) tick() time.Duration {
	return min(time.Second, max(v.r.ResyncPeriod/20, 50*time.Millisecond))
}

// Start runs the verifier until ctx ends.
func (v *verifier) Start(ctx context.Context) error {
	ctx = ctrl.LoggerInto(ctx, ctrl.LoggerFrom(ctx).WithName("verifier"))
	t := time.NewTicker(v.tick())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for _, obj := range v.safePass(ctx) {
				select {
				case v.events <- event.GenericEvent{Object: &v1alpha1.AwsKubeflowProfiles{ObjectMeta: metav1.ObjectMeta{Name: obj.Name}}}:
				case <-ctx.Done():
					return nil
				}
			}
		}
	}
}

// safePass is a pass that, should it panic, logs it and lets the next tick
// try again, rather than take the manager down.
func (v *verifier) safePass(ctx context.Context) (differ []types.NamespacedName) {
	defer func() {
		if p := recover(); p != nil {
			ctrl.LoggerFrom(ctx).Error(fmt.Errorf("%v", p), "Verifying the profile roles panicked")
		}
	}()
	return v.pass(ctx)
}

// recorded is one verification on record.
type recorded struct {
	key string
	v   verification
}

// VerifyDue checks the profile roles whose last verification is a resync
// period old, as the background verifier does at each tick, and returns the
// objects with a role that differs from its spec: they need a reconcile.
func (r *Reconciler) VerifyDue(ctx context.Context) []types.NamespacedName {
	return r.roleVerifier().pass(ctx)
}

func (r *Reconciler) roleVerifier() *verifier {
	r.verifierOnce.Do(func() { r.verifier = newVerifier(r) })
	return r.verifier
}

// pass checks the roles that are due, object by object, and returns the
// objects with a role that differs.
func (v *verifier) pass(ctx context.Context) []types.NamespacedName {
	var differ []types.NamespacedName
	now, period := v.r.Clock.Now().UnixNano(), v.r.ResyncPeriod.Nanoseconds()
	byObject := map[types.UID][]recorded{}
	v.r.verified.Range(func(k, val any) bool {
		if ver := val.(verification); ver.role != nil {
			byObject[ver.role.uid] = append(byObject[ver.role.uid], recorded{key: k.(string), v: ver})
		}
		return true
	})
	for uid, records := range byObject {
		if slices.ContainsFunc(records, func(rec recorded) bool { return rec.v.at+period <= now }) && v.checkObject(ctx, uid, records) {
			differ = append(differ, records[0].v.role.object)
		}
	}
	return differ
}

// checkObject checks the due roles of one object, listing them first once
// a period, and reports whether one differs.
func (v *verifier) checkObject(ctx context.Context, uid types.UID, records []recorded) bool {
	period := v.r.ResyncPeriod.Nanoseconds()
	if !v.live(ctx, records[0].v.role) {
		for _, rec := range records {
			v.r.verified.CompareAndDelete(rec.key, rec.v)
		}
		v.r.listed.Delete(uid)
		return false
	}
	differs := false
	if v.listingDue(uid, v.r.Clock.Now().UnixNano(), true) {
		records, differs = v.sweep(ctx, uid, records)
	}
	slices.SortFunc(records, func(a, b recorded) int { return cmp.Compare(a.v.at, b.v.at) })
	for _, rec := range records {
		now := v.r.Clock.Now().UnixNano()
		if ctx.Err() != nil || v.listingDue(uid, now, false) {
			// A pass that outlasts the period (the checks near the rate
			// limit) stops for the next to list the roles first, rather
			// than read each role whole.
			break
		}
		if rec.v.at+period <= now && !v.check(ctx, rec) {
			differs = true
		}
	}
	return differs
}

// listingDue reports whether the object's roles are to be listed again: a
// period after the last listing, or, when roles are due and the last
// listing had the details, now, since one listing settles them all.
func (v *verifier) listingDue(uid types.UID, now int64, rolesDue bool) bool {
	v2, ok := v.r.listed.Load(uid)
	if !ok {
		return true
	}
	last := v2.(listedAt)
	return last.at+v.r.ResyncPeriod.Nanoseconds() <= now || (rolesDue && last.detailed)
}

// live reports whether the object of a role is still there and not being
// deleted; what a deleted object verified is dropped.
func (v *verifier) live(ctx context.Context, c *roleCheck) bool {
	all, err := v.r.cachedObjects(ctx)
	if err != nil {
		return true
	}
	i := slices.IndexFunc(all, func(cr v1alpha1.AwsKubeflowProfiles) bool { return cr.UID == c.uid })
	return i >= 0 && all[i].DeletionTimestamp.IsZero()
}

// sweep lists an object's roles in bulk and settles from the listing what
// it can: roles that match in full are verified, roles whose own
// attributes match have those verified, roles that differ are handed to
// the reconcile. It returns the records as they now are, and whether a role
// differs.
func (v *verifier) sweep(ctx context.Context, uid types.UID, records []recorded) ([]recorded, bool) {
	now, period := v.r.Clock.Now().UnixNano(), v.r.ResyncPeriod.Nanoseconds()
	first := records[0].v.role
	paths := map[string]bool{}
	for _, rec := range records {
		paths[rec.v.role.want.Path] = true
	}
	l, detailed, err := v.r.listRoles(ctx, v.iam.InRegion(first.region), slices.Sorted(maps.Keys(paths)))
	if err != nil {
		// Until the next try, a tenth of a period away, each due role is
		// read on its own.
		ctrl.LoggerFrom(ctx).V(1).Info("Could not list the roles in bulk", "awskubeflowprofiles", first.object.Name, "error", err.Error())
		v.r.listed.Store(uid, listedAt{at: now - period + period/10})
		return records, false
	}
	v.r.listed.Store(uid, listedAt{at: now, detailed: detailed})
	out, differs := records[:0], false
	for _, rec := range records {
		c := *rec.v.role
		next := rec.v
		switch l.Judge(c.want.Name, c.want, c.owner) {
		case awsiam.ListedMatches:
			c.roleAt, next.at = now, now
		case awsiam.ListedRoleMatches:
			c.roleAt = now
		case awsiam.ListedDiffers:
			differs = v.forget(ctx, rec) || differs
			continue
		default:
			out = append(out, rec)
			continue
		}
		next.role = &c
		if v.r.verified.CompareAndSwap(rec.key, rec.v, next) {
			rec.v = next
		}
		out = append(out, rec)
	}
	return out, differs
}

// check reads one due role: only its policies when a listing verified the
// rest within the period, all of it otherwise. It returns false when the
// role differs.
func (v *verifier) check(ctx context.Context, rec recorded) bool {
	now, period := v.r.Clock.Now().UnixNano(), v.r.ResyncPeriod.Nanoseconds()
	c := *rec.v.role
	iamClient := v.iam.InRegion(c.region)
	var ok bool
	var err error
	if c.roleAt+period > now {
		ok, err = iamClient.PoliciesMatch(ctx, c.want)
	} else {
		ok, err = iamClient.RoleMatches(ctx, c.want, c.owner)
		c.roleAt = now
	}
	next := rec.v
	switch {
	case err != nil:
		// Tried again a tenth of a period later, not at every tick.
		ctrl.LoggerFrom(ctx).V(1).Info("Could not verify a profile's role; trying again later", "awskubeflowprofiles", c.object.Name, "role", c.want.Name, "error", err.Error())
		next.at = now - period + period/10
	case !ok:
		return !v.forget(ctx, rec)
	default:
		next.at, next.role = now, &c
	}
	v.r.verified.CompareAndSwap(rec.key, rec.v, next)
	return true
}

// forget drops the verification of a role found to differ from its spec,
// so that the reconcile its object needs reads the role in full and repairs
// it. It returns false when the record changed meanwhile, as when a
// reconcile wrote the role since.
func (v *verifier) forget(ctx context.Context, rec recorded) bool {
	if !v.r.verified.CompareAndDelete(rec.key, rec.v) {
		return false
	}
	ctrl.LoggerFrom(ctx).Info("A profile's role differs from its spec; repairing it", "awskubeflowprofiles", rec.v.role.object.Name, "role", rec.v.role.want.Name)
	return true
}
