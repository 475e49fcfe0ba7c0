package policy_test

import (
	"net/url"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/awskubeflowprofiles/operator/internal/policy"
)

const trustPlain = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.eks.us-west-2.amazonaws.com/id/ABC:aud":["sts.amazonaws.com"],"oidc.eks.us-west-2.amazonaws.com/id/ABC:sub":["system:serviceaccount:team-a:default-editor"]}}}]}`

func TestParse(t *testing.T) {
	cases := map[string]struct {
		raw     string
		wantErr string
	}{
		"plain JSON as kumo returns it":       {raw: trustPlain},
		"URL-encoded JSON as real IAM does":   {raw: url.QueryEscape(trustPlain)},
		"path-escaped JSON":                   {raw: url.PathEscape(trustPlain)},
		"a single statement object":           {raw: `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`},
		"no version (IAM assumes 2008-10-17)": {raw: `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`},
		"not JSON":                            {raw: `Allow everything`, wantErr: "parsing policy document"},
		"no statement":                        {raw: `{"Version":"2012-10-17"}`, wantErr: "no Statement"},
		"an unknown effect":                   {raw: `{"Statement":[{"Effect":"Maybe","Action":"s3:*"}]}`, wantErr: "Allow or Deny"},
		"no action":                           {raw: `{"Statement":[{"Effect":"Allow","Resource":"*"}]}`, wantErr: "Action or NotAction"},
		"an unknown version":                  {raw: `{"Version":"2024-01-01","Statement":[{"Effect":"Allow","Action":"s3:*"}]}`, wantErr: "Version"},
		"a misspelt key":                      {raw: `{"Statement":[{"Effect":"Allow","Actions":"s3:*"}]}`, wantErr: "unknown field"},
		"a principal string other than *":     {raw: `{"Statement":[{"Effect":"Allow","Action":"s3:*","Principal":"me"}]}`, wantErr: "principal"},
		"trailing data":                       {raw: trustPlain + `{}`, wantErr: "trailing"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			doc, err := policy.Parse(tc.raw)
			if tc.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(doc.Statement).NotTo(BeEmpty())
		})
	}
}

func TestParseKeepsLiteralPlus(t *testing.T) {
	g := NewWithT(t)
	// QueryUnescape would turn the + of this ARN into a space.
	raw := `{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/a+b"}]}`
	doc, err := policy.Parse(raw)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(doc.Statement[0].Resource).To(ConsistOf("arn:aws:s3:::bucket/a+b"))
	doc, err = policy.Parse(url.PathEscape(raw))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(doc.Statement[0].Resource).To(ConsistOf("arn:aws:s3:::bucket/a+b"))
}

func TestEqual(t *testing.T) {
	cases := map[string]struct {
		a, b  string
		equal bool
	}{
		"identical": {a: trustPlain, b: trustPlain, equal: true},
		"URL-encoded against plain": {
			a: url.QueryEscape(trustPlain), b: trustPlain, equal: true,
		},
		"keys in another order, strings instead of one-element lists": {
			a:     trustPlain,
			b:     `{"Statement":[{"Condition":{"StringEquals":{"oidc.eks.us-west-2.amazonaws.com/id/ABC:sub":"system:serviceaccount:team-a:default-editor","oidc.eks.us-west-2.amazonaws.com/id/ABC:aud":"sts.amazonaws.com"}},"Action":["sts:AssumeRoleWithWebIdentity"],"Principal":{"Federated":["arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC"]},"Effect":"Allow"}],"Version":"2012-10-17"}`,
			equal: true,
		},
		"whitespace and pretty printing": {
			a:     trustPlain,
			b:     strings.ReplaceAll(strings.ReplaceAll(trustPlain, ",", ",\n  "), ":{", ": {"),
			equal: true,
		},
		"action names differ only in case": {
			a:     `{"Statement":[{"Effect":"Allow","Action":"iam:GetRole","Resource":"*"}]}`,
			b:     `{"Statement":[{"Effect":"Allow","Action":"IAM:getrole","Resource":"*"}]}`,
			equal: true,
		},
		"condition keys differ only in case": {
			a:     `{"Statement":[{"Effect":"Allow","Action":"s3:*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"a"}}}]}`,
			b:     `{"Statement":[{"Effect":"Allow","Action":"s3:*","Condition":{"StringEquals":{"aws:principaltag/team":"a"}}}]}`,
			equal: true,
		},
		"two keys differing in case are two conditions, not one list": {
			a:     `{"Statement":[{"Effect":"Allow","Action":"s3:*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"a","aws:principaltag/team":"b"}}}]}`,
			b:     `{"Statement":[{"Effect":"Allow","Action":"s3:*","Condition":{"StringEquals":{"aws:PrincipalTag/team":["a","b"]}}}]}`,
			equal: false,
		},
		"statements in another order": {
			a:     `{"Statement":[{"Effect":"Allow","Action":"s3:*"},{"Effect":"Deny","Action":"iam:*"}]}`,
			b:     `{"Statement":[{"Effect":"Deny","Action":"iam:*"},{"Effect":"Allow","Action":"s3:*"}]}`,
			equal: true,
		},
		"actions in another order with a duplicate": {
			a:     `{"Statement":[{"Effect":"Allow","Action":["iam:GetRole","iam:UpdateAssumeRolePolicy"]}]}`,
			b:     `{"Statement":[{"Effect":"Allow","Action":["iam:UpdateAssumeRolePolicy","iam:GetRole","iam:GetRole"]}]}`,
			equal: true,
		},
		"the * principal and AWS *": {
			a:     `{"Statement":[{"Effect":"Allow","Action":"s3:*","Principal":"*"}]}`,
			b:     `{"Statement":[{"Effect":"Allow","Action":"s3:*","Principal":{"AWS":"*"}}]}`,
			equal: true,
		},
		"boolean and string condition values": {
			a:     `{"Statement":[{"Effect":"Deny","Action":"s3:*","Condition":{"Bool":{"aws:SecureTransport":false}}}]}`,
			b:     `{"Statement":[{"Effect":"Deny","Action":"s3:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`,
			equal: true,
		},
		"a missing version is 2008-10-17, not 2012-10-17": {
			a:     `{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}`,
			b:     `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*"}]}`,
			equal: false,
		},
		"one more subject": {
			a:     trustPlain,
			b:     strings.Replace(trustPlain, `["system:serviceaccount:team-a:default-editor"]`, `["system:serviceaccount:team-a:default-editor","system:serviceaccount:team-b:default-editor"]`, 1),
			equal: false,
		},
		"aud only (what Kubeflow leaves after revoking the last subject)": {
			a:     trustPlain,
			b:     strings.Replace(trustPlain, `,"oidc.eks.us-west-2.amazonaws.com/id/ABC:sub":["system:serviceaccount:team-a:default-editor"]`, ``, 1),
			equal: false,
		},
		"StringLike instead of StringEquals": {
			a:     trustPlain,
			b:     strings.Replace(trustPlain, "StringEquals", "StringLike", 1),
			equal: false,
		},
		"a subject differing in case": {
			a:     trustPlain,
			b:     strings.Replace(trustPlain, "team-a", "Team-A", 1),
			equal: false,
		},
		"Allow against Deny": {
			a:     `{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}`,
			b:     `{"Statement":[{"Effect":"Deny","Action":"s3:*"}]}`,
			equal: false,
		},
		"different Sid": {
			a:     `{"Statement":[{"Sid":"A","Effect":"Allow","Action":"s3:*"}]}`,
			b:     `{"Statement":[{"Sid":"B","Effect":"Allow","Action":"s3:*"}]}`,
			equal: false,
		},
		"resources are case-sensitive": {
			a:     `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::Bucket"}]}`,
			b:     `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::bucket"}]}`,
			equal: false,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			a, err := policy.Parse(tc.a)
			g.Expect(err).NotTo(HaveOccurred())
			b, err := policy.Parse(tc.b)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(policy.Equal(a, b)).To(Equal(tc.equal))
			g.Expect(policy.Equal(b, a)).To(Equal(tc.equal), "Equal must be symmetric")
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	g := NewWithT(t)
	doc := policy.WebIdentityTrust("arn:aws:iam::123456789012:oidc-provider/oidc.example.com/id/X", "https://oidc.example.com/id/X",
		"system:serviceaccount:a:default-editor")
	again, err := policy.Parse(doc.Marshal())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(policy.Equal(doc, again)).To(BeTrue())
}

func TestSize(t *testing.T) {
	cases := map[string]struct {
		raw  string
		want int
	}{
		"compact":                       {raw: `{"a":"b c"}`, want: 10},
		"whitespace is not counted":     {raw: "{\n  \"a\" : \"b\"\n}", want: 9},
		"multi-byte runes count as one": {raw: `{"a":"é"}`, want: 9},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			NewWithT(t).Expect(policy.SizeOf(tc.raw)).To(Equal(tc.want))
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(trustPlain)
	f.Add(url.QueryEscape(trustPlain))
	f.Add(`{"Statement":{"Effect":"Deny","NotAction":"*","Principal":"*"}}`)
	f.Fuzz(func(t *testing.T, raw string) {
		doc, err := policy.Parse(raw)
		if err != nil {
			return
		}
		// Whatever parses renders to a document that parses back equal.
		again, err := policy.Parse(doc.Marshal())
		if err != nil {
			t.Fatalf("re-parsing %q: %v", doc.Marshal(), err)
		}
		if !policy.Equal(doc, again) {
			t.Fatalf("round trip changed %q into %q", raw, doc.Marshal())
		}
	})
}
