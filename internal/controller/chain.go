package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/diagnose"
)

// Reasons of the Events a profile's chain summary changing makes.
const (
	ChainBrokenReason = "CredentialChainBroken"
	ChainWholeReason  = "CredentialChainWhole"
)

// summarizeChain sets the chain summary of a ready profile from what the
// reconcile already holds: the Profile it wrote, the role it verified, the
// OIDC provider's client IDs as last read, and default-editor from the
// cache. It makes no IAM call.
func (r *Reconciler) summarizeChain(ctx context.Context, s *scope, p desired.Profile, profile *unstructured.Unstructured, st *v1alpha1.ProfileStatus) {
	roleARN, annotateOnly, found := desired.ProfilePlugin(profile)
	o := diagnose.Observation{
		Profile:        p.Name,
		KubeflowObject: diagnose.Found(diagnose.Profile{HasPlugin: found, RoleARN: roleARN, AnnotateOnly: annotateOnly}),
		ServiceAccount: r.editorOf(ctx, p.Name),
		Role: diagnose.Found(diagnose.Role{Trust: p.Role.Trust, Attached: p.Role.ManagedPolicyARNs,
			Inline: slices.Sorted(maps.Keys(p.Role.InlinePolicies))}),
	}
	providerARN := s.cr.Status.OIDCProvider.ARN
	if ids, ok := r.clientIDs.Load(providerARN); ok {
		o.OIDCProvider = diagnose.Found(diagnose.OIDCProvider{ARN: providerARN, ClientIDs: ids.([]string)})
	} else {
		o.OIDCProvider = diagnose.Failed[diagnose.OIDCProvider](fmt.Errorf("the client IDs of OIDC provider %s are read at the next resync", providerARN))
	}
	st.Chain, st.ChainBrokenLink = chainOutcome(diagnose.Summarize(o, s.state.IssuerURL))
}

// chainOutcome is Whole when every link passed, Broken with the first
// failing link, or neither when a link could not be checked.
func chainOutcome(report diagnose.Report) (v1alpha1.ChainState, string) {
	if c, broken := report.FirstBroken(); broken {
		return v1alpha1.ChainBroken, c.Link
	}
	if report.Whole() {
		return v1alpha1.ChainWhole, ""
	}
	return "", ""
}

// maxNamedInEvent bounds the profiles an Event of chain changes names, so
// that its note stays within the 1024 bytes events.k8s.io takes (and it is
// cut there too: client-go would drop a longer one).
const maxNamedInEvent = 10

// announceChains makes one Warning Event for the profiles whose chain broke
// in this pass and one Normal Event for those whole again, rather than one
// each: when Kubeflow's profile controller stops, a thousand chains break
// at once.
func (r *Reconciler) announceChains(s *scope) {
	if r.Recorder == nil || s.before == nil {
		return
	}
	broke, healed := chainChanges(s.before.Status.Profiles, s.cr.Status.Profiles)
	if len(broke) > 0 {
		r.Recorder.Eventf(s.cr, nil, corev1.EventTypeWarning, ChainBrokenReason, "Summarize", "%s", truncate(fmt.Sprintf(
			"The credential chain of %s is broken (profile: first broken link); `kubectl awskubeflowprofiles diagnose -n <profile>` says what fixes it", namedList(broke))))
	}
	if len(healed) > 0 {
		r.Recorder.Eventf(s.cr, nil, corev1.EventTypeNormal, ChainWholeReason, "Summarize", "%s", truncate(fmt.Sprintf(
			"The credential chain of %s is whole again", namedList(healed))))
	}
}

// chainChanges lists the profiles whose chain was whole and broke, or broke
// at another link, as "name: link", and those whole again after being
// broken. A chain first seen broken is no change: every new profile's is,
// until Kubeflow creates its default-editor, and a thousand new profiles
// would make as many Warnings; the status shows it.
func chainChanges(before, now []v1alpha1.ProfileStatus) (broke, healed []string) {
	was := make(map[string]v1alpha1.ProfileStatus, len(before))
	for _, p := range before {
		was[p.Name] = p
	}
	for _, p := range now {
		prev := was[p.Name]
		switch {
		case p.Chain == v1alpha1.ChainBroken && (prev.Chain == v1alpha1.ChainWhole || (prev.Chain == v1alpha1.ChainBroken && prev.ChainBrokenLink != p.ChainBrokenLink)):
			broke = append(broke, p.Name+": "+p.ChainBrokenLink)
		case p.Chain == v1alpha1.ChainWhole && prev.Chain == v1alpha1.ChainBroken:
			healed = append(healed, p.Name)
		}
	}
	return broke, healed
}

// namedList names up to maxNamedInEvent items and counts the rest.
func namedList(items []string) string {
	noun := "profiles"
	if len(items) == 1 {
		noun = "profile"
	}
	if len(items) <= maxNamedInEvent {
		return fmt.Sprintf("%d %s (%s)", len(items), noun, strings.Join(items, "; "))
	}
	return fmt.Sprintf("%d %s (%s; and %d more)", len(items), noun, strings.Join(items[:maxNamedInEvent], "; "), len(items)-maxNamedInEvent)
}

// editorOf reads a profile's default-editor from the cache, which holds
// every default-editor: a summary costs no API call per profile.
func (r *Reconciler) editorOf(ctx context.Context, namespace string) diagnose.Read[diagnose.ServiceAccount] {
	sa := &corev1.ServiceAccount{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: desired.KubeflowEditorServiceAccount}, sa)
	switch {
	case apierrors.IsNotFound(err):
		return diagnose.Read[diagnose.ServiceAccount]{}
	case err != nil:
		return diagnose.Failed[diagnose.ServiceAccount](fmt.Errorf("reading service account %s/%s: %w", namespace, desired.KubeflowEditorServiceAccount, err))
	}
	a := sa.GetAnnotations()
	return diagnose.Found(diagnose.ServiceAccount{RoleARN: a[desired.RoleARNAnnotation], Audience: a[diagnose.AudienceAnnotation]})
}

// serviceAccountOwners maps a service account the operator labelled to its
// object, and a profile's default-editor to the objects that manage the
// profile of its namespace, so a change of its annotation refreshes their
// chain summaries.
func (r *Reconciler) serviceAccountOwners(ctx context.Context, obj client.Object) []reconcile.Request {
	if reqs := ownerFromLabel(ctx, obj); len(reqs) > 0 || obj.GetName() != desired.KubeflowEditorServiceAccount {
		return reqs
	}
	all, err := r.cachedObjects(ctx)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing AwsKubeflowProfiles to map a default-editor event", "namespace", obj.GetNamespace())
		return nil
	}
	var reqs []reconcile.Request
	for _, cr := range all {
		if slices.ContainsFunc(cr.Spec.Profiles, func(p v1alpha1.ProfileSpec) bool { return p.Name == obj.GetNamespace() }) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: cr.Name}})
		}
	}
	return reqs
}
