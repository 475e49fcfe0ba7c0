package desired_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// kubeflowPluginAdd mirrors the add path of Kubeflow's AwsIamForServiceAccount
// plugin (kubeflow/dashboard components/profile-controller/controllers/
// plugin_iam.go, addServiceAccountInAssumeRolePolicy), which runs on every
// reconcile of every Profile that uses the plugin:
//
//  1. URL-decode the trust policy returned by iam:GetRole and read it as
//     generic JSON;
//  2. take Statement[0].Principal.Federated; the issuer is the part of that
//     ARN after its first "/";
//  3. look only at Statement[0].Condition.StringEquals["<issuer>:sub"], where
//     a plain string counts as a list of one;
//  4. if that list holds system:serviceaccount:<namespace>:default-editor,
//     stop: nothing is written;
//  5. otherwise replace the whole document with a new one: Version
//     2012-10-17 and a single statement {Effect: Allow, Action:
//     "sts:AssumeRoleWithWebIdentity", Principal: {Federated: <the ARN>},
//     Condition: {StringEquals: {"<issuer>:aud": ["sts.amazonaws.com"],
//     "<issuer>:sub": [<the old entries>..., <the new subject>]}}}, dropping
//     every other statement, key and operator.
//
// It returns the document it would write and whether it writes at all.
func kubeflowPluginAdd(t *testing.T, encoded, namespace string) (string, bool) {
	t.Helper()
	subject := "system:serviceaccount:" + namespace + ":default-editor"
	federated, issuer, subs := pluginView(t, encoded)
	if slices.Contains(subs, subject) {
		return "", false
	}
	return pluginDocument(t, federated, issuer, append(subs, subject)), true
}

// kubeflowPluginRevoke mirrors removeServiceAccountInAssumeRolePolicy, run by
// Kubeflow's finalizer when a Profile is deleted: the same reading, every copy
// of the subject removed, and the document always rewritten; with no subject
// left the condition keeps only the aud key.
func kubeflowPluginRevoke(t *testing.T, encoded, namespace string) string {
	t.Helper()
	subject := "system:serviceaccount:" + namespace + ":default-editor"
	federated, issuer, subs := pluginView(t, encoded)
	subs = slices.DeleteFunc(subs, func(s string) bool { return s == subject })
	return pluginDocument(t, federated, issuer, subs)
}

func pluginView(t *testing.T, encoded string) (federated, issuer string, subs []string) {
	t.Helper()
	decoded, err := url.QueryUnescape(encoded)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(decoded), &doc); err != nil {
		t.Fatal(err)
	}
	first := doc["Statement"].([]any)[0].(map[string]any)
	federated, _ = first["Principal"].(map[string]any)["Federated"].(string)
	_, issuer, _ = strings.Cut(federated, "/")
	cond, _ := first["Condition"].(map[string]any)
	eq, _ := cond["StringEquals"].(map[string]any)
	switch v := eq[issuer+":sub"].(type) {
	case string:
		subs = []string{v}
	case []any:
		for _, s := range v {
			str, _ := s.(string)
			subs = append(subs, str)
		}
	}
	return federated, issuer, subs
}

func pluginDocument(t *testing.T, federated, issuer string, subs []string) string {
	t.Helper()
	condition := map[string][]string{issuer + ":aud": {"sts.amazonaws.com"}}
	if len(subs) > 0 {
		condition[issuer+":sub"] = subs
	}
	b, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
			"Principal": map[string]any{"Federated": federated},
			"Condition": map[string]any{"StringEquals": condition},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

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
			_, writes := kubeflowPluginAdd(t, url.QueryEscape(p.Role.Trust.Marshal()), p.Name)
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
			written, writes := kubeflowPluginAdd(t, url.QueryEscape(start), p.Name)
			g.Expect(writes).To(BeTrue())
			doc, err := policy.Parse(written)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(policy.Equal(doc, p.Role.Trust)).To(BeTrue(), "plugin wrote %s, operator writes %s", written, p.Role.Trust.Marshal())
		})
	}
}

// Why the operator sets annotateOnly before it lets a Profile be deleted:
// the plugin's revoke on the operator's trust leaves it admitting every
// service account of the cluster.
func TestKubeflowPluginRevokeLeavesAudienceOnly(t *testing.T) {
	g := NewWithT(t)
	st, err := desired.Build("kf", baseSpec(), facts)
	g.Expect(err).NotTo(HaveOccurred())
	p := st.Profiles[0]
	doc, err := policy.Parse(kubeflowPluginRevoke(t, url.QueryEscape(p.Role.Trust.Marshal()), p.Name))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(policy.AudienceOnly(doc)).To(BeTrue())
	g.Expect(policy.AudienceOnly(p.Role.Trust)).To(BeFalse())
}
