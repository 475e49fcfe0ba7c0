package desired_test

import (
	"net/url"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/kubeflowtest"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// The trust the operator writes is the shape the plugin converges to, so
// the plugin finds its entry and never rewrites it (invariant 2).
func TestKubeflowPluginLeavesOurTrustAlone(t *testing.T) {
	st, err := desired.Build("kf", baseSpec(), facts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Profiles {
		t.Run(p.Name, func(t *testing.T) {
			g := NewWithT(t)
			// IAM returns the document URL-encoded; the plugin decodes it.
			_, writes, err := kubeflowtest.Add(url.QueryEscape(p.Role.Trust.Marshal()), p.Name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(writes).To(BeFalse(), "the plugin would rewrite %s", p.Role.Trust.Marshal())
		})
	}
}

func TestKubeflowPluginConvergesToOurTrust(t *testing.T) {
	st, err := desired.Build("kf", baseSpec(), facts)
	if err != nil {
		t.Fatal(err)
	}
	p := st.Profiles[0]
	provider := st.OIDCProvider.ARN
	host := policy.IssuerHost(facts.IssuerURL)
	cases := map[string]string{
		"the aud-only trust of the AWS docs": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + provider +
			`"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + host + `:aud":"sts.amazonaws.com"}}}]}`,
		"a trust with a Sid and an action list": `{"Version":"2012-10-17","Statement":[{"Sid":"x","Effect":"Allow","Principal":{"Federated":"` + provider +
			`"},"Action":["sts:AssumeRoleWithWebIdentity"],"Condition":{"StringEquals":{"` + host + `:aud":["sts.amazonaws.com"]}}}]}`,
	}
	for name, start := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			written, writes, err := kubeflowtest.Add(url.QueryEscape(start), p.Name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(writes).To(BeTrue())
			doc, err := policy.Parse(written)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(policy.Equal(doc, p.Role.Trust)).To(BeTrue(), "plugin wrote %s, operator writes %s", written, p.Role.Trust.Marshal())
		})
	}
}

// Why every Profile the operator manages is annotateOnly from creation:
// the plugin's revoke on the operator's trust leaves it admitting every
// service account of the cluster.
func TestKubeflowPluginRevokeOpensTheTrust(t *testing.T) {
	g := NewWithT(t)
	st, err := desired.Build("kf", baseSpec(), facts)
	g.Expect(err).NotTo(HaveOccurred())
	p := st.Profiles[0]
	revoked, err := kubeflowtest.Revoke(url.QueryEscape(p.Role.Trust.Marshal()), p.Name)
	g.Expect(err).NotTo(HaveOccurred())
	doc, err := policy.Parse(revoked)
	g.Expect(err).NotTo(HaveOccurred())
	foreign, open := p.Role.Identity.OpenTo(doc)
	g.Expect(open).To(BeTrue())
	g.Expect(foreign.Subject).To(HavePrefix("system:serviceaccount:"))
	_, open = p.Role.Identity.OpenTo(p.Role.Trust)
	g.Expect(open).To(BeFalse())
}
