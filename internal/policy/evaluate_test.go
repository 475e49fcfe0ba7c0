package policy_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/awskubeflowprofiles/operator/internal/policy"
)

const (
	issuer      = "https://oidc.eks.us-west-2.amazonaws.com/id/ABC"
	providerARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC"
)

func TestEvaluateProfileTrust(t *testing.T) {
	trust := policy.WebIdentityTrust(providerARN, issuer, policy.ServiceAccountSubject("team-a", "default-editor"))
	cases := map[string]struct {
		req   policy.Request
		allow bool
	}{
		"the profile's default-editor with the STS audience": {
			req: policy.WebIdentityRequest(providerARN, issuer, "system:serviceaccount:team-a:default-editor", []string{"sts.amazonaws.com"}), allow: true,
		},
		"default-editor of another profile": {
			req: policy.WebIdentityRequest(providerARN, issuer, "system:serviceaccount:team-b:default-editor", []string{"sts.amazonaws.com"}),
		},
		"another service account of the profile": {
			req: policy.WebIdentityRequest(providerARN, issuer, "system:serviceaccount:team-a:default-viewer", []string{"sts.amazonaws.com"}),
		},
		"a token for another audience": {
			req: policy.WebIdentityRequest(providerARN, issuer, "system:serviceaccount:team-a:default-editor", []string{"https://kubernetes.default.svc"}),
		},
		"a token of another cluster": {
			req: policy.WebIdentityRequest(strings.Replace(providerARN, "ABC", "XYZ", 1), strings.Replace(issuer, "ABC", "XYZ", 1),
				"system:serviceaccount:team-a:default-editor", []string{"sts.amazonaws.com"}),
		},
		"another action": {
			req: func() policy.Request {
				r := policy.WebIdentityRequest(providerARN, issuer, "system:serviceaccount:team-a:default-editor", []string{"sts:amazonaws.com"})
				r.Action = "sts:AssumeRole"
				return r
			}(),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			d, err := policy.Evaluate(trust, tc.req)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(d.Allowed).To(Equal(tc.allow), d.Reason)
		})
	}
}

func TestEvaluateOperators(t *testing.T) {
	sub := "system:serviceaccount:team-a:default-editor"
	req := policy.WebIdentityRequest(providerARN, issuer, sub, []string{"sts.amazonaws.com"})
	doc := func(conditions string) policy.Document {
		d, err := policy.Parse(fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithWebIdentity","Condition":%s}]}`,
			providerARN, conditions))
		if err != nil {
			panic(err)
		}
		return d
	}
	k := "oidc.eks.us-west-2.amazonaws.com/id/ABC"
	cases := map[string]struct {
		doc     policy.Document
		allow   bool
		wantErr string
	}{
		"aud only admits every service account": {doc: doc(`{"StringEquals":{"` + k + `:aud":"sts.amazonaws.com"}}`), allow: true},
		"StringLike on the namespace":           {doc: doc(`{"StringLike":{"` + k + `:sub":"system:serviceaccount:team-a:*"}}`), allow: true},
		"StringLike with ? wildcard":            {doc: doc(`{"StringLike":{"` + k + `:sub":"system:serviceaccount:team-?:default-editor"}}`), allow: true},
		"StringLike that does not match":        {doc: doc(`{"StringLike":{"` + k + `:sub":"system:serviceaccount:team-b:*"}}`)},
		"StringNotEquals excluding the subject": {doc: doc(`{"StringNotEquals":{"` + k + `:sub":"` + sub + `"}}`)},
		"StringNotEquals on a missing key":      {doc: doc(`{"StringNotEquals":{"` + k + `:amr":"x"}}`), allow: true},
		"StringEquals on a missing key":         {doc: doc(`{"StringEquals":{"` + k + `:amr":"x"}}`)},
		"StringEqualsIfExists on a missing key": {doc: doc(`{"StringEqualsIfExists":{"` + k + `:amr":"x"}}`), allow: true},
		"StringEqualsIgnoreCase":                {doc: doc(`{"StringEqualsIgnoreCase":{"` + k + `:sub":"SYSTEM:serviceaccount:TEAM-A:default-editor"}}`), allow: true},
		"condition key in another case":         {doc: doc(`{"StringEquals":{"` + strings.ToUpper(k) + `:SUB":"` + sub + `"}}`), allow: true},
		"one of several values":                 {doc: doc(`{"StringEquals":{"` + k + `:sub":["x","` + sub + `"]}}`), allow: true},
		"every key must match":                  {doc: doc(`{"StringEquals":{"` + k + `:sub":"` + sub + `","` + k + `:aud":"other"}}`)},
		"ForAllValues on the audience":          {doc: doc(`{"ForAllValues:StringEquals":{"` + k + `:aud":["sts.amazonaws.com","x"]}}`), allow: true},
		"ForAnyValue on the audience":           {doc: doc(`{"ForAnyValue:StringLike":{"` + k + `:aud":"sts.*"}}`), allow: true},
		"Null true on an absent key":            {doc: doc(`{"Null":{"` + k + `:amr":"true"}}`), allow: true},
		"Null false on an absent key":           {doc: doc(`{"Null":{"` + k + `:amr":"false"}}`)},
		"an operator the evaluator does not know is an error, not a guess": {
			doc: doc(`{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}`), wantErr: "unsupported condition operator",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			d, err := policy.Evaluate(tc.doc, req)
			if tc.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(d.Allowed).To(Equal(tc.allow), d.Reason)
		})
	}
}

func TestEvaluateExplicitDenyWins(t *testing.T) {
	g := NewWithT(t)
	sub := "system:serviceaccount:team-a:default-editor"
	trust := policy.WebIdentityTrust(providerARN, issuer, sub)
	trust.Statement = append(trust.Statement, policy.Statement{
		Effect: policy.Deny, Principal: policy.Principal{"AWS": {"*"}}, Action: policy.Values{"sts:*"},
	})
	d, err := policy.Evaluate(trust, policy.WebIdentityRequest(providerARN, issuer, sub, []string{policy.Audience}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d.Allowed).To(BeFalse())
	g.Expect(d.Reason).To(ContainSubstring("explicitly denied"))
}

// A denial names, for each Allow, what of the request it does not admit.
func TestEvaluateSaysWhichConditionFails(t *testing.T) {
	trust := policy.WebIdentityTrust(providerARN, issuer, "system:serviceaccount:team-a:default-editor")
	host := policy.IssuerHost(issuer)
	cases := map[string]struct {
		req  policy.Request
		want string
	}{
		"another namespace's service account": {
			req:  policy.WebIdentityRequest(providerARN, issuer, "system:serviceaccount:team-b:default-editor", []string{policy.Audience}),
			want: "statement 0: condition StringEquals on " + host + ":sub wants [system:serviceaccount:team-a:default-editor], the request has [system:serviceaccount:team-b:default-editor]",
		},
		"another audience": {
			req:  policy.WebIdentityRequest(providerARN, issuer, "system:serviceaccount:team-a:default-editor", []string{"vault"}),
			want: "statement 0: condition StringEquals on " + host + ":aud wants [sts.amazonaws.com], the request has [vault]",
		},
		"another OIDC provider": {
			req:  policy.WebIdentityRequest("arn:aws:iam::123456789012:oidc-provider/other", issuer, "system:serviceaccount:team-a:default-editor", []string{policy.Audience}),
			want: "statement 0: its principal is not Federated arn:aws:iam::123456789012:oidc-provider/other",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			d, err := policy.Evaluate(trust, tc.req)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(d.Allowed).To(BeFalse())
			g.Expect(d.Reason).To(Equal("no statement allows the request (" + tc.want + ")"))
		})
	}
}

func TestIdentityOpenTo(t *testing.T) {
	k := "oidc.eks.us-west-2.amazonaws.com/id/ABC"
	own := policy.Identity{ProviderARN: providerARN, Issuer: issuer, Subject: "system:serviceaccount:team-a:default-editor"}
	federated := `"Principal":{"Federated":"` + providerARN + `"},"Action":"sts:AssumeRoleWithWebIdentity"`
	stmt := func(cond string) string {
		if cond == "" {
			return `{"Effect":"Allow",` + federated + `}`
		}
		return `{"Effect":"Allow",` + federated + `,"Condition":` + cond + `}`
	}
	doc := func(stmts ...string) string {
		return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
	}
	exact := stmt(`{"StringEquals":{"` + k + `:aud":"sts.amazonaws.com","` + k + `:sub":"system:serviceaccount:team-a:default-editor"}}`)
	cases := map[string]struct {
		raw string
		// admits is a subject the trust is expected to let in; "" for closed.
		admits string
		// opening is how; derived from admits for the simple cases below.
		opening policy.Opening
	}{
		"exactly the own default-editor":    {raw: doc(exact)},
		"the own subject, URL-encoded":      {raw: url.QueryEscape(trustPlain)},
		"the own subject under StringLike":  {raw: doc(stmt(`{"StringEquals":{"` + k + `:aud":"sts.amazonaws.com"},"StringLike":{"` + k + `:sub":"system:serviceaccount:team-a:default-editor"}}`))},
		"an explicit deny of the probe too": {raw: doc(exact, `{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"sts:*"}`)},
		"audience only, as Kubeflow's revoke leaves it": {
			raw: doc(stmt(`{"StringEquals":{"` + k + `:aud":["sts.amazonaws.com"]}}`)), admits: "system:serviceaccount:kubeflow-aws-trust-probe:default-editor", opening: policy.AnySubject,
		},
		"no condition at all": {raw: doc(stmt("")), admits: "system:serviceaccount:kubeflow-aws-trust-probe:default-editor", opening: policy.AnySubject},
		"StringLike system:serviceaccount:*": {
			raw: doc(stmt(`{"StringLike":{"` + k + `:sub":"system:serviceaccount:*"}}`)), admits: "system:serviceaccount:kubeflow-aws-trust-probe:default-editor", opening: policy.WildcardSubject,
		},
		"StringLike on every service account of the namespace": {
			raw: doc(stmt(`{"StringLike":{"` + k + `:sub":"system:serviceaccount:team-a:*"}}`)), admits: "system:serviceaccount:team-a:kubeflow-aws-trust-probe", opening: policy.WildcardSubject,
		},
		"a ? wildcard that matches other namespaces": {
			raw: doc(stmt(`{"StringLike":{"` + k + `:sub":"system:serviceaccount:team-?:default-editor"}}`)), admits: "system:serviceaccount:team-x:default-editor", opening: policy.WildcardSubject,
		},
		"a suffix wildcard on the service account": {
			raw: doc(stmt(`{"StringLike":{"` + k + `:sub":"system:serviceaccount:team-a:default-editor*"}}`)), admits: "system:serviceaccount:team-a:default-editorx", opening: policy.WildcardSubject,
		},
		"a second namespace in the sub list": {
			raw:    doc(stmt(`{"StringEquals":{"` + k + `:sub":["system:serviceaccount:team-a:default-editor","system:serviceaccount:team-b:default-editor"]}}`)),
			admits: "system:serviceaccount:team-b:default-editor", opening: policy.ListedSubject,
		},
		"a second statement without subject": {raw: doc(exact, stmt("")), admits: "system:serviceaccount:kubeflow-aws-trust-probe:default-editor", opening: policy.AnySubject},
		"a negated subject condition": {
			raw: doc(stmt(`{"StringNotEquals":{"` + k + `:sub":"system:serviceaccount:kube-system:default"}}`)), admits: "system:serviceaccount:kubeflow-aws-trust-probe:default-editor", opening: policy.AnySubject,
		},
		"the own subject through another cluster's provider": {
			raw:    doc(`{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/XYZ"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.eks.us-west-2.amazonaws.com/id/XYZ:sub":"system:serviceaccount:team-a:default-editor"}}}`),
			admits: "system:serviceaccount:team-a:default-editor", opening: policy.OtherProvider,
		},
		"any AWS principal":        {raw: doc(exact, `{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}`), admits: "-", opening: policy.OtherPrincipal},
		"an EC2 service principal": {raw: doc(`{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}`), admits: "-", opening: policy.OtherPrincipal},
		"an operator the evaluator does not know": {
			raw: doc(stmt(`{"ArnLike":{"aws:SourceArn":"arn:aws:iam::*"}}`)), admits: "system:serviceaccount:kubeflow-aws-trust-probe:default-editor", opening: policy.Unevaluable,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			trust, err := policy.Parse(tc.raw)
			g.Expect(err).NotTo(HaveOccurred())
			foreign, open := own.OpenTo(trust)
			switch tc.admits {
			case "":
				g.Expect(open).To(BeFalse(), "admits %s", foreign)
			case "-":
				g.Expect(open).To(BeTrue())
				g.Expect(foreign.Subject).To(BeEmpty(), "a principal that is no web identity")
			default:
				g.Expect(open).To(BeTrue())
				g.Expect(foreign.Subject).To(Equal(tc.admits), "%s", foreign)
			}
			if open {
				g.Expect(foreign.Opening).To(Equal(tc.opening), "%s", foreign)
			}
		})
	}
}

// Property: whatever subjects WebIdentityTrust is given, the trust it builds
// admits none it was not given (invariant 1).
func TestWebIdentityTrustAdmitsOnlyItsSubjects(t *testing.T) {
	for _, subject := range []string{"system:serviceaccount:a:default-editor", "system:serviceaccount:kubeflow:profiles-controller-service-account"} {
		g := NewWithT(t)
		id := policy.Identity{ProviderARN: providerARN, Issuer: issuer, Subject: subject}
		foreign, open := id.OpenTo(id.Trust())
		g.Expect(open).To(BeFalse(), "admits %s", foreign)
		d, err := policy.Evaluate(id.Trust(), policy.WebIdentityRequest(providerARN, issuer, subject, []string{policy.Audience}))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(d.Allowed).To(BeTrue(), "and it admits its own subject")
	}
}

// A retained role whose Profile is gone admits no one, not even the
// namespace's default-editor that a new owner of the name would get.
func TestNeutralisedTrustAdmitsNoOne(t *testing.T) {
	g := NewWithT(t)
	id := policy.Identity{ProviderARN: providerARN, Issuer: issuer, Subject: "system:serviceaccount:team-a:default-editor"}
	g.Expect(id.AdmitsNoOne(id.Neutralised())).To(BeTrue())
	g.Expect(id.AdmitsNoOne(id.Trust())).To(BeFalse(), "the ordinary trust admits its subject")
	d, err := policy.Evaluate(id.Neutralised(), policy.WebIdentityRequest(providerARN, issuer, id.Subject, []string{policy.Audience}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d.Reason).To(ContainSubstring("explicitly denied"))
	_, err = policy.Parse(id.Neutralised().Marshal())
	g.Expect(err).NotTo(HaveOccurred(), "a document IAM and the parser accept")
}

func TestUnknownConditionKeys(t *testing.T) {
	host := policy.IssuerHost(issuer)
	req := policy.WebIdentityRequest(providerARN, issuer, "system:serviceaccount:team-a:default-editor", []string{policy.Audience})
	statement := func(effect, principal, action, conditions string) string {
		return fmt.Sprintf(`{"Effect":%q,"Principal":{"Federated":%q},"Action":%q,"Condition":%s}`, effect, principal, action, conditions)
	}
	cases := map[string]struct {
		statements []string
		want       []string
	}{
		"only the token's sub and aud, in another case": {
			statements: []string{statement("Allow", providerARN, "sts:AssumeRoleWithWebIdentity", fmt.Sprintf(`{"StringEquals":{"%s:SUB":"x","%s:aud":"y"}}`, host, host))},
		},
		"the source address and the token's amr": {
			statements: []string{statement("Allow", providerARN, "sts:AssumeRoleWithWebIdentity", fmt.Sprintf(`{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"StringLike":{"%s:amr":"x","%s:sub":"system:serviceaccount:team-a:*"}}`, host, host))},
			want:       []string{"aws:SourceIp", host + ":amr"},
		},
		"in a Deny too, once each": {
			statements: []string{
				statement("Allow", providerARN, "sts:*", `{"Bool":{"aws:SecureTransport":"true"}}`),
				statement("Deny", providerARN, "sts:AssumeRoleWithWebIdentity", `{"Bool":{"aws:SecureTransport":"false"}}`),
			},
			want: []string{"aws:SecureTransport"},
		},
		"not another identity provider's, which this token never sets": {
			statements: []string{statement("Allow", providerARN, "sts:AssumeRoleWithWebIdentity", `{"StringEquals":{"oidc.eks.us-west-2.amazonaws.com/id/XYZ:sub":"x","accounts.google.com:aud":"y"}}`)},
		},
		"not in a statement another condition already rules out": {
			statements: []string{statement("Allow", providerARN, "sts:AssumeRoleWithWebIdentity", fmt.Sprintf(`{"StringEquals":{"%s:sub":"system:serviceaccount:team-b:default-editor"},"StringLike":{"aws:SourceVpc":"vpc-1"}}`, host))},
		},
		"not in a statement for another principal or action": {
			statements: []string{
				statement("Allow", "arn:aws:iam::123456789012:oidc-provider/other", "sts:AssumeRoleWithWebIdentity", `{"StringEquals":{"aws:SourceIp":"x"}}`),
				statement("Allow", providerARN, "sts:TagSession", `{"StringEquals":{"aws:RequestTag/team":"a"}}`),
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			doc, err := policy.Parse(`{"Version":"2012-10-17","Statement":[` + strings.Join(tc.statements, ",") + `]}`)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(policy.UnknownConditionKeys(doc, req)).To(Equal(tc.want))
		})
	}
}
