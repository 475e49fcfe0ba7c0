package controller

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
// OIDC provider's client IDs as last read, and default-editor as the pass
// listed it from the cache. It makes no IAM call.
func (r *Reconciler) summarizeChain(s *scope, p desired.Profile, profile *unstructured.Unstructured, st *v1alpha1.ProfileStatus) {
	roleARN, annotateOnly, found := desired.ProfilePlugin(profile)
	o := diagnose.Observation{
		Profile:        p.Name,
		KubeflowObject: diagnose.Found(diagnose.Profile{HasPlugin: found, RoleARN: roleARN, AnnotateOnly: annotateOnly}),
		ServiceAccount: s.editors.of(p.Name),
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

// chainsWhole counts the summarised profiles whose chain is whole, as
// "whole/summarised" (a profile whose chain could not be checked counts in
// neither), or "" when none was summarised.
func chainsWhole(entries []v1alpha1.ProfileStatus) string {
	whole, summarised := 0, 0
	for _, p := range entries {
		switch p.Chain {
		case v1alpha1.ChainWhole:
			whole++
			summarised++
		case v1alpha1.ChainBroken:
			summarised++
		}
	}
	if summarised == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", whole, summarised)
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
	// The caller cuts the whole note to size.
	return fmt.Sprintf("%d %s (%s)", len(items), noun, joinSome(items, math.MaxInt))
}

// editors are the profiles' default-editor service accounts, by namespace,
// as the cache holds them; err is why they could not be listed.
type editors struct {
	byNamespace map[string]diagnose.ServiceAccount
	err         error
}

// listEditors reads every default-editor from the cache at once: one List a
// pass, where a Get a profile would resolve the kind's REST mapping each
// time (a third of a 1000-profile summary's allocations, measured).
func (r *Reconciler) listEditors(ctx context.Context) editors {
	list := &corev1.ServiceAccountList{}
	if err := r.Client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return editors{err: fmt.Errorf("listing the default-editor service accounts: %w", err)}
	}
	out := editors{byNamespace: make(map[string]diagnose.ServiceAccount, len(list.Items))}
	for i := range list.Items {
		sa := &list.Items[i]
		if sa.Name != desired.KubeflowEditorServiceAccount {
			continue // the labelled ones of the profile controller's namespace
		}
		out.byNamespace[sa.Namespace] = diagnose.ServiceAccountOf(sa)
	}
	return out
}

// of is the Read of a profile's default-editor.
func (e editors) of(namespace string) diagnose.Read[diagnose.ServiceAccount] {
	if e.err != nil {
		return diagnose.Failed[diagnose.ServiceAccount](e.err)
	}
	if sa, ok := e.byNamespace[namespace]; ok {
		return diagnose.Found(sa)
	}
	return diagnose.Read[diagnose.ServiceAccount]{}
}

// serviceAccountOwners maps a service account the operator labelled to its
// object, and a profile's default-editor to the objects that manage the
// profile of its namespace, so a change of its annotation refreshes their
// chain summaries.
func (r *Reconciler) serviceAccountOwners(ctx context.Context, obj client.Object) []reconcile.Request {
	if reqs := ownerFromLabel(ctx, obj); len(reqs) > 0 || obj.GetName() != desired.KubeflowEditorServiceAccount {
		return reqs
	}
	return r.objectsNaming(ctx, obj.GetNamespace(), "a default-editor service account")
}
