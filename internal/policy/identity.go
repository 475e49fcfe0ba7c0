package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Identity is the one web identity a role is meant for: the service account
// subject of one cluster, presented through that cluster's IAM OIDC provider
// with a token for the sts.amazonaws.com audience.
type Identity struct {
	ProviderARN string
	Issuer      string
	Subject     string
}

// Trust is the trust policy that admits exactly the identity, in the shape
// Kubeflow's plugin converges to.
func (id Identity) Trust() Document {
	return WebIdentityTrust(id.ProviderARN, id.Issuer, id.Subject)
}

// NeutralisedSid names the statement that closes a role whose profile is
// gone.
const NeutralisedSid = "ProfileGoneAdmitsNoOne"

// Neutralised is a trust policy that admits no one: an explicit Deny of
// every web identity of the cluster's provider ahead of the identity's own
// Allow. It is what a retained role gets when its Profile goes, so that
// whoever next gets the namespace's name does not inherit the role. The
// Allow stays so that the document is an ordinary trust IAM accepts, and so
// that Kubeflow's plugin, which edits the statement naming the subject,
// finds the subject present and writes nothing.
func (id Identity) Neutralised() Document {
	allow := id.Trust()
	return Document{
		Version: Version2012,
		Statement: append([]Statement{{
			Sid:       NeutralisedSid,
			Effect:    Deny,
			Principal: Principal{"Federated": Values{id.ProviderARN}},
			Action:    Values{ActionAssumeRoleWithWebIdentity},
		}}, allow.Statement...),
	}
}

// AdmitsNoOne reports whether trust refuses the identity itself and every
// probe of OpenTo.
func (id Identity) AdmitsNoOne(trust Document) bool {
	if _, open := id.OpenTo(trust); open {
		return false
	}
	_, own := admits(trust, WebIdentityRequest(id.ProviderARN, id.Issuer, id.Subject, []string{Audience}), id.ProviderARN, id.Subject)
	return !own
}

// Opening names how a trust admits more than its identity.
type Opening string

// The openings, from widest to narrowest.
const (
	// AnySubject: any web identity of the provider with the audience, as a
	// trust with no sub condition (what Kubeflow's revoke leaves) or a
	// negated one admits.
	AnySubject Opening = "AnySubject"
	// WildcardSubject: a sub pattern (StringLike * or ?) that matches other
	// namespaces or service accounts.
	WildcardSubject Opening = "WildcardSubject"
	// ListedSubject: another subject named outright, such as a second
	// namespace's default-editor.
	ListedSubject Opening = "ListedSubject"
	// OtherProvider: a web identity of another OIDC provider, that is of
	// another cluster.
	OtherProvider Opening = "OtherProvider"
	// OtherPrincipal: an AWS, service or other principal that is no web
	// identity.
	OtherPrincipal Opening = "OtherPrincipal"
	// Unevaluable: a condition the evaluator cannot decide, so the trust
	// cannot be proven closed.
	Unevaluable Opening = "Unevaluable"
)

// Foreign is a principal that a trust policy admits although it is not the
// identity the role is meant for.
type Foreign struct {
	// Principal is the federated provider or AWS principal of the probe.
	Principal string
	// Subject is the sub claim of the probe; empty for an AWS principal.
	Subject string
	// Reason is the evaluator's explanation.
	Reason string
	// Opening is how the trust lets it in.
	Opening Opening
}

// String names the admitted principal for a status message.
func (f Foreign) String() string {
	if f.Subject == "" {
		return fmt.Sprintf("%s (%s)", f.Principal, f.Reason)
	}
	return fmt.Sprintf("%s through %s (%s)", f.Subject, f.Principal, f.Reason)
}

// probeName is the namespace and service-account name of the probes: a
// name no Kubeflow profile has, so only a trust that admits more than it
// lists can admit it.
const probeName = "kubeflow-aws-trust-probe"

// OpenTo reports a principal other than the identity that trust admits, and
// false when it admits no one else. It does not match shapes: it asks the
// policy evaluator about probes that a closed trust must refuse, namely the
// same service-account name in another namespace, another service account
// of the same namespace, a subject that is no service account, every
// subject the trust names (with wildcards filled in, so a StringLike
// pattern is tried as the values it matches), through this cluster's
// provider and every other federated provider the trust names (the own
// subject included), and any AWS principal or other principal the trust
// names. A trust the evaluator cannot decide counts as open: it cannot be
// proven closed.
func (id Identity) OpenTo(trust Document) (Foreign, bool) {
	namespace, name := splitSubject(id.Subject)
	subjects := []string{
		ServiceAccountSubject(probeName, name),
		ServiceAccountSubject(namespace, probeName),
		probeName,
	}
	// A listed subject that came from a pattern is a wildcard's opening.
	fromPattern := map[string]bool{}
	providers := []string{id.ProviderARN}
	others := []Request{{Action: "sts:AssumeRole", PrincipalType: "AWS", PrincipalID: "arn:aws:iam::000000000000:root"}}
	for _, s := range trust.Statement {
		for typ, values := range s.Principal {
			for _, p := range values {
				switch {
				case typ == "Federated" && !contains(providers, p):
					providers = append(providers, p)
				case typ != "Federated" && p != "*":
					others = append(others, Request{Action: "sts:AssumeRole", PrincipalType: typ, PrincipalID: p})
				}
			}
		}
		for _, keys := range s.Condition {
			for k, values := range keys {
				if !strings.HasSuffix(strings.ToLower(k), ":sub") {
					continue
				}
				for _, v := range values {
					for _, filled := range []string{fill(v, ""), fill(v, "x")} {
						if !contains(subjects, filled) {
							subjects = append(subjects, filled)
							fromPattern[filled] = filled != v
						}
					}
				}
			}
		}
	}
	for _, provider := range providers {
		issuer := id.Issuer
		if provider != id.ProviderARN {
			issuer = providerHost(provider)
		}
		for _, sub := range append(slices.Clone(subjects), id.Subject) {
			if provider == id.ProviderARN && sub == id.Subject {
				continue
			}
			f, open := admits(trust, WebIdentityRequest(provider, issuer, sub, []string{Audience}), provider, sub)
			if !open {
				continue
			}
			switch {
			case f.Opening == Unevaluable:
			case provider != id.ProviderARN:
				f.Opening = OtherProvider
			case id.admitsAnySubject(trust):
				f.Opening = AnySubject
			case slices.Contains(subjects[:3], sub) || fromPattern[sub]:
				f.Opening = WildcardSubject
			default:
				f.Opening = ListedSubject
			}
			return f, true
		}
	}
	for _, req := range others {
		if f, open := admits(trust, req, req.PrincipalType+" "+req.PrincipalID, ""); open {
			if f.Opening == "" {
				f.Opening = OtherPrincipal
			}
			return f, true
		}
	}
	return Foreign{}, false
}

// admitsAnySubject reports whether trust admits, through the identity's own
// provider, a subject that is no service account at all: only a trust that
// does not constrain the subject does.
func (id Identity) admitsAnySubject(trust Document) bool {
	_, open := admits(trust, WebIdentityRequest(id.ProviderARN, id.Issuer, probeName, []string{Audience}), id.ProviderARN, probeName)
	return open
}

func admits(trust Document, req Request, principal, subject string) (Foreign, bool) {
	d, err := Evaluate(trust, req)
	if err != nil {
		return Foreign{Principal: principal, Subject: subject, Reason: "the trust cannot be evaluated: " + err.Error(), Opening: Unevaluable}, true
	}
	if d.Allowed {
		return Foreign{Principal: principal, Subject: subject, Reason: d.Reason}, true
	}
	return Foreign{}, false
}

// splitSubject returns the namespace and name of a service-account subject.
func splitSubject(subject string) (namespace, name string) {
	rest, ok := strings.CutPrefix(subject, "system:serviceaccount:")
	if !ok {
		return probeName, probeName
	}
	namespace, name, _ = strings.Cut(rest, ":")
	return namespace, name
}

// fill replaces IAM wildcards with filler, turning a pattern into one of
// the values it matches.
func fill(pattern, filler string) string {
	return strings.NewReplacer("*", filler, "?", "x").Replace(pattern)
}

// providerHost is the issuer host of an IAM OIDC provider ARN: the part after
// "oidc-provider/".
func providerHost(arn string) string {
	_, host, found := strings.Cut(arn, ":oidc-provider/")
	if !found {
		return arn
	}
	return host
}
