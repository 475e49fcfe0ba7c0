package diagnose_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/awskubeflowprofiles/operator/internal/diagnose"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

const (
	issuer      = "https://oidc.eks.us-west-2.amazonaws.com/id/ABC"
	providerARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC"
	roleARN     = "arn:aws:iam::123456789012:role/kubeflow/prod/team-a-prod-role"
	subject     = "system:serviceaccount:team-a:default-editor"
)

// healthy is a whole chain for profile team-a and its pod.
func healthy() diagnose.Observation {
	annotated := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	pod := diagnose.Found(diagnose.Pod{Name: "nb-0", ServiceAccount: "default-editor", Created: annotated.Add(time.Hour),
		RoleARN: roleARN, TokenFile: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token", TokenAudience: policy.Audience})
	return diagnose.Observation{
		Profile:        "team-a",
		KubeflowObject: diagnose.Found(diagnose.Profile{HasPlugin: true, RoleARN: roleARN, AnnotateOnly: true}),
		ServiceAccount: diagnose.Found(diagnose.ServiceAccount{RoleARN: roleARN, Audience: policy.Audience, AnnotatedAt: annotated, AnnotatedBy: "profile-controller"}),
		Operator:       diagnose.Found(diagnose.Operator{Object: "prod", RoleARN: roleARN, Ready: true}),
		Webhooks:       diagnose.Found([]diagnose.Webhook{{Name: "pod-identity-webhook", Service: "kube-system/pod-identity-webhook", Reachable: true}}),
		Pod:            &pod,
		Token:          diagnose.Found(policy.Claims{Issuer: issuer, Subject: subject, Audience: []string{policy.Audience}}),
		OIDCProvider:   diagnose.Found(diagnose.OIDCProvider{ARN: providerARN, ClientIDs: []string{policy.Audience}}),
		Role: diagnose.Found(diagnose.Role{Trust: policy.WebIdentityTrust(providerARN, issuer, subject),
			Attached: []string{"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"}}),
	}
}

func TestAHealthyChainIsWhole(t *testing.T) {
	g := NewWithT(t)
	r := diagnose.Diagnose(healthy())
	g.Expect(r.Whole()).To(BeTrue(), "%+v", r.Checks)
	eks := healthy()
	eks.Webhooks.Value = []diagnose.Webhook{{Name: "iam-for-pods.amazonaws.com", URL: "https://127.0.0.1:23443/mutate"}}
	g.Expect(diagnose.Diagnose(eks).Whole()).To(BeTrue(), "EKS calls its webhook at a URL, with no service to look at")
	g.Expect(r.Checks).To(HaveLen(9), "every link, the pod's included")
	o := healthy()
	o.Pod = nil
	g.Expect(diagnose.Diagnose(o).Checks).To(HaveLen(8), "without a pod, no pod link")
}

// Each link broken once fails on its own line, with its own fix, and no
// link before it fails.
func TestEachBrokenLinkIsNamedWithItsFix(t *testing.T) {
	cases := map[string]struct {
		breakIt func(o *diagnose.Observation)
		link    string
		detail  string
		fix     string
	}{
		"no Profile": {
			breakIt: func(o *diagnose.Observation) { o.KubeflowObject = diagnose.Read[diagnose.Profile]{} },
			link:    diagnose.LinkProfile, detail: "there is no Kubeflow Profile team-a", fix: "spec.profiles",
		},
		"no plugin": {
			breakIt: func(o *diagnose.Observation) { o.KubeflowObject.Value = diagnose.Profile{} },
			link:    diagnose.LinkProfile, detail: "no AwsIamForServiceAccount plugin", fix: "spec.awsIamRole",
		},
		"the operator reports the profile not ready": {
			breakIt: func(o *diagnose.Observation) {
				o.Operator.Value.Ready, o.Operator.Value.Message = false, "managed policy x does not exist"
			},
			link: diagnose.LinkOperator, detail: "managed policy x does not exist", fix: "kubectl get awskubeflowprofiles prod",
		},
		"the annotation removed": {
			breakIt: func(o *diagnose.Observation) { o.ServiceAccount.Value.RoleARN = "" },
			link:    diagnose.LinkServiceAccount, detail: "has no eks.amazonaws.com/role-arn annotation", fix: "profile controller",
		},
		"the annotation names another role": {
			breakIt: func(o *diagnose.Observation) { o.ServiceAccount.Value.RoleARN = "arn:aws:iam::123456789012:role/other" },
			link:    diagnose.LinkServiceAccount, detail: "annotated with arn:aws:iam::123456789012:role/other", fix: "by hand",
		},
		"no webhook registered": {
			breakIt: func(o *diagnose.Observation) { o.Webhooks.Value = nil },
			link:    diagnose.LinkWebhook, detail: "no mutating webhook for pod identity", fix: "install the EKS pod identity webhook",
		},
		"the webhook's service has no endpoint": {
			breakIt: func(o *diagnose.Observation) { o.Webhooks.Value[0].Reachable = false },
			link:    diagnose.LinkWebhook, detail: "has no ready endpoint", fix: "kubectl get endpointslices -n kube-system",
		},
		"the pod predates the annotation": {
			breakIt: func(o *diagnose.Observation) {
				o.Pod.Value.RoleARN, o.Pod.Value.TokenFile, o.Pod.Value.TokenAudience = "", "", ""
				o.Pod.Value.Created = o.ServiceAccount.Value.AnnotatedAt.Add(-time.Minute)
			},
			link: diagnose.LinkPod, detail: "at or before profile-controller, who set default-editor's annotation, last wrote it", fix: "delete the pod",
		},
		"the pod not mutated, and when the annotation was written unknown": {
			breakIt: func(o *diagnose.Observation) {
				o.Pod.Value.RoleARN, o.Pod.Value.TokenFile, o.Pod.Value.TokenAudience = "", "", ""
				o.ServiceAccount.Value.AnnotatedAt, o.ServiceAccount.Value.AnnotatedBy = time.Time{}, ""
			},
			link: diagnose.LinkPod, detail: "when it was created at 2026-11-30T11:00:00Z; the API server keeps no record of when default-editor was annotated", fix: "delete the pod",
		},
		"the pod was not mutated, though created after the annotation": {
			breakIt: func(o *diagnose.Observation) {
				o.Pod.Value.RoleARN, o.Pod.Value.TokenFile, o.Pod.Value.TokenAudience = "", "", ""
			},
			link: diagnose.LinkPod, detail: "the webhook did not mutate it", fix: "delete the pod",
		},
		"a container of the pod not mutated": {
			breakIt: func(o *diagnose.Observation) { o.Pod.Value.Unmutated = []string{"sidecar"} },
			link:    diagnose.LinkPod, detail: "not in [sidecar]", fix: "eks.amazonaws.com/skip-containers",
		},
		"the pod runs as another service account": {
			breakIt: func(o *diagnose.Observation) { o.Pod.Value.ServiceAccount = "default" },
			link:    diagnose.LinkPod, detail: "runs as service account default", fix: "serviceAccountName: default-editor",
		},
		"the pod's token for another audience": {
			breakIt: func(o *diagnose.Observation) { o.Pod.Value.TokenAudience = "vault" },
			link:    diagnose.LinkPod, detail: "for audience vault, but default-editor's tokens are for sts.amazonaws.com", fix: "--token-audience",
		},
		"the OIDC provider lacks the audience the service account asks for": {
			breakIt: func(o *diagnose.Observation) {
				o.ServiceAccount.Value.Audience, o.Pod.Value.TokenAudience = "vault", "vault"
				o.Token.Value.Audience = []string{"vault"}
			},
			link: diagnose.LinkOIDCProvider, detail: "does not have client ID vault", fix: "--client-id vault",
		},
		"the token's subject is not default-editor's": {
			breakIt: func(o *diagnose.Observation) { o.Token.Value.Subject = "system:serviceaccount:team-a:default" },
			link:    diagnose.LinkToken, detail: "not system:serviceaccount:team-a:default-editor", fix: "the API server's own",
		},
		"no OIDC provider for the issuer": {
			breakIt: func(o *diagnose.Observation) { o.OIDCProvider = diagnose.Read[diagnose.OIDCProvider]{} },
			link:    diagnose.LinkOIDCProvider, detail: "no OIDC provider for the token's issuer " + issuer, fix: "OIDCProviderReady",
		},
		"the OIDC provider's client ID removed": {
			breakIt: func(o *diagnose.Observation) { o.OIDCProvider.Value.ClientIDs = []string{"other"} },
			link:    diagnose.LinkOIDCProvider, detail: "does not have client ID sts.amazonaws.com", fix: "add-client-id-to-open-id-connect-provider",
		},
		"no role": {
			breakIt: func(o *diagnose.Observation) { o.Role = diagnose.Read[diagnose.Role]{} },
			link:    diagnose.LinkTrust, detail: "IAM role " + roleARN + " does not exist", fix: "create the role",
		},
		"the trust narrowed to another namespace": {
			breakIt: func(o *diagnose.Observation) {
				o.Role.Value.Trust = policy.WebIdentityTrust(providerARN, issuer, "system:serviceaccount:team-b:default-editor")
			},
			link: diagnose.LinkTrust, detail: "wants [system:serviceaccount:team-b:default-editor], the request has [" + subject + "]", fix: "trust exactly " + subject,
		},
		"no policies": {
			breakIt: func(o *diagnose.Observation) { o.Role.Value.Attached = nil },
			link:    diagnose.LinkPolicies, detail: "has no policies", fix: "managedPolicyARNs",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			o := healthy()
			tc.breakIt(&o)
			r := diagnose.Diagnose(o)
			g.Expect(r.Whole()).To(BeFalse())
			g.Expect(r.Broken()).To(BeTrue())
			var failed []diagnose.Check
			for _, c := range r.Checks {
				if c.Status == diagnose.Fail {
					failed = append(failed, c)
				}
			}
			g.Expect(failed).To(HaveLen(1), "only the broken link fails: %+v", r.Checks)
			g.Expect(failed[0].Link).To(Equal(tc.link))
			g.Expect(failed[0].Detail).To(ContainSubstring(tc.detail))
			g.Expect(failed[0].Fix).To(ContainSubstring(tc.fix))
		})
	}
}

// What could not be read is "cannot check" with why, naming the
// permission, and what depends on a link that did not pass is not checked.
func TestWhatCannotBeReadIsSaid(t *testing.T) {
	g := NewWithT(t)
	o := healthy()
	o.OIDCProvider = diagnose.Failed[diagnose.OIDCProvider](errors.New("the credentials may not call iam:GetOpenIDConnectProvider"))
	r := diagnose.Diagnose(o)
	g.Expect(r.Whole()).To(BeFalse())
	g.Expect(r.Broken()).To(BeFalse(), "nothing is known to be broken")
	g.Expect(r.Checks).To(ContainElement(And(HaveField("Link", diagnose.LinkOIDCProvider), HaveField("Status", diagnose.CannotCheck),
		HaveField("Detail", ContainSubstring("iam:GetOpenIDConnectProvider")))))
	g.Expect(r.Checks).To(ContainElement(And(HaveField("Link", diagnose.LinkTrust), HaveField("Status", diagnose.CannotCheck),
		HaveField("Detail", ContainSubstring("until the IAM OIDC provider link passes")))))
}

// A trust that tests what STS takes from the call (the caller's address,
// the token's amr) cannot be judged from a token alone, whichever way the
// evaluation would go without those keys, unless another condition of the
// statement already refuses the token.
func TestATrustOnKeysOutsideTheTokenCannotBeChecked(t *testing.T) {
	host := policy.IssuerHost(issuer)
	cases := map[string]struct {
		trusted, extra string
		outcome        string // "" for a trust that fails
	}{
		"a key the evaluation would find absent and refuse": {
			trusted: subject, extra: `"StringLike":{"aws:SourceVpc":"vpc-1"}`, outcome: "refuse it: no statement allows the request",
		},
		"a key the evaluation would find absent and admit": {
			trusted: subject, extra: `"StringNotEquals":{"` + host + `:amr":"unauthenticated"}`, outcome: "admit " + subject,
		},
		"a subject that does not match decides, whatever the other key": {
			trusted: "system:serviceaccount:team-b:default-editor", extra: `"StringLike":{"aws:SourceVpc":"vpc-1"}`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			trust, err := policy.Parse(fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:sub":%q},%s}}]}`,
				providerARN, host, tc.trusted, tc.extra))
			g.Expect(err).NotTo(HaveOccurred())
			o := healthy()
			o.Role.Value.Trust = trust
			r := diagnose.Diagnose(o)
			if tc.outcome == "" {
				first, broken := r.FirstBroken()
				g.Expect(broken).To(BeTrue(), "%+v", r.Checks)
				g.Expect(first.Link).To(Equal(diagnose.LinkTrust))
				return
			}
			g.Expect(r.Broken()).To(BeFalse(), "%+v", r.Checks)
			g.Expect(r.Checks).To(ContainElement(And(HaveField("Link", diagnose.LinkTrust), HaveField("Status", diagnose.CannotCheck),
				HaveField("Detail", And(ContainSubstring("which STS takes from the call"), ContainSubstring(tc.outcome))),
				HaveField("Fix", ContainSubstring("aws sts get-caller-identity")))))
		})
	}
}

// The summary an operator writes needs no pod, token or webhook, and names
// the links of its own reading.
func TestSummarizeWithoutPodOrToken(t *testing.T) {
	operatorView := func() diagnose.Observation {
		o := healthy()
		o.Pod, o.Token, o.Webhooks, o.Operator = nil, diagnose.Read[policy.Claims]{}, diagnose.Read[[]diagnose.Webhook]{}, diagnose.Read[diagnose.Operator]{}
		return o
	}
	g := NewWithT(t)
	whole := diagnose.Summarize(operatorView(), issuer)
	g.Expect(whole.Whole()).To(BeTrue(), "%+v", whole.Checks)
	g.Expect(whole.Checks).To(HaveEach(HaveField("Link", BeElementOf(diagnose.LinkProfile, diagnose.LinkServiceAccount, diagnose.LinkOIDCProvider, diagnose.LinkTrust, diagnose.LinkPolicies))))
	g.Expect(whole.Checks).To(HaveLen(5))
	_, broken := whole.FirstBroken()
	g.Expect(broken).To(BeFalse())

	cases := map[string]struct {
		breakIt func(o *diagnose.Observation)
		link    string
	}{
		"the annotation removed":                {func(o *diagnose.Observation) { o.ServiceAccount.Value.RoleARN = "" }, diagnose.LinkServiceAccount},
		"the OIDC provider's client ID removed": {func(o *diagnose.Observation) { o.OIDCProvider.Value.ClientIDs = nil }, diagnose.LinkOIDCProvider},
		"the trust for another namespace": {func(o *diagnose.Observation) {
			o.Role.Value.Trust = policy.WebIdentityTrust(providerARN, issuer, "system:serviceaccount:team-b:default-editor")
		}, diagnose.LinkTrust},
		"the trust for another cluster's issuer": {func(o *diagnose.Observation) {
			o.Role.Value.Trust = policy.WebIdentityTrust(providerARN, issuer+"X", subject)
		}, diagnose.LinkTrust},
		"no policies": {func(o *diagnose.Observation) { o.Role.Value.Attached = nil }, diagnose.LinkPolicies},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			o := operatorView()
			tc.breakIt(&o)
			first, broken := diagnose.Summarize(o, issuer).FirstBroken()
			g.Expect(broken).To(BeTrue())
			g.Expect(first.Link).To(Equal(tc.link))
			g.Expect(first.Fix).NotTo(BeEmpty())
		})
	}
}
