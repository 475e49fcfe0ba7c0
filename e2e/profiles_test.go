package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/e2e/framework"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

const (
	roleARNAnnotation = "eks.amazonaws.com/role-arn"
	controllerSA      = "profiles-controller-service-account"
	editor            = "default-editor"
)

// The same specs run on every target, in order, against one
// AwsKubeflowProfiles with two profiles, A and B.
var _ = Describe("AwsKubeflowProfiles", Ordered, func() {
	var (
		suffix             = randomSuffix()
		name               = "e2e-" + suffix
		profileA, profileB = "e2e-a-" + suffix, "e2e-b-" + suffix
		policyName         = "kf-profile-controller-policy-" + name
		policyA, policyB   string
		cr                 *v1alpha1.AwsKubeflowProfiles
	)

	newSpec := func(deletion v1alpha1.DeletionPolicySpec) *v1alpha1.AwsKubeflowProfiles {
		c := env.Cluster
		return &v1alpha1.AwsKubeflowProfiles{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.AwsKubeflowProfilesSpec{
				Cluster:           v1alpha1.ClusterSpec{Name: c.Name, Region: c.Region, AccountID: c.AccountID, OIDCIssuerURL: c.IssuerURL},
				ProfileController: v1alpha1.ProfileControllerSpec{PolicyName: policyName},
				IAM:               v1alpha1.IAMSpec{Tags: []v1alpha1.Tag{{Key: "e2e", Value: name}}},
				Profiles: []v1alpha1.ProfileSpec{
					{Name: profileA, Owner: v1alpha1.ProfileOwner{Name: profileA + "@example.com"}, ManagedPolicyARNs: []string{policyA},
						InlinePolicies: []v1alpha1.InlinePolicy{{Name: "read-account", Document: jsonDoc(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetAccountSummary","Resource":"*"}]}`)}}},
					{Name: profileB, Owner: v1alpha1.ProfileOwner{Name: profileB + "@example.com"}, ManagedPolicyARNs: []string{policyB}},
				},
				DeletionPolicy: deletion,
			},
		}
	}

	BeforeAll(func(ctx SpecContext) {
		By("creating a customer managed policy for each profile, as an admin would")
		// A may list account aliases, B may describe availability zones:
		// read-only actions that need no resource to exist.
		policyA = createPolicy(ctx, "e2e-a-"+suffix, "iam:ListAccountAliases")
		policyB = createPolicy(ctx, "e2e-b-"+suffix, "ec2:DescribeAvailabilityZones")
		DeferCleanup(func(ctx SpecContext) {
			for _, arn := range []string{policyA, policyB} {
				_, err := env.IAM.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(arn)})
				if err != nil && !strings.Contains(err.Error(), "NoSuchEntity") {
					GinkgoWriter.Printf("deleting policy %s: %v\n", arn, err)
				}
			}
		})
		cr = newSpec(v1alpha1.DeletionPolicySpec{})
		Expect(env.Kube.Resources().Create(ctx, cr)).To(Succeed())
	})

	It("converges and creates the OIDC provider, the controller's IRSA, both profile roles and Profiles", Label("local", "node", "kind", "eks"), func(ctx SpecContext) {
		cr = waitReady(ctx, name)
		Expect(cr.Status.AccountID).To(Equal(env.Cluster.ExpectAccountID))
		Expect(cr.Status.OIDCIssuerURL).To(Equal(env.Cluster.ExpectIssuerURL))
		Expect(cr.Status.ProfilesReady).To(Equal("2/2"))
		issuerHost := policy.IssuerHost(env.Cluster.ExpectIssuerURL)
		providerARN := fmt.Sprintf("arn:aws:iam::%s:oidc-provider/%s", env.Cluster.ExpectAccountID, issuerHost)

		By("the OIDC provider trusts the STS audience")
		Expect(cr.Status.OIDCProvider.ARN).To(Equal(providerARN))
		provider, err := env.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARN)})
		Expect(err).NotTo(HaveOccurred())
		Expect(provider.ClientIDList).To(ContainElement("sts.amazonaws.com"))

		By("the controller policy exists and allows trust edits under the profile path only")
		policyARN := cr.Status.ProfileController.Policy.ARN
		got, err := env.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
		Expect(err).NotTo(HaveOccurred())
		version, err := env.IAM.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(policyARN), VersionId: got.Policy.DefaultVersionId})
		if err != nil && strings.Contains(err.Error(), "InvalidAction") {
			GinkgoWriter.Println("this IAM endpoint cannot return policy documents (kumo); checked that the policy exists")
		} else {
			Expect(err).NotTo(HaveOccurred())
			doc, err := policy.Parse(aws.ToString(version.PolicyVersion.Document))
			Expect(err).NotTo(HaveOccurred())
			want := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"EditProfileRoleTrust","Effect":"Allow","Action":["iam:GetRole","iam:UpdateAssumeRolePolicy"],"Resource":"arn:aws:iam::%s:role/kubeflow/%s/*","Condition":{"StringEqualsIfExists":{"aws:ResourceTag/kubeflow.aws/cluster":%q}}}]}`,
				env.Cluster.ExpectAccountID, env.Cluster.Name, env.Cluster.Name)
			Expect(policy.Equal(doc, mustParse(want))).To(BeTrue(), "controller policy %s", doc.Marshal())
		}

		By("the controller role trusts exactly the profile controller and has the policy")
		controllerRole := roleName(cr.Status.ProfileController.Role.ARN)
		Expect(policy.Equal(trustOf(ctx, controllerRole), exactTrust(providerARN, issuerHost, "kubeflow", controllerSA))).To(BeTrue())
		Expect(attached(ctx, controllerRole)).To(ConsistOf(policyARN))
		sa, err := env.Clientset.CoreV1().ServiceAccounts("kubeflow").Get(ctx, controllerSA, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(sa.Annotations).To(HaveKeyWithValue(roleARNAnnotation, cr.Status.ProfileController.Role.ARN))

		for _, p := range []struct{ name, policy string }{{profileA, policyA}, {profileB, policyB}} {
			By("profile " + p.name + ": role trust, permissions and Profile")
			st := profileStatus(cr, p.name)
			Expect(st.Ready).To(BeTrue(), st.Message)
			role := roleName(st.RoleARN)
			Expect(policy.Equal(trustOf(ctx, role), exactTrust(providerARN, issuerHost, p.name, editor))).To(BeTrue())
			Expect(attached(ctx, role)).To(ConsistOf(p.policy))
			profile := desired.NewProfileObject()
			Expect(env.Kube.Resources().Get(ctx, p.name, "", profile)).To(Succeed())
			arn, annotateOnly, found := desired.ProfilePlugin(profile)
			Expect(found).To(BeTrue())
			Expect(arn).To(Equal(st.RoleARN))
			Expect(annotateOnly).To(BeTrue(), "Kubeflow annotates default-editor but never writes the trust of a managed role")
		}
		inline, err := env.IAM.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(roleName(profileStatus(cr, profileA).RoleARN))})
		Expect(err).NotTo(HaveOccurred())
		Expect(inline.PolicyNames).To(ConsistOf("read-account"))
	})

	It("issues A's role only to a token of A's default-editor", Label("local", "node", "kind", "eks"), func(ctx SpecContext) {
		cr = waitReady(ctx, name)
		roleA, roleB := profileStatus(cr, profileA).RoleARN, profileStatus(cr, profileB).RoleARN
		if ok, why := target.Has(framework.NeedsKubeflow); !ok {
			standInForKubeflow(ctx, why, profileA, profileB)
		} else {
			By("waiting for Kubeflow's profile controller to create " + profileA + "/" + editor)
			Eventually(func() error {
				_, err := env.Clientset.CoreV1().ServiceAccounts(profileA).Get(ctx, editor, metav1.GetOptions{})
				return err
			}).Should(Succeed())
		}

		By("asking the API server for a token of A's default-editor for the STS audience (TokenRequest)")
		token, claims, err := env.ServiceAccountToken(ctx, profileA, editor, policy.Audience)
		Expect(err).NotTo(HaveOccurred())
		Expect(claims.Issuer).To(Equal(env.Cluster.ExpectIssuerURL))
		Expect(claims.Subject).To(Equal(policy.ServiceAccountSubject(profileA, editor)))
		Expect(claims.Audience).To(ConsistOf(policy.Audience))

		By("its iss, sub and aud satisfy A's trust policy and not B's")
		req := policy.WebIdentityRequest(cr.Status.OIDCProvider.ARN, claims.Issuer, claims.Subject, claims.Audience)
		decision, err := policy.Evaluate(trustOf(ctx, roleName(roleA)), req)
		Expect(err).NotTo(HaveOccurred())
		Expect(decision.Allowed).To(BeTrue(), decision.Reason)
		decision, err = policy.Evaluate(trustOf(ctx, roleName(roleB)), req)
		Expect(err).NotTo(HaveOccurred())
		Expect(decision.Allowed).To(BeFalse(), decision.Reason)

		By("STS exchanges it for A's role")
		// IAM is eventually consistent: a role and trust created a moment ago
		// may not be assumable yet, so retry within a deadline, as AWS's IAM
		// guide says to (troubleshoot_general.html#troubleshoot_general_eventual-consistency).
		var out *sts.AssumeRoleWithWebIdentityOutput
		Eventually(func() (err error) {
			out, err = env.STS.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
				RoleArn: aws.String(roleA), RoleSessionName: aws.String("e2e-session-a"), WebIdentityToken: aws.String(token),
			})
			return err
		}).WithTimeout(iamPropagation).Should(Succeed())
		Expect(aws.ToString(out.AssumedRoleUser.Arn)).To(ContainSubstring(":assumed-role/" + roleName(roleA) + "/e2e-session-a"))

		if ok, why := target.Has(framework.NeedsSTSTrust); ok {
			By("the credentials are A's role's, and STS refuses B's role for A's token")
			creds := out.Credentials
			asA := sts.NewFromConfig(env.AWS, func(o *sts.Options) {
				o.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(creds.AccessKeyId), aws.ToString(creds.SecretAccessKey), aws.ToString(creds.SessionToken))
			})
			caller, err := asA.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			Expect(err).NotTo(HaveOccurred())
			Expect(aws.ToString(caller.Arn)).To(ContainSubstring(":assumed-role/" + roleName(roleA) + "/e2e-session-a"))
			_, err = env.STS.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
				RoleArn: aws.String(roleB), RoleSessionName: aws.String("e2e-session-b"), WebIdentityToken: aws.String(token),
			})
			Expect(err).To(MatchError(ContainSubstring("AccessDenied")))
		} else {
			GinkgoWriter.Printf("%s: %s, so B's refusal rests on the evaluation above\n", target.Name(), why)
		}
	})

	It("gives a notebook pod in A exactly A's credentials", Label("kind", "eks", "needs:pod", "needs:kubeflow"), func(ctx SpecContext) {
		cr = waitReady(ctx, name)
		roleA := profileStatus(cr, profileA).RoleARN
		Eventually(editorRoleAnnotation).WithArguments(ctx, profileA).Should(Equal(roleA), "Kubeflow's plugin annotates default-editor with the Profile's role")

		pod, err := env.RunNotebookPod(ctx, profileA, "e2e-notebook", notebookEnv())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { _ = env.Kube.Resources().Delete(ctx, pod) })

		Expect(envOf(pod)).To(HaveKeyWithValue("AWS_ROLE_ARN", roleA))
		Expect(envOf(pod)).To(HaveKeyWithValue("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"))
		_, err = env.Exec(ctx, pod, "test", "-s", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token")
		Expect(err).NotTo(HaveOccurred(), "the projected token file exists")
		out, err := env.Exec(ctx, pod, "aws", "sts", "get-caller-identity", "--output", "json")
		Expect(err).NotTo(HaveOccurred())
		var identity struct{ Arn string }
		Expect(json.Unmarshal([]byte(out), &identity)).To(Succeed())
		Expect(identity.Arn).To(ContainSubstring(":assumed-role/" + roleName(roleA) + "/"))

		if ok, _ := target.Has(framework.NeedsRealIAM); ok {
			By("A's policy allows what it grants and nothing of B's")
			_, err = env.Exec(ctx, pod, "aws", "iam", "list-account-aliases")
			Expect(err).NotTo(HaveOccurred())
			_, err = env.Exec(ctx, pod, "aws", "ec2", "describe-availability-zones", "--region", env.Cluster.Region)
			Expect(err).To(MatchError(Or(ContainSubstring("UnauthorizedOperation"), ContainSubstring("AccessDenied"))))
			_, err = env.Exec(ctx, pod, "sh", "-c", fmt.Sprintf(
				"aws sts assume-role-with-web-identity --role-arn %s --role-session-name e2e-b --web-identity-token \"$(cat $AWS_WEB_IDENTITY_TOKEN_FILE)\"",
				profileStatus(cr, profileB).RoleARN))
			Expect(err).To(MatchError(ContainSubstring("AccessDenied")))
		}
	})

	It("lets Kubeflow's profile controller, with its own IRSA, give a Profile the operator does not manage its role", Label("local", "node", "kind", "eks"), func(ctx SpecContext) {
		cr = waitReady(ctx, name)
		profileControllerIRSA(ctx, cr, "e2e-u-"+suffix, profileA)
	})

	It("gives a notebook pod in A exactly A's credentials from the kubelet's projected token", Label("node", "needs:pod"), func(ctx SpecContext) {
		cr = waitReady(ctx, name)
		roleA, roleB := profileStatus(cr, profileA).RoleARN, profileStatus(cr, profileB).RoleARN
		standInForKubeflow(ctx, "Kubeflow's profile controller is not installed on "+target.Name(), profileA, profileB)
		By(target.Name() + ": the EKS pod identity webhook is not installed (its Go module is not served here), so the suite writes its documented mutation into the pods")

		By("a notebook in A, running as default-editor, gets credentials through the SDK's default chain")
		phase, log, err := env.RunToCompletion(ctx, env.WebIdentityPod(profileA, "e2e-notebook-a", roleA))
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("notebook in %s:\n%s", profileA, log)
		Expect(phase).To(Equal(corev1.PodSucceeded), log)
		Expect(log).To(ContainSubstring("token file: " + framework.TokenPath))
		Expect(log).To(MatchRegexp(`caller: arn:aws:sts::\d{12}:assumed-role/` + regexp.QuoteMeta(roleName(roleA)) + `/\S+`))

		By("the kubelet's token for A satisfies A's trust and not B's")
		claimsA := claimsIn(log)
		Expect(claimsA.Issuer).To(Equal(env.Cluster.ExpectIssuerURL))
		Expect(claimsA.Subject).To(Equal(policy.ServiceAccountSubject(profileA, editor)))
		Expect(claimsA.Audience).To(ConsistOf(policy.Audience))
		Expect(allowed(ctx, cr, roleA, claimsA)).To(BeTrue())
		Expect(allowed(ctx, cr, roleB, claimsA)).To(BeFalse())

		By("the same notebook in B's namespace, given A's role, is refused")
		phase, log, err = env.RunToCompletion(ctx, env.WebIdentityPod(profileB, "e2e-notebook-b-as-a", roleA))
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("notebook in %s with A's role:\n%s", profileB, log)
		Expect(phase).To(Equal(corev1.PodFailed), log)
		Expect(log).To(ContainSubstring("AccessDenied"))
		Expect(allowed(ctx, cr, roleA, claimsIn(log))).To(BeFalse(), "B's token does not satisfy A's trust")
	})

	It("diagnoses a notebook's chain whole, and names each broken link", Label("node", "needs:pod", "diagnose"), func(ctx SpecContext) {
		cr = waitReady(ctx, name)
		diagnoseChain(ctx, cr, profileA, profileB, "e2e-d-"+suffix, policyB)
	})

	It("rolls the profile controller's pods once when its role changes", Label("node", "needs:pod"), func(ctx SpecContext) {
		cr = waitReady(ctx, name)
		By("a stand-in for Kubeflow's profiles-deployment, running a small image")
		dep := profilesDeployment(env.PauseImage)
		Expect(env.Kube.Resources().Create(ctx, dep)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { _ = env.Kube.Resources().Delete(ctx, dep) })
		first := cr.Status.ProfileController.Role.ARN
		revision := waitRolledTo(ctx, dep, first)

		By("a new role for the profile controller rolls its pods, the Deployment controller doing the rollout")
		renamed := "kf-profile-controller-" + name
		DeferCleanup(func(ctx SpecContext) { deleteRole(ctx, renamed) })
		updateSpec(ctx, name, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.ProfileController.RoleName = renamed })
		Eventually(func() string { return waitReady(ctx, name).Status.ProfileController.Role.ARN }).Should(HaveSuffix("/" + renamed))
		Expect(waitRolledTo(ctx, dep, waitReady(ctx, name).Status.ProfileController.Role.ARN)).To(Equal(revision+1), "one rollout for one change of role")

		By("and back")
		updateSpec(ctx, name, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.ProfileController.RoleName = "" })
		Eventually(func() string { return waitReady(ctx, name).Status.ProfileController.Role.ARN }).Should(Equal(first))
		Expect(waitRolledTo(ctx, dep, first)).To(Equal(revision+2), "one rollout for one change of role")

		By("and not again at the next resync, with the role unchanged")
		Consistently(func() int { return revisionOf(ctx, dep) }, pastAResync(), pollInterval).Should(Equal(revision + 2))
	})

	It("repairs drift: a removed annotation and a detached policy come back", Label("local", "node", "kind", "eks"), func(ctx SpecContext) {
		cr = waitReady(ctx, name)
		sa, err := env.Clientset.CoreV1().ServiceAccounts("kubeflow").Get(ctx, controllerSA, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		delete(sa.Annotations, roleARNAnnotation)
		_, err = env.Clientset.CoreV1().ServiceAccounts("kubeflow").Update(ctx, sa, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		roleA := roleName(profileStatus(cr, profileA).RoleARN)
		_, err = env.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(roleA), PolicyArn: aws.String(policyA)})
		Expect(err).NotTo(HaveOccurred())

		Eventually(func() (map[string]string, error) {
			sa, err := env.Clientset.CoreV1().ServiceAccounts("kubeflow").Get(ctx, controllerSA, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return sa.Annotations, nil
		}).Should(HaveKeyWithValue(roleARNAnnotation, cr.Status.ProfileController.Role.ARN), "restored through the watch")
		By("the detached policy is back within the resync period of " + env.ResyncPeriod)
		Eventually(func() []string { return attached(ctx, roleA) }).Should(ConsistOf(policyA))
	})

	It("keeps the Profiles and roles when deleted with the default policy", Label("local", "node", "kind", "eks", "teardown"), func(ctx SpecContext) {
		cr = waitReady(ctx, name)
		roles := []string{roleName(profileStatus(cr, profileA).RoleARN), roleName(profileStatus(cr, profileB).RoleARN)}
		namespacesOfProfiles(ctx, profileA, profileB)
		Expect(env.Kube.Resources().Delete(ctx, cr)).To(Succeed())
		Expect(wait.For(conditions.New(env.Kube.Resources()).ResourceDeleted(cr), wait.WithContext(ctx), wait.WithTimeout(defaultTimeout), wait.WithInterval(pollInterval))).To(Succeed())
		for _, p := range []string{profileA, profileB} {
			profile := desired.NewProfileObject()
			Expect(env.Kube.Resources().Get(ctx, p, "", profile)).To(Succeed(), "Profile %s must survive", p)
			Expect(profile.GetDeletionTimestamp()).To(BeNil())
			_, annotateOnly, _ := desired.ProfilePlugin(profile)
			Expect(annotateOnly).To(BeTrue())
		}
		for _, r := range roles {
			_, err := env.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(r)})
			Expect(err).NotTo(HaveOccurred(), "role %s must survive", r)
		}
		if ok, _ := target.Has(framework.NeedsPod); ok {
			By("no namespace is deleted, with the controller manager's garbage collector running")
			Consistently(func(g Gomega) {
				for _, p := range []string{profileA, profileB} {
					ns, err := env.Clientset.CoreV1().Namespaces().Get(ctx, p, metav1.GetOptions{})
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(ns.DeletionTimestamp).To(BeNil(), "namespace %s", p)
				}
			}, pastAResync(), pollInterval).Should(Succeed())
		}
	})

	It("deletes every IAM resource and Profile it created when asked", Label("local", "node", "kind", "eks", "teardown"), func(ctx SpecContext) {
		By("the same object, recreated with the Delete policy, takes the retained resources back")
		cr = newSpec(v1alpha1.DeletionPolicySpec{Profiles: v1alpha1.DeletionPolicyDelete, ClusterIAM: v1alpha1.DeletionPolicyDelete})
		Expect(env.Kube.Resources().Create(ctx, cr)).To(Succeed())
		cr = waitReady(ctx, name)
		for _, p := range []string{profileA, profileB} {
			Expect(profileStatus(cr, p).State).To(Equal(v1alpha1.ProfileStateManaged))
		}
		created := createdResources(cr)
		namespacesOfProfiles(ctx, profileA, profileB)
		standIn := false
		if ok, why := target.Has(framework.NeedsKubeflow); !ok {
			By(fmt.Sprintf("%s: %s; the suite holds each Profile with the finalizer Kubeflow puts on it", target.Name(), why))
			standIn = true
			for _, p := range []string{profileA, profileB} {
				setFinalizer(ctx, p, true)
			}
		}

		Expect(env.Kube.Resources().Delete(ctx, cr)).To(Succeed())
		if standIn {
			By("the Profiles go only after the Kubeflow finalizer is released, and the roles only after them")
			Eventually(func(g Gomega) {
				for _, p := range []string{profileA, profileB} {
					profile := desired.NewProfileObject()
					g.Expect(env.Kube.Resources().Get(ctx, p, "", profile)).To(Succeed())
					g.Expect(profile.GetDeletionTimestamp()).NotTo(BeNil(), "Profile %s is being deleted", p)
				}
			}).Should(Succeed())
			Consistently(func(g Gomega) {
				for _, r := range created.roles {
					_, err := env.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(r)})
					g.Expect(err).NotTo(HaveOccurred(), "role %s is kept while its Profile exists", r)
				}
			}, pastAResync(), pollInterval).Should(Succeed())
			for _, p := range []string{profileA, profileB} {
				setFinalizer(ctx, p, false)
			}
		}
		Expect(wait.For(conditions.New(env.Kube.Resources()).ResourceDeleted(cr), wait.WithContext(ctx), wait.WithTimeout(defaultTimeout), wait.WithInterval(pollInterval))).To(Succeed())
		for _, p := range []string{profileA, profileB} {
			err := env.Kube.Resources().Get(ctx, p, "", desired.NewProfileObject())
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "Profile %s: %v", p, err)
		}
		for _, r := range created.roles {
			_, err := env.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(r)})
			Expect(err).To(MatchError(ContainSubstring("NoSuchEntity")), "role %s", r)
		}
		_, err := env.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(created.policy)})
		Expect(err).To(MatchError(ContainSubstring("NoSuchEntity")))
		if created.provider != "" {
			_, err := env.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(created.provider)})
			Expect(err).To(MatchError(ContainSubstring("NoSuchEntity")))
		} else {
			GinkgoWriter.Println("the OIDC provider existed before the suite and is left as it was")
		}
		if ok, _ := target.Has(framework.NeedsPod); ok && standIn {
			By("the Profiles' namespaces go with them, through the garbage collector")
			Eventually(func(g Gomega) {
				for _, p := range []string{profileA, profileB} {
					_, err := env.Clientset.CoreV1().Namespaces().Get(ctx, p, metav1.GetOptions{})
					g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "namespace %s: %v", p, err)
				}
			}).Should(Succeed())
		}
	})

	AfterAll(func(ctx SpecContext) {
		for _, p := range []string{profileA, profileB} {
			_ = env.Clientset.CoreV1().Namespaces().Delete(ctx, p, metav1.DeleteOptions{})
		}
	})
})

// defaultTimeout bounds every wait for the operator; pollInterval is how
// often a wait looks; iamPropagation bounds how long a change in IAM may
// take to be seen by STS.
const (
	defaultTimeout = 3 * time.Minute
	pollInterval   = 250 * time.Millisecond
	iamPropagation = 2 * time.Minute
)

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func jsonDoc(raw string) apiextensionsv1.JSON { return apiextensionsv1.JSON{Raw: []byte(raw)} }

func mustParse(raw string) policy.Document {
	GinkgoHelper()
	doc, err := policy.Parse(raw)
	Expect(err).NotTo(HaveOccurred())
	return doc
}

func createPolicy(ctx context.Context, name, action string) string {
	GinkgoHelper()
	out, err := env.IAM.CreatePolicy(ctx, &iam.CreatePolicyInput{
		PolicyName:     aws.String(name),
		PolicyDocument: aws.String(fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"%s","Resource":"*"}]}`, action)),
	})
	Expect(err).NotTo(HaveOccurred())
	return aws.ToString(out.Policy.Arn)
}

// waitReady waits until the object is Ready for its current generation.
func waitReady(ctx context.Context, name string) *v1alpha1.AwsKubeflowProfiles {
	GinkgoHelper()
	cr := &v1alpha1.AwsKubeflowProfiles{ObjectMeta: metav1.ObjectMeta{Name: name}}
	err := wait.For(conditions.New(env.Kube.Resources()).ResourceMatch(cr, func(obj k8s.Object) bool {
		return readyForItsGeneration(obj.(*v1alpha1.AwsKubeflowProfiles))
	}), wait.WithContext(ctx), wait.WithTimeout(defaultTimeout), wait.WithInterval(pollInterval))
	if err != nil {
		_ = env.Kube.Resources().Get(ctx, name, "", cr)
		Fail(fmt.Sprintf("%s did not become Ready: %v; conditions: %+v", name, err, cr.Status.Conditions))
	}
	Expect(env.Kube.Resources().Get(ctx, name, "", cr)).To(Succeed())
	return cr
}

func profileStatus(cr *v1alpha1.AwsKubeflowProfiles, name string) v1alpha1.ProfileStatus {
	p, _ := cr.Status.Profile(name)
	return p
}

func roleName(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

func trustOf(ctx context.Context, role string) policy.Document {
	GinkgoHelper()
	doc, err := trustOfRole(ctx, role)
	Expect(err).NotTo(HaveOccurred())
	return doc
}

// exactTrust is written out here, not built by the code under test.
func exactTrust(providerARN, issuerHost, namespace, sa string) policy.Document {
	return mustParse(fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:aud":"sts.amazonaws.com","%s:sub":"system:serviceaccount:%s:%s"}}}]}`,
		providerARN, issuerHost, issuerHost, namespace, sa))
}

func attached(ctx context.Context, role string) []string {
	GinkgoHelper()
	arns, err := awsiamtest.AttachedPolicyARNs(ctx, env.IAM, role)
	Expect(err).NotTo(HaveOccurred())
	return arns
}

func envOf(pod *corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, e := range pod.Spec.Containers[0].Env {
		out[e.Name] = e.Value
	}
	return out
}

// notebookEnv points the pod's AWS CLI at the emulator on kind, STS by its
// own variable too, since the web-identity credential provider builds its
// STS client from the STS endpoint settings; on EKS the webhook's variables
// are all it needs.
func notebookEnv() []corev1.EnvVar {
	if target.Name() == "kind" {
		const localstack = "http://localstack.localstack.svc.cluster.local:4566"
		return []corev1.EnvVar{{Name: "AWS_ENDPOINT_URL", Value: localstack}, {Name: "AWS_ENDPOINT_URL_STS", Value: localstack}}
	}
	return nil
}

type created struct {
	roles    []string
	policy   string
	provider string
}

// createdResources lists the IAM resources the status says the operator
// created.
func createdResources(cr *v1alpha1.AwsKubeflowProfiles) created {
	c := created{policy: cr.Status.ProfileController.Policy.ARN, roles: []string{roleName(cr.Status.ProfileController.Role.ARN)}}
	for _, p := range cr.Status.Profiles {
		c.roles = append(c.roles, roleName(p.RoleARN))
	}
	if cr.Status.OIDCProvider.Ownership == v1alpha1.OwnershipCreated {
		c.provider = cr.Status.OIDCProvider.ARN
	}
	return c
}
