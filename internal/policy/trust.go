package policy

import "strings"

// Audience is the audience of the projected service-account token that the
// EKS pod identity webhook mounts, and the client ID of the OIDC provider.
const Audience = "sts.amazonaws.com"

// IssuerHost is an OIDC issuer without its scheme, the form IAM uses in
// provider ARNs and condition keys.
func IssuerHost(issuer string) string {
	return strings.TrimPrefix(strings.TrimPrefix(issuer, "https://"), "http://")
}

// ServiceAccountSubject is the sub claim of a Kubernetes service-account token.
func ServiceAccountSubject(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// WebIdentityTrust is a role trust policy that lets exactly the given
// service-account subjects of one cluster assume the role with a token for
// the sts.amazonaws.com audience. It has the shape Kubeflow's
// AwsIamForServiceAccount plugin converges to: a single statement whose
// StringEquals holds the aud and a list of subs.
func WebIdentityTrust(providerARN, issuer string, subjects ...string) Document {
	host := IssuerHost(issuer)
	return Document{
		Version: Version2012,
		Statement: []Statement{{
			Effect:    Allow,
			Principal: Principal{"Federated": Values{providerARN}},
			Action:    Values{ActionAssumeRoleWithWebIdentity},
			Condition: Conditions{
				"StringEquals": {
					host + ":aud": Values{Audience},
					host + ":sub": append(Values{}, subjects...),
				},
			},
		}},
	}
}

// AudienceOnly reports whether a trust policy lets a federated principal in
// on the audience alone, with no statement restricting the subject: then
// every service account of the cluster can assume the role. This is the state
// Kubeflow's plugin leaves when it removes the last subject.
func AudienceOnly(doc Document) bool {
	for _, s := range doc.Statement {
		if s.Effect != Allow || len(s.Principal["Federated"]) == 0 {
			continue
		}
		restricted := false
		for op, keys := range s.Condition {
			if !strings.HasPrefix(op, "String") || strings.Contains(op, "Not") {
				continue
			}
			for k, v := range keys {
				if strings.HasSuffix(strings.ToLower(k), ":sub") && len(v) > 0 && !contains(v, "*") {
					restricted = true
				}
			}
		}
		if !restricted {
			return true
		}
	}
	return false
}
