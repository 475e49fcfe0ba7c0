// Package diagnose walks the chain that gives a Kubeflow profile's notebook
// pods the profile's AWS credentials, one link at a time. Diagnose is pure:
// it judges what a Reader read of the cluster and IAM: the Profile and its plugin, the
// default-editor service account and its annotation, the operator's status,
// the pod identity webhook, the pod's environment and token volume, a token
// for the service account, the OIDC provider, the role's trust (evaluated
// with the operator's own evaluator) and the role's policies. Each link is
// passed, failed with the one action that fixes it, or not checked, with why.
// The kubectl plugin kubectl-awskubeflowprofiles prints the report.
package diagnose

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// Status is the outcome of one link.
type Status string

const (
	// Pass: the link holds.
	Pass Status = "pass"
	// Fail: the link is broken; Fix says what to do.
	Fail Status = "fail"
	// CannotCheck: the link could not be read, or an earlier link it
	// depends on did not pass; Detail says why.
	CannotCheck Status = "cannot-check"
)

// The links of the chain, in order.
const (
	LinkProfile        = "Profile"
	LinkOperator       = "Operator status"
	LinkServiceAccount = "Service account"
	LinkWebhook        = "Pod identity webhook"
	LinkPod            = "Pod"
	LinkToken          = "Service account token"
	LinkOIDCProvider   = "IAM OIDC provider"
	LinkTrust          = "Role trust"
	LinkPolicies       = "Role policies"
)

// EditorServiceAccount is the service account of a profile's notebooks.
const EditorServiceAccount = desired.KubeflowEditorServiceAccount

// RoleARNAnnotation is the pod identity webhook's annotation.
const RoleARNAnnotation = desired.RoleARNAnnotation

// Check is one link's outcome.
type Check struct {
	Link   string `json:"link"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Report is the diagnosis of a profile, and of one of its pods when named.
type Report struct {
	Profile string  `json:"profile"`
	Pod     string  `json:"pod,omitempty"`
	Checks  []Check `json:"checks"`
}

// Whole reports whether every link passed.
func (r Report) Whole() bool {
	return !slices.ContainsFunc(r.Checks, func(c Check) bool { return c.Status != Pass })
}

// Broken reports whether a link failed.
func (r Report) Broken() bool {
	return slices.ContainsFunc(r.Checks, func(c Check) bool { return c.Status == Fail })
}

// Read is what reading one thing gave: it, that it is not there, or why it
// could not be read.
type Read[T any] struct {
	Value T
	Found bool
	// Err is why it could not be read, such as a missing permission, named
	// in it.
	Err error
}

// Found is a Read of something that is there.
func Found[T any](v T) Read[T] { return Read[T]{Value: v, Found: true} }

// Failed is a Read that could not be made.
func Failed[T any](err error) Read[T] { return Read[T]{Err: err} }

// Profile is what the diagnosis needs of a Kubeflow Profile.
type Profile struct {
	// HasPlugin is set when it has an AwsIamForServiceAccount plugin.
	HasPlugin    bool
	RoleARN      string
	AnnotateOnly bool
}

// AudienceAnnotation names the audience the webhook requests tokens for,
// sts.amazonaws.com when the service account does not set it.
const AudienceAnnotation = "eks.amazonaws.com/audience"

// ServiceAccount is what it needs of default-editor.
type ServiceAccount struct {
	RoleARN string // its annotation, "" without one
	// Audience is its audience annotation; see Observation.Audience.
	Audience string
	// AnnotatedAt is when the field manager that set the annotation last
	// wrote, when known; AnnotatedBy is that manager.
	AnnotatedAt time.Time
	AnnotatedBy string
}

// Operator is what an AwsKubeflowProfiles reports of the profile.
type Operator struct {
	Object  string
	RoleARN string
	Ready   bool
	Message string
}

// Webhook is a registered mutating webhook for pod identity.
type Webhook struct {
	Name    string
	Service string // namespace/name, or "" when it is called at URL
	// URL is where it is called when not through a service, as EKS calls
	// the one its control plane runs.
	URL string
	// Reachable is set when its service has a ready endpoint.
	Reachable bool
}

// Pod is what it needs of a pod.
type Pod struct {
	Name           string
	ServiceAccount string
	Created        time.Time
	// RoleARN and TokenFile are the webhook's AWS_ROLE_ARN and
	// AWS_WEB_IDENTITY_TOKEN_FILE, as the containers that have them set
	// them.
	RoleARN   string
	TokenFile string
	// TokenAudience is the audience of the projected token mounted at
	// TokenFile, "" when none is.
	TokenAudience string
	// Unmutated are the containers and init containers without
	// AWS_ROLE_ARN that the pod does not ask the webhook to skip.
	Unmutated []string
}

// Role is what it needs of the IAM role.
type Role struct {
	Trust    policy.Document
	Attached []string
	Inline   []string
	// PoliciesErr is why its policies could not be listed.
	PoliciesErr error
}

// OIDCProvider is the IAM OIDC provider of the token's issuer.
type OIDCProvider struct {
	ARN       string
	ClientIDs []string
}

// Observation is everything read for a diagnosis. A pod is optional: without
// one, the links of the pod are not part of the report.
type Observation struct {
	Profile        string
	KubeflowObject Read[Profile]
	ServiceAccount Read[ServiceAccount]
	// Operator is not Found when no AwsKubeflowProfiles lists the profile.
	Operator Read[Operator]
	Webhooks Read[[]Webhook]
	// Pod is nil when no pod was named.
	Pod          *Read[Pod]
	Token        Read[policy.Claims]
	OIDCProvider Read[OIDCProvider]
	Role         Read[Role]
}

// diagnosis builds a report link by link; a link that depends on a broken
// one is not checked.
type diagnosis struct {
	o      Observation
	report Report
	// claims are the token's that the trust is evaluated for.
	claims policy.Claims
}

func (d *diagnosis) add(link string, status Status, fix, format string, args ...any) {
	d.report.Checks = append(d.report.Checks, Check{Link: link, Status: status, Detail: fmt.Sprintf(format, args...), Fix: fix})
}

func (d *diagnosis) cannot(link string, err error) {
	d.add(link, CannotCheck, "", "%v", err)
}

func (d *diagnosis) blocked(link, on string) {
	d.add(link, CannotCheck, "", "not checked until the %s link passes", on)
}

// Diagnose walks the chain.
func Diagnose(o Observation) Report {
	d := &diagnosis{o: o, report: Report{Profile: o.Profile}}
	if o.Pod != nil {
		d.report.Pod = o.Pod.Value.Name
	}
	role := d.profile()
	d.operator(role)
	saOK := d.serviceAccount(role)
	d.webhook()
	if o.Pod != nil {
		d.pod(saOK)
	}
	tokenOK := d.token()
	d.claims = o.Token.Value
	providerOK := d.oidcProvider(tokenOK)
	d.trust(role, tokenOK, providerOK)
	d.policies(role)
	return d.report
}

// Summarize is the diagnosis of a profile without a pod or a token, from
// what an operator reads anyway: the Profile, default-editor, the OIDC
// provider, the role's trust (evaluated for the token the API server issues
// default-editor with issuer) and its policies. The webhook, a pod and a
// real token are for Diagnose.
func Summarize(o Observation, issuer string) Report {
	d := &diagnosis{o: o, report: Report{Profile: o.Profile}}
	d.claims = policy.Claims{Issuer: issuer, Subject: policy.ServiceAccountSubject(o.Profile, EditorServiceAccount), Audience: []string{o.Audience()}}
	role := d.profile()
	d.serviceAccount(role)
	providerOK := d.oidcProvider(true)
	d.trust(role, true, providerOK)
	d.policies(role)
	return d.report
}

// FirstBroken is the first link that failed, if one did.
func (r Report) FirstBroken() (Check, bool) {
	i := slices.IndexFunc(r.Checks, func(c Check) bool { return c.Status == Fail })
	if i < 0 {
		return Check{}, false
	}
	return r.Checks[i], true
}

// profile checks the Profile and returns the role its plugin names, or "".
func (d *diagnosis) profile() string {
	p := d.o.KubeflowObject
	switch {
	case p.Err != nil:
		d.cannot(LinkProfile, p.Err)
		return ""
	case !p.Found:
		d.add(LinkProfile, Fail, fmt.Sprintf("create the profile: add it to spec.profiles of your AwsKubeflowProfiles, or create a Kubeflow Profile named %s", d.o.Profile),
			"there is no Kubeflow Profile %s", d.o.Profile)
		return ""
	case !p.Value.HasPlugin || p.Value.RoleARN == "":
		d.add(LinkProfile, Fail, "add the profile to spec.profiles of your AwsKubeflowProfiles, which sets the plugin, or add an AwsIamForServiceAccount plugin with spec.awsIamRole to the Profile",
			"Kubeflow Profile %s has no AwsIamForServiceAccount plugin naming a role", d.o.Profile)
		return ""
	}
	d.add(LinkProfile, Pass, "", "Kubeflow Profile %s names IAM role %s (annotateOnly %t)", d.o.Profile, p.Value.RoleARN, p.Value.AnnotateOnly)
	return p.Value.RoleARN
}

func (d *diagnosis) operator(role string) {
	op := d.o.Operator
	switch {
	case op.Err != nil:
		d.cannot(LinkOperator, op.Err)
	case !op.Found:
		d.add(LinkOperator, Pass, "", "no AwsKubeflowProfiles manages profile %s; its plugin was set by hand", d.o.Profile)
	case !op.Value.Ready:
		d.add(LinkOperator, Fail, "fix what the message says, then watch kubectl get awskubeflowprofiles "+op.Value.Object,
			"AwsKubeflowProfiles %s reports profile %s not ready: %s", op.Value.Object, d.o.Profile, op.Value.Message)
	case role != "" && op.Value.RoleARN != role:
		d.add(LinkOperator, Fail, "wait for the operator to write the Profile, or check that nothing else edits its plugin",
			"AwsKubeflowProfiles %s lists role %s, but the Profile names %s", op.Value.Object, op.Value.RoleARN, role)
	default:
		d.add(LinkOperator, Pass, "", "AwsKubeflowProfiles %s reports profile %s ready with role %s", op.Value.Object, d.o.Profile, op.Value.RoleARN)
	}
}

// serviceAccount reports whether default-editor carries the profile's role.
func (d *diagnosis) serviceAccount(role string) bool {
	sa := d.o.ServiceAccount
	name := d.o.Profile + "/" + EditorServiceAccount
	switch {
	case sa.Err != nil:
		d.cannot(LinkServiceAccount, sa.Err)
		return false
	case !sa.Found:
		d.add(LinkServiceAccount, Fail, "Kubeflow's profile controller creates it: check that it runs (kubectl -n kubeflow get deploy profiles-deployment) and its logs",
			"service account %s does not exist", name)
		return false
	case sa.Value.RoleARN == "":
		d.add(LinkServiceAccount, Fail, "Kubeflow's profile controller sets it from the Profile's plugin: check its logs (kubectl -n kubeflow logs deploy/profiles-deployment)",
			"service account %s has no %s annotation", name, RoleARNAnnotation)
		return false
	case role != "" && sa.Value.RoleARN != role:
		d.add(LinkServiceAccount, Fail, "Kubeflow's profile controller sets it from the Profile's plugin: check its logs, or remove the annotation someone set by hand",
			"service account %s is annotated with %s, but the Profile names %s", name, sa.Value.RoleARN, role)
		return false
	}
	d.add(LinkServiceAccount, Pass, "", "service account %s is annotated with %s", name, sa.Value.RoleARN)
	return true
}

func (d *diagnosis) webhook() {
	w := d.o.Webhooks
	switch {
	case w.Err != nil:
		d.cannot(LinkWebhook, w.Err)
		return
	case len(w.Value) == 0:
		d.add(LinkWebhook, Fail, "install the EKS pod identity webhook (EKS runs it for you; elsewhere see github.com/aws/amazon-eks-pod-identity-webhook)",
			"no mutating webhook for pod identity is registered, so no pod gets AWS_ROLE_ARN or a token")
		return
	}
	for _, hook := range w.Value {
		switch {
		case hook.Service == "":
			d.add(LinkWebhook, Pass, "", "mutating webhook %s is registered, called at %s (on EKS, by the control plane)", hook.Name, hook.URL)
			return
		case hook.Reachable:
			d.add(LinkWebhook, Pass, "", "mutating webhook %s is registered and its service %s has a ready endpoint", hook.Name, hook.Service)
			return
		}
	}
	d.add(LinkWebhook, Fail, fmt.Sprintf("start the webhook's pods behind %s (kubectl get endpointslices -n %s)", w.Value[0].Service, strings.Split(w.Value[0].Service, "/")[0]),
		"mutating webhook %s is registered, but its service %s has no ready endpoint", w.Value[0].Name, w.Value[0].Service)
}

func (d *diagnosis) pod(saOK bool) {
	p := *d.o.Pod
	switch {
	case p.Err != nil:
		d.cannot(LinkPod, p.Err)
		return
	case !p.Found:
		d.add(LinkPod, Fail, "name a pod of the profile's namespace: kubectl -n "+d.o.Profile+" get pods", "there is no pod %s in namespace %s", p.Value.Name, d.o.Profile)
		return
	}
	pod := p.Value
	sa := d.o.ServiceAccount.Value
	switch {
	case pod.ServiceAccount != EditorServiceAccount:
		d.add(LinkPod, Fail, "run it as serviceAccountName: "+EditorServiceAccount+", the one the profile's role trusts",
			"pod %s runs as service account %s, not %s", pod.Name, pod.ServiceAccount, EditorServiceAccount)
	case pod.RoleARN == "" && saOK && !sa.AnnotatedAt.IsZero() && !pod.Created.After(sa.AnnotatedAt):
		d.add(LinkPod, Fail, "delete the pod so it is created again (stop and start the notebook): the webhook sets AWS credentials only on pods created after the annotation",
			"pod %s has no AWS_ROLE_ARN and was created at %s, at or before %s, who set %s's annotation, last wrote it (%s)",
			pod.Name, pod.Created.UTC().Format(time.RFC3339), sa.AnnotatedBy, EditorServiceAccount, sa.AnnotatedAt.UTC().Format(time.RFC3339))
	case pod.RoleARN == "" && saOK && sa.AnnotatedAt.IsZero():
		// An API server that keeps no managed fields for the service account
		// (or a client that reset them) leaves the order unknown.
		d.add(LinkPod, Fail, "delete the pod so it is created again (stop and start the notebook): the webhook sets AWS credentials only on pods created after the annotation",
			"pod %s has no AWS_ROLE_ARN: the webhook did not mutate it when it was created at %s; the API server keeps no record of when %s was annotated, and if that was later, this is why",
			pod.Name, pod.Created.UTC().Format(time.RFC3339), EditorServiceAccount)
	case pod.RoleARN == "":
		d.add(LinkPod, Fail, "delete the pod so it is created again once the service account is annotated and the webhook reached",
			"pod %s has no AWS_ROLE_ARN: the webhook did not mutate it", pod.Name)
	case saOK && pod.RoleARN != sa.RoleARN:
		d.add(LinkPod, Fail, "delete the pod so it is created again with the current annotation",
			"pod %s has AWS_ROLE_ARN %s, but its service account now names %s", pod.Name, pod.RoleARN, sa.RoleARN)
	case len(pod.Unmutated) > 0:
		d.add(LinkPod, Fail, "delete the pod so the webhook mutates every container, or name those that need no AWS credentials in the pod's eks.amazonaws.com/skip-containers annotation",
			"pod %s has AWS_ROLE_ARN in some containers, not in %v", pod.Name, pod.Unmutated)
	case pod.TokenFile == "" || pod.TokenAudience == "":
		d.add(LinkPod, Fail, "delete the pod so the webhook mounts the token again",
			"pod %s has AWS_ROLE_ARN but no projected service account token at its AWS_WEB_IDENTITY_TOKEN_FILE %q", pod.Name, pod.TokenFile)
	case saOK && pod.TokenAudience != d.o.Audience():
		d.add(LinkPod, Fail, "delete the pod so it is created again with a token for "+d.o.Audience()+"; if it comes back the same, set the webhook's --token-audience or the service account's "+AudienceAnnotation,
			"pod %s's token is for audience %s, but %s's tokens are for %s", pod.Name, pod.TokenAudience, EditorServiceAccount, d.o.Audience())
	default:
		d.add(LinkPod, Pass, "", "pod %s has AWS_ROLE_ARN %s and a token for %s at %s", pod.Name, pod.RoleARN, pod.TokenAudience, pod.TokenFile)
	}
}

// token reports whether the API server issues default-editor a token that
// names it, for the audience its pods get.
func (d *diagnosis) token() bool {
	t := d.o.Token
	want := policy.ServiceAccountSubject(d.o.Profile, EditorServiceAccount)
	switch {
	case t.Err != nil:
		d.cannot(LinkToken, t.Err)
		return false
	case t.Value.Subject != want:
		d.add(LinkToken, Fail, "check what issues the cluster's service account tokens: IRSA needs the API server's own",
			"the token's subject is %s, not %s", t.Value.Subject, want)
		return false
	}
	d.add(LinkToken, Pass, "", "a token of %s is issued by %s for %v", want, t.Value.Issuer, t.Value.Audience)
	return true
}

// Audience is what default-editor's tokens are for: its audience
// annotation, or sts.amazonaws.com.
func (o Observation) Audience() string {
	if a := o.ServiceAccount.Value.Audience; a != "" {
		return a
	}
	return policy.Audience
}

func (d *diagnosis) oidcProvider(tokenOK bool) bool {
	p := d.o.OIDCProvider
	switch {
	case !tokenOK:
		d.blocked(LinkOIDCProvider, LinkToken)
		return false
	case p.Err != nil:
		d.cannot(LinkOIDCProvider, p.Err)
		return false
	case !p.Found:
		d.add(LinkOIDCProvider, Fail, "create the IAM OIDC provider for "+d.claims.Issuer+" with client ID "+d.o.Audience()+" (the operator does: see its OIDCProviderReady condition)",
			"IAM has no OIDC provider for the token's issuer %s", d.claims.Issuer)
		return false
	case !slices.Contains(p.Value.ClientIDs, d.o.Audience()):
		d.add(LinkOIDCProvider, Fail, fmt.Sprintf("aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn %s --client-id %s", p.Value.ARN, d.o.Audience()),
			"IAM OIDC provider %s does not have client ID %s (it has %v), so STS refuses the token", p.Value.ARN, d.o.Audience(), p.Value.ClientIDs)
		return false
	}
	d.add(LinkOIDCProvider, Pass, "", "IAM OIDC provider %s has client ID %s", p.Value.ARN, d.o.Audience())
	return true
}

func (d *diagnosis) trust(role string, tokenOK, providerOK bool) {
	r := d.o.Role
	switch {
	case role == "":
		d.blocked(LinkTrust, LinkProfile)
		return
	case r.Err != nil:
		d.cannot(LinkTrust, r.Err)
		return
	case !r.Found:
		d.add(LinkTrust, Fail, "create the role, or correct the Profile's plugin (an AwsKubeflowProfiles recreates the roles it manages)",
			"IAM role %s does not exist", role)
		return
	case !tokenOK:
		d.blocked(LinkTrust, LinkToken)
		return
	case !providerOK:
		d.blocked(LinkTrust, LinkOIDCProvider)
		return
	}
	claims := d.claims
	req := policy.WebIdentityRequest(d.o.OIDCProvider.Value.ARN, claims.Issuer, claims.Subject, claims.Audience)
	decision, err := policy.Evaluate(r.Value.Trust, req)
	unknown := policy.UnknownConditionKeys(r.Value.Trust, req)
	switch {
	case err != nil:
		d.add(LinkTrust, CannotCheck, "", "the trust of role %s uses what this check cannot evaluate: %v", role, err)
	case len(unknown) > 0:
		// The outcome turns on what STS takes from the call or from claims
		// of the token other than iss, sub and aud, which this check does
		// not have, so neither outcome is known.
		outcome := "admit " + claims.Subject
		if !decision.Allowed {
			outcome = "refuse it: " + decision.Reason
		}
		d.add(LinkTrust, CannotCheck, "confirm from a pod of the profile with `aws sts get-caller-identity`; if the condition on "+strings.Join(unknown, ", ")+" is not meant, remove it from the role's trust",
			"the trust of role %s also tests %s, which STS takes from the call or from token claims this check does not read; were they absent it would %s",
			role, strings.Join(unknown, ", "), outcome)
	case !decision.Allowed:
		d.add(LinkTrust, Fail, "make the role trust exactly "+claims.Subject+" through "+d.o.OIDCProvider.Value.ARN+": manage the profile with spec.profiles[] of an AwsKubeflowProfiles, which writes that trust",
			"the trust of role %s does not admit %s: %s", role, claims.Subject, decision.Reason)
	default:
		d.add(LinkTrust, Pass, "", "the trust of role %s admits %s through %s (%s)", role, claims.Subject, d.o.OIDCProvider.Value.ARN, decision.Reason)
	}
}

func (d *diagnosis) policies(role string) {
	r := d.o.Role
	switch {
	case role == "" || !r.Found:
		d.blocked(LinkPolicies, LinkProfile+" or its role")
	case r.Value.PoliciesErr != nil:
		d.cannot(LinkPolicies, r.Value.PoliciesErr)
	case len(r.Value.Attached)+len(r.Value.Inline) == 0:
		d.add(LinkPolicies, Fail, "give the profile policies: spec.profiles[].managedPolicyARNs or inlinePolicies, or spec.profileDefaults",
			"role %s has no policies: its credentials can do nothing in AWS", role)
	default:
		d.add(LinkPolicies, Pass, "", "role %s has managed policies %v and inline policies %v", role, r.Value.Attached, r.Value.Inline)
	}
}
