package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

// reconcileNormal runs the phases of a live object in dependency order: the
// cluster facts and the desired state first, then the OIDC provider that
// every role trusts, then the controller's IRSA and the profiles.
func (r *Reconciler) reconcileNormal(ctx context.Context, s *scope) {
	all := []string{v1alpha1.OIDCProviderReadyCondition, v1alpha1.ControllerIRSAReadyCondition,
		v1alpha1.ProfileRolesReadyCondition, v1alpha1.ProfilesReadyCondition}
	if err := r.clusterClaimedByOther(ctx, s); err != nil {
		for _, t := range all {
			s.record(t, err, outcome{})
		}
		return
	}
	if err := r.resolveCluster(ctx, s); err != nil {
		s.record(v1alpha1.OIDCProviderReadyCondition, err, outcome{})
		s.block(v1alpha1.OIDCProviderReadyCondition, all[1:]...)
		return
	}
	state, err := desired.Build(s.cr.Name, specWithLegacyNames(s.cr), s.facts)
	if err != nil {
		for _, t := range all {
			s.record(t, err, outcome{})
		}
		return
	}
	s.state = state
	if !r.reconcileOIDCProvider(ctx, s) {
		s.block(v1alpha1.OIDCProviderReadyCondition, all[1:]...)
		return
	}
	r.reconcileControllerIRSA(ctx, s)
	r.reconcileProfiles(ctx, s)
}

// clusterClaimedByOther refuses an object for a cluster that an older
// AwsKubeflowProfiles manages: both would write the cluster's role path,
// the profile controller's IRSA and its service account, and undo each
// other's work. The older object (by creation time, then name) keeps the
// cluster and the newer one writes nothing, until the older is gone (the
// next resync sees that). Clusters of one name in two accounts, both named
// in the specs, are different clusters.
func (r *Reconciler) clusterClaimedByOther(ctx context.Context, s *scope) error {
	all, err := r.cachedObjects(ctx)
	if err != nil {
		return fmt.Errorf("listing AwsKubeflowProfiles that may manage the same cluster: %w", err)
	}
	if other, ok := desired.ClusterOwner(s.cr, all); ok {
		c := s.cr.Spec.Cluster
		return fmt.Errorf("%w: cluster %s in %s is managed by AwsKubeflowProfiles %s, and one object manages a cluster; move this object's spec.profiles into %s, or delete %s first",
			desired.ErrInvalidSpec, c.Name, c.Region, other, other, other)
	}
	return nil
}

// specWithLegacyNames is the spec with the names that older versions
// defaulted kept, for an object whose status shows it uses them: a cluster
// whose profile controller policy is the once-shared
// kf-profile-controller-policy keeps it rather than moving to the
// cluster-specific default.
func specWithLegacyNames(cr *v1alpha1.AwsKubeflowProfiles) v1alpha1.AwsKubeflowProfilesSpec {
	spec := cr.Spec
	if spec.ProfileController.PolicyName == "" &&
		strings.HasSuffix(cr.Status.ProfileController.Policy.ARN, ":policy/"+desired.LegacyControllerPolicyName) {
		spec.ProfileController.PolicyName = desired.LegacyControllerPolicyName
	}
	return spec
}

// resolveCluster fills in the account and the issuer the spec leaves to
// discovery, and checks those the spec gives against what STS and EKS
// report when they can be asked: a wrong account or issuer would put every
// ARN and trust policy the operator writes in the wrong place.
func (r *Reconciler) resolveCluster(ctx context.Context, s *scope) error {
	spec := s.cr.Spec.Cluster
	s.facts = desired.ClusterFacts{AccountID: spec.AccountID, IssuerURL: spec.OIDCIssuerURL}
	log := ctrl.LoggerFrom(ctx)

	account, err := r.callerAccount(ctx, s)
	switch {
	case s.facts.AccountID == "" && err != nil:
		return fmt.Errorf("%w: %w; grant sts:GetCallerIdentity or set spec.cluster.accountID", errDiscovery, err)
	case s.facts.AccountID == "":
		s.facts.AccountID = account
	case err != nil:
		log.V(1).Info("Could not check spec.cluster.accountID against the operator's credentials", "error", err.Error())
	case account != s.facts.AccountID:
		return fmt.Errorf("%w: spec.cluster.accountID is %s, but the operator's AWS credentials are in account %s (sts:GetCallerIdentity), where every IAM call lands; correct spec.cluster.accountID, or give the operator credentials in account %s",
			desired.ErrInvalidSpec, s.facts.AccountID, account, s.facts.AccountID)
	}

	reported, err := r.clusterIssuer(ctx, spec.Name, spec.Region, s.facts.IssuerURL != "")
	switch {
	case s.facts.IssuerURL == "" && err != nil:
		return fmt.Errorf("%w: %w; grant eks:DescribeCluster on the cluster or set spec.cluster.oidcIssuerURL", errDiscovery, err)
	case s.facts.IssuerURL == "":
		s.facts.IssuerURL = reported
	case err != nil:
		log.V(1).Info("Could not check spec.cluster.oidcIssuerURL against EKS", "error", err.Error())
	default:
		given, errGiven := desired.NormalizeIssuer(s.facts.IssuerURL)
		eks, errEKS := desired.NormalizeIssuer(reported)
		if errGiven == nil && errEKS == nil && given != eks {
			return fmt.Errorf("%w: spec.cluster.oidcIssuerURL is %s, but EKS reports %s for cluster %s in %s; correct spec.cluster.oidcIssuerURL or remove it to use the reported one",
				desired.ErrInvalidSpec, s.facts.IssuerURL, reported, spec.Name, spec.Region)
		}
	}
	s.cr.Status.AccountID = s.facts.AccountID
	if issuer, err := desired.NormalizeIssuer(s.facts.IssuerURL); err == nil {
		s.cr.Status.OIDCIssuerURL = issuer
	}
	return nil
}

// callerAccount is the account of the operator's credentials in the
// partition of the object's region, read once.
func (r *Reconciler) callerAccount(ctx context.Context, s *scope) (string, error) {
	partition := desired.Partition(s.cr.Spec.Cluster.Region)
	if v, ok := r.account.Load(partition); ok {
		return v.(string), nil
	}
	account, err := s.iam.CallerAccount(ctx)
	if err != nil {
		return "", err
	}
	r.account.Store(partition, account)
	return account, nil
}

// clusterIssuer reads the issuer once per resync period: a cluster keeps its
// issuer, but one deleted and recreated under the same name gets a new one.
// When the issuer is only checked, a lasting failure is remembered as long,
// so a spec that gives its issuer for a cluster EKS will not describe (no
// permission, another account) costs one call per resync, not one per
// reconcile; when it must be discovered, a failure is retried sooner.
func (r *Reconciler) clusterIssuer(ctx context.Context, cluster, region string, onlyCheck bool) (string, error) {
	key := region + "/" + cluster
	if v, ok := r.issuers.Load(key); ok {
		if d := v.(discovered); r.Clock.Since(d.at) < r.ResyncPeriod {
			return d.issuer, d.err
		}
	}
	issuer, err := r.IAM.ClusterIssuer(ctx, cluster, region)
	if err != nil && (!onlyCheck || (!awsiam.IsTerminal(err) && !awsiam.IsNotFound(err))) {
		return "", err
	}
	r.issuers.Store(key, discovered{issuer: issuer, err: err, at: r.Clock.Now()})
	return issuer, err
}

// discovered is an issuer, or why it could not be read, and when.
type discovered struct {
	issuer string
	err    error
	at     time.Time
}

// reconcileOIDCProvider reports whether the provider is usable.
func (r *Reconciler) reconcileOIDCProvider(ctx context.Context, s *scope) bool {
	want := s.state.OIDCProvider
	st := &s.cr.Status.OIDCProvider
	createdBefore := st.ARN == want.ARN && st.Ownership == v1alpha1.OwnershipCreated
	hash := hashOf(want)
	var res awsiam.OIDCProviderResult
	var err error
	if _, ok := r.fresh(s, "oidc", hash); ok {
		res = awsiam.OIDCProviderResult{ARN: st.ARN, External: st.Ownership == v1alpha1.OwnershipExternal}
	} else {
		res, err = s.iam.EnsureOIDCProvider(ctx, want, s.owner(), createdBefore)
		r.emit(ctx, s, res.Changes)
		if res.ARN != "" {
			r.clientIDs.Store(res.ARN, res.ClientIDs)
		}
		if err == nil {
			r.markVerified(s, "oidc", hash, res.ARN)
			if len(res.Changes) > 0 && res.Changes[0].Action == "create" {
				r.noteCreated(res.ARN)
			}
		}
	}
	if res.ARN != "" {
		st.ARN = res.ARN
		st.Ownership = v1alpha1.OwnershipCreated
		if res.External {
			st.Ownership = v1alpha1.OwnershipExternal
		}
	}
	msg := fmt.Sprintf("IAM OIDC provider %s trusts client ID sts.amazonaws.com.", want.ARN)
	if res.External {
		msg = fmt.Sprintf("Using IAM OIDC provider %s, which this operator did not create and will not change or delete.", want.ARN)
	}
	s.record(v1alpha1.OIDCProviderReadyCondition, err, outcome{ready: true, reason: v1alpha1.ReconciledReason, message: msg})
	return err == nil
}

// reconcileControllerIRSA makes the profile controller's policy, role,
// attachment and service-account annotation match, then restarts its pods
// when the annotation changed.
func (r *Reconciler) reconcileControllerIRSA(ctx context.Context, s *scope) {
	err := r.ensureControllerIRSA(ctx, s)
	msg := fmt.Sprintf("Service account %s assumes IAM role %s, which may edit the trust of roles under %s only.",
		s.state.ControllerServiceAccount, s.cr.Status.ProfileController.Role.ARN, s.state.ControllerPolicy.Document.Statement[0].Resource)
	s.record(v1alpha1.ControllerIRSAReadyCondition, err, outcome{ready: true, reason: v1alpha1.ReconciledReason, message: msg})
}

func (r *Reconciler) ensureControllerIRSA(ctx context.Context, s *scope) error {
	ns := controllerNamespace(r.ProfileControllerNamespace)
	if sa := s.state.ControllerServiceAccount; sa.Namespace != ns {
		return fmt.Errorf("%w: spec.profileController.serviceAccount is in namespace %s, but this operator manages the profile controller in namespace %s only (its --profile-controller-namespace, where config/rbac grants it a Role); set spec.profileController.serviceAccount.namespace and deployment.namespace to %s, or run the operator with --profile-controller-namespace=%s and grant it that Role there",
			desired.ErrInvalidSpec, sa.Namespace, ns, ns, sa.Namespace)
	}
	roleARN, err := r.ensureControllerIAM(ctx, s)
	if err != nil {
		return err
	}
	if err := r.ensureServiceAccount(ctx, s, roleARN); err != nil {
		return err
	}
	s.cr.Status.ProfileController.ServiceAccount = s.state.ControllerServiceAccount.String()
	return r.restartController(ctx, s, roleARN)
}

// ensureControllerIAM makes the controller's policy and role match unless
// they were verified recently with the same desired state.
func (r *Reconciler) ensureControllerIAM(ctx context.Context, s *scope) (string, error) {
	st := &s.cr.Status.ProfileController
	hash := hashOf(s.state.ControllerPolicy, s.state.ControllerRole)
	if arn, ok := r.fresh(s, "controller", hash); ok {
		st.Policy = v1alpha1.IAMResourceStatus{ARN: s.state.ControllerPolicy.ARN, Ownership: v1alpha1.OwnershipCreated}
		st.Role = v1alpha1.IAMResourceStatus{ARN: arn, Ownership: v1alpha1.OwnershipCreated}
		return arn, nil
	}
	log := ctrl.LoggerFrom(ctx)
	pol, err := s.iam.EnsureManagedPolicy(ctx, s.state.ControllerPolicy, s.owner())
	r.emit(ctx, s, pol.Changes)
	if err != nil {
		return "", err
	}
	if len(pol.Changes) > 0 && pol.Changes[0].Action == "create" {
		r.noteCreated(pol.ARN)
	}
	st.Policy = v1alpha1.IAMResourceStatus{ARN: pol.ARN, Ownership: v1alpha1.OwnershipCreated}
	if pol.DocumentUnverified {
		log.V(1).Info("IAM endpoint cannot return policy versions; drift of the policy document is not detected", "policyARN", pol.ARN)
	}
	role, err := s.iam.EnsureRole(ctx, s.state.ControllerRole, s.owner(), awsiam.Adoption{})
	r.emit(ctx, s, role.Changes)
	if err != nil {
		return "", r.propagationOf(err, pol.ARN, s.state.OIDCProvider.ARN)
	}
	for _, skipped := range role.Skipped {
		log.V(1).Info("Skipped a write the IAM endpoint does not support", "roleName", s.state.ControllerRole.Name, "reason", skipped)
	}
	st.Role = v1alpha1.IAMResourceStatus{ARN: role.ARN, Ownership: v1alpha1.OwnershipCreated}
	r.markVerified(s, "controller", hash, role.ARN)
	return role.ARN, nil
}

// reconcileDelete carries out the deletion policy and reports whether the
// finalizer may go.
func (r *Reconciler) reconcileDelete(ctx context.Context, s *scope) bool {
	profilesDone := r.deleteProfiles(ctx, s)
	if !profilesDone {
		return false
	}
	if s.cr.Spec.DeletionPolicy.ClusterIAM != v1alpha1.DeletionPolicyDelete {
		return true
	}
	err := r.deleteClusterIAM(ctx, s)
	s.record(v1alpha1.ControllerIRSAReadyCondition, err, outcome{reason: v1alpha1.DeletingReason, message: "Deleted the profile controller's IRSA."})
	return err == nil
}

// deleteClusterIAM deletes the cluster-level IAM resources the operator
// created: the annotation, the controller's role and policy, and the OIDC
// provider unless a retained role still trusts it.
func (r *Reconciler) deleteClusterIAM(ctx context.Context, s *scope) error {
	owner := s.owner()
	st := &s.cr.Status
	if err := r.releaseServiceAccounts(ctx, s, ""); err != nil {
		return err
	}
	if arn := st.ProfileController.Role.ARN; arn != "" {
		changes, err := s.iam.DeleteOwnedRole(ctx, roleNameFromARN(arn), owner, "")
		r.emit(ctx, s, changes)
		if errors.Is(err, awsiam.ErrDeleteBlocked) {
			err = fmt.Errorf("%w; or: %s", err, releaseHint)
		}
		if err := r.keepIfNotOwned(s, err); err != nil {
			return err
		}
	}
	if arn := st.ProfileController.Policy.ARN; arn != "" {
		changes, err := s.iam.DeleteOwnedPolicy(ctx, arn, owner)
		r.emit(ctx, s, changes)
		if awsiam.IsDeleteConflict(err) {
			// Still attached to a role the operator may not touch: detaching
			// would change someone else's role, so the policy stays too.
			err = fmt.Errorf("%w: IAM policy %s is still attached to a role this operator does not own; detach it and delete the policy yourself",
				awsiam.ErrNotOwned, arn)
		}
		if err := r.keepIfNotOwned(s, err); err != nil {
			return err
		}
	}
	if st.OIDCProvider.ARN == "" || st.OIDCProvider.Ownership != v1alpha1.OwnershipCreated {
		return nil
	}
	if s.retainedRoles {
		ctrl.LoggerFrom(ctx).Info("Keeping the OIDC provider: retained profile roles trust it", "oidcProviderARN", st.OIDCProvider.ARN)
		return nil
	}
	if other, err := r.otherUserOfProvider(ctx, s); err != nil || other != "" {
		if other != "" {
			ctrl.LoggerFrom(ctx).Info("Keeping the OIDC provider: another AwsKubeflowProfiles uses it", "oidcProviderARN", st.OIDCProvider.ARN, "AwsKubeflowProfiles", other)
		}
		return err
	}
	changes, err := s.iam.DeleteOwnedOIDCProvider(ctx, st.OIDCProvider.ARN, owner, true)
	r.emit(ctx, s, changes)
	return r.keepIfNotOwned(s, err)
}

// cachedObjects are the AwsKubeflowProfiles of the cache, shared with it
// rather than copied, since one can hold the status of 1000 profiles: they
// are read only.
func (r *Reconciler) cachedObjects(ctx context.Context) ([]v1alpha1.AwsKubeflowProfiles, error) {
	list := &v1alpha1.AwsKubeflowProfilesList{}
	if err := r.Client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// otherUserOfProvider names another AwsKubeflowProfiles whose roles trust
// the same OIDC provider, or "".
func (r *Reconciler) otherUserOfProvider(ctx context.Context, s *scope) (string, error) {
	all, err := r.cachedObjects(ctx)
	if err != nil {
		return "", fmt.Errorf("listing AwsKubeflowProfiles that may share the OIDC provider: %w", err)
	}
	for _, other := range all {
		if other.Name != s.cr.Name && other.Status.OIDCProvider.ARN == s.cr.Status.OIDCProvider.ARN {
			return other.Name, nil
		}
	}
	return "", nil
}

// keepIfNotOwned turns a refusal to delete a resource the operator no longer
// owns (its tags were changed, or a foreign role uses it) into a Warning: the
// resource stays, and the finalizer is not held forever by something the
// operator must not touch.
func (r *Reconciler) keepIfNotOwned(s *scope, err error) error {
	if !errors.Is(err, awsiam.ErrNotOwned) {
		return err
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(s.cr, nil, corev1.EventTypeWarning, v1alpha1.NotOwnedReason, "Delete",
			"Left in place: %s", err.Error())
	}
	return nil
}

// roleNameFromARN is the name of a role: the part of its ARN after the path.
func roleNameFromARN(arn string) string {
	for i := len(arn) - 1; i >= 0; i-- {
		if arn[i] == '/' {
			return arn[i+1:]
		}
	}
	return arn
}
