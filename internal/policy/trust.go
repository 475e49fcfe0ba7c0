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
