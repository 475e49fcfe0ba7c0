package awsiamtest_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	. "github.com/onsi/gomega"

	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

func jwt(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(b) + "." + enc([]byte("unsigned"))
}

// kumo grants any token any role and answers its root to every caller; the
// guard in front of it decides as STS does.
func TestGuardDecidesWebIdentitiesAsSTSDoes(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	env := awsiamtest.Start()
	defer env.Close()
	issuer := "https://oidc.eks.us-west-2.amazonaws.com/id/GUARD"
	provider, err := env.IAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String(issuer), ClientIDList: []string{policy.Audience},
	})
	g.Expect(err).NotTo(HaveOccurred())
	id := policy.Identity{ProviderARN: aws.ToString(provider.OpenIDConnectProviderArn), Issuer: issuer, Subject: "system:serviceaccount:team-a:default-editor"}
	role, err := env.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("guard-team-a"), AssumeRolePolicyDocument: aws.String(id.Trust().Marshal())})
	g.Expect(err).NotTo(HaveOccurred())
	// The SDK's web identity provider names its sessions with digits, which
	// kumo alone cannot read.
	assume := func(sub, aud string) (*sts.AssumeRoleWithWebIdentityOutput, error) {
		return env.STS.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
			RoleArn: role.Role.Arn, RoleSessionName: aws.String("1764576000123456789"),
			WebIdentityToken: aws.String(jwt(t, map[string]any{"iss": issuer, "sub": sub, "aud": []string{aud}})),
		})
	}

	out, err := assume(id.Subject, policy.Audience)
	g.Expect(err).NotTo(HaveOccurred())
	c := out.Credentials
	asRole := sts.NewFromConfig(env.Config, func(o *sts.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	})
	caller, err := asRole.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(aws.ToString(caller.Arn)).To(Equal("arn:aws:sts::" + awsiamtest.AccountID + ":assumed-role/guard-team-a/1764576000123456789"))

	_, err = assume("system:serviceaccount:team-b:default-editor", policy.Audience)
	g.Expect(err).To(MatchError(ContainSubstring("AccessDenied")), "another namespace's token")
	_, err = assume(id.Subject, "https://kubernetes.default.svc")
	g.Expect(err).To(MatchError(ContainSubstring("InvalidIdentityToken")), "a token for another audience")

	root, err := env.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(aws.ToString(root.Account)).To(Equal(awsiamtest.AccountID), "the operator's own credentials answer the IAM account")
}

// signedJWT signs claims with key, as the API server signs a projected
// service-account token.
func signedJWT(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	unsigned := enc([]byte(`{"alg":"RS256"}`)) + "." + enc(b)
	sum := sha256.Sum256([]byte(unsigned))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return unsigned + "." + enc(sig)
}

// Given the cluster's signing key, the guard admits only tokens that key
// signed, as STS admits only tokens its OIDC provider's keys verify.
func TestGuardChecksTheTokensSignature(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clusterKey, err := rsa.GenerateKey(rand.Reader, 2048)
	g.Expect(err).NotTo(HaveOccurred())
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	g.Expect(err).NotTo(HaveOccurred())
	env := awsiamtest.StartWith(awsiamtest.Options{TokenKey: &clusterKey.PublicKey})
	defer env.Close()
	issuer := "https://oidc.eks.us-west-2.amazonaws.com/id/SIGNED"
	provider, err := env.IAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String(issuer), ClientIDList: []string{policy.Audience},
	})
	g.Expect(err).NotTo(HaveOccurred())
	id := policy.Identity{ProviderARN: aws.ToString(provider.OpenIDConnectProviderArn), Issuer: issuer, Subject: "system:serviceaccount:team-a:default-editor"}
	role, err := env.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("signed-team-a"), AssumeRolePolicyDocument: aws.String(id.Trust().Marshal())})
	g.Expect(err).NotTo(HaveOccurred())
	claims := map[string]any{"iss": issuer, "sub": id.Subject, "aud": []string{policy.Audience}}
	assume := func(token string) error {
		_, err := env.STS.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
			RoleArn: role.Role.Arn, RoleSessionName: aws.String("signed"), WebIdentityToken: aws.String(token),
		})
		return err
	}

	g.Expect(assume(signedJWT(t, clusterKey, claims))).To(Succeed())
	g.Expect(assume(signedJWT(t, otherKey, claims))).To(MatchError(ContainSubstring("InvalidIdentityToken")), "signed by another cluster")
	g.Expect(assume(jwt(t, claims))).To(MatchError(ContainSubstring("InvalidIdentityToken")), "not signed")
}
