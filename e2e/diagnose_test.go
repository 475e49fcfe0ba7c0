package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/diagnose"
	"github.com/awskubeflowprofiles/operator/internal/kubeflowtest"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// standInManager is the field manager the suite writes default-editor's
// annotation with where Kubeflow's profile controller does not run; the
// diagnosis dates the annotation by its managed fields.
const standInManager = "kubeflow-profile-controller-stand-in"

// diagnoseChain runs the kubectl plugin's diagnose against a healthy chain
// for the managed profile and for an unmanaged Profile named unmanaged, then
// breaks one link at a time and checks that the diagnosis names that link
// and only that one. other is a namespace the narrowed trust admits instead;
// the admin's role of the unmanaged Profile gets policyARN.
func diagnoseChain(ctx context.Context, cr *v1alpha1.AwsKubeflowProfiles, profile, other, unmanaged, policyARN string) {
	GinkgoHelper()
	roleARN := profileStatus(cr, profile).RoleARN
	standInForKubeflow(ctx, "Kubeflow's profile controller is not installed on "+target.Name(), profile, other)
	By(target.Name() + ": the suite annotates " + profile + "/" + editor + " with the Profile's role, as Kubeflow's plugin does")
	setEditorAnnotation(ctx, profile, roleARN)
	By("an unmanaged Profile whose admin's role trusts its default-editor, as the plugin leaves it")
	u := createUnmanagedProfile(ctx, cr, unmanaged, "/")
	standInPlugin(ctx, u, kubeflowtest.Add)
	_, err := env.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(u.role), PolicyArn: aws.String(policyARN)})
	Expect(err).NotTo(HaveOccurred())

	By(target.Name() + ": the EKS pod identity webhook's module is not served here; the suite serves a real mutating webhook that does its documented mutation, registered at a URL as EKS registers its own")
	hook, err := env.StartPodIdentityWebhook(ctx, profile, unmanaged)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) { Expect(hook.Stop(ctx)).To(Succeed(), "every admission request answered") })

	By("a notebook created now is mutated by the webhook and gets the profile's credentials")
	const notebook, early = "e2e-diagnose-notebook", "e2e-diagnose-early"
	phase, log, err := env.RunToCompletion(ctx, env.NotebookPod(profile, notebook))
	Expect(err).NotTo(HaveOccurred())
	Expect(phase).To(Equal(corev1.PodSucceeded), log)
	Expect(log).To(MatchRegexp(`caller: arn:aws:sts::\d{12}:assumed-role/` + regexp.QuoteMeta(roleName(roleARN)) + `/\S+`))

	By("and its chain diagnoses whole, as the operator's summary on the status says")
	expectWhole(ctx, profile, notebook)
	Eventually(chainSummary).WithArguments(ctx, cr.Name, profile).Should(Equal(string(v1alpha1.ChainWhole) + " "))

	By("default-editor's annotation removed: the service account link fails, in the diagnosis and in the summary")
	setEditorAnnotation(ctx, profile, "")
	expectBroken(ctx, profile, notebook, diagnose.LinkServiceAccount, "has no "+roleARNAnnotation+" annotation")
	Eventually(chainSummary).WithArguments(ctx, cr.Name, profile).Should(Equal(string(v1alpha1.ChainBroken) + " " + diagnose.LinkServiceAccount))

	By("a pod created before the annotation is back: the pod link fails")
	pod := env.NotebookPod(profile, early)
	Expect(env.Kube.Resources().Create(ctx, pod)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) { _ = env.Kube.Resources().Delete(ctx, pod) })
	// The API server keeps times to the second: the annotation must be
	// written in a later second than the pod's creation to be after it.
	Eventually(time.Now).WithPolling(50 * time.Millisecond).Should(BeTemporally(">=", pod.CreationTimestamp.Add(time.Second)))
	setEditorAnnotation(ctx, profile, roleARN)
	created := pod.CreationTimestamp.UTC().Format(time.RFC3339)
	if editorHasManagedFields(ctx, profile) {
		expectBroken(ctx, profile, early, diagnose.LinkPod, "was created at "+created+", at or before "+standInManager)
	} else {
		GinkgoWriter.Println("this API server keeps no managed fields for default-editor, so the diagnosis cannot date its annotation")
		expectBroken(ctx, profile, early, diagnose.LinkPod, "when it was created at "+created+"; the API server keeps no record of when "+editor+" was annotated")
	}
	expectWhole(ctx, profile, notebook)

	By("the unmanaged Profile's trust narrowed to another namespace: the trust link fails")
	expectWhole(ctx, unmanaged, "")
	narrowed := policy.WebIdentityTrust(cr.Status.OIDCProvider.ARN, cr.Status.OIDCIssuerURL, policy.ServiceAccountSubject(other, editor))
	_, err = env.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(u.role), PolicyDocument: aws.String(narrowed.Marshal())})
	Expect(err).NotTo(HaveOccurred())
	expectBroken(ctx, unmanaged, "", diagnose.LinkTrust, "does not admit "+policy.ServiceAccountSubject(unmanaged, editor))

	By("the OIDC provider's client ID removed: the provider link fails")
	providerARN := cr.Status.OIDCProvider.ARN
	provider, err := env.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARN)})
	Expect(err).NotTo(HaveOccurred())
	Expect(provider.ClientIDList).To(ContainElement(policy.Audience))
	url := aws.ToString(provider.Url)
	if !strings.HasPrefix(url, "https://") {
		url = "https://" + url
	}
	restore := func(ctx context.Context) {
		replaceProvider(ctx, providerARN, url, provider.ClientIDList, provider.ThumbprintList)
	}
	DeferCleanup(func(ctx SpecContext) { restore(ctx) })
	replaceProvider(ctx, providerARN, url, nil, provider.ThumbprintList)
	expectBroken(ctx, profile, notebook, diagnose.LinkOIDCProvider, "does not have client ID "+policy.Audience)

	By("with the client ID back, the chain is whole again")
	restore(ctx)
	expectWhole(ctx, profile, notebook)
}

// chainSummary is the operator's chain summary of a profile on its
// object's status, as "state link".
func chainSummary(ctx context.Context, name, profile string) (string, error) {
	cr := &v1alpha1.AwsKubeflowProfiles{}
	if err := env.Kube.Resources().Get(ctx, name, "", cr); err != nil {
		return "", err
	}
	st := profileStatus(cr, profile)
	return string(st.Chain) + " " + st.ChainBrokenLink, nil
}

// setEditorAnnotation sets default-editor's role annotation, or removes it
// for "", as the stand-in for Kubeflow's plugin.
func setEditorAnnotation(ctx context.Context, namespace, roleARN string) {
	GinkgoHelper()
	Eventually(func() error {
		sa, err := env.Clientset.CoreV1().ServiceAccounts(namespace).Get(ctx, editor, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if roleARN == "" {
			delete(sa.Annotations, roleARNAnnotation)
		} else {
			if sa.Annotations == nil {
				sa.Annotations = map[string]string{}
			}
			sa.Annotations[roleARNAnnotation] = roleARN
		}
		_, err = env.Clientset.CoreV1().ServiceAccounts(namespace).Update(ctx, sa, metav1.UpdateOptions{FieldManager: standInManager})
		return err
	}).Should(Succeed())
}

// editorHasManagedFields tells whether the API server records who wrote
// default-editor's fields, and when: the one of the local and node targets
// records none for objects written without server-side apply (measured
// with v1.37.2 built from its module).
func editorHasManagedFields(ctx context.Context, namespace string) bool {
	GinkgoHelper()
	sa, err := env.Clientset.CoreV1().ServiceAccounts(namespace).Get(ctx, editor, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	return len(sa.ManagedFields) > 0
}

// replaceProvider gives the OIDC provider these client IDs. kumo has no
// call to remove or add one, so the provider is deleted and created again
// with the same URL, which keeps its ARN. The operator may create it in
// between (a provider it created is gone); the next try deletes that one.
func replaceProvider(ctx context.Context, arn, url string, clientIDs, thumbprints []string) {
	GinkgoHelper()
	Eventually(func() error {
		_, err := env.IAM.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
		if err != nil && !strings.Contains(err.Error(), "NoSuchEntity") {
			return err
		}
		out, err := env.IAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
			Url: aws.String(url), ClientIDList: clientIDs, ThumbprintList: thumbprints,
		})
		if err != nil {
			return err
		}
		if got := aws.ToString(out.OpenIDConnectProviderArn); got != arn {
			return StopTrying(fmt.Sprintf("the provider came back as %s, not %s", got, arn))
		}
		return nil
	}).Should(Succeed())
}

// runDiagnose runs the plugin and prints its report for the run's log.
func runDiagnose(ctx context.Context, profile, pod string) (diagnose.Report, int) {
	GinkgoHelper()
	report, exit, err := env.Diagnose(ctx, profile, pod)
	Expect(err).NotTo(HaveOccurred())
	GinkgoWriter.Printf("kubectl awskubeflowprofiles diagnose -n %s %s: exit %d\n", profile, pod, exit)
	for _, c := range report.Checks {
		GinkgoWriter.Printf("  %-12s %-22s %s\n", c.Status, c.Link, c.Detail)
		if c.Fix != "" {
			GinkgoWriter.Printf("  %-12s %-22s fix: %s\n", "", "", c.Fix)
		}
	}
	return report, exit
}

// expectWhole checks that every link passes and the plugin exits 0.
func expectWhole(ctx context.Context, profile, pod string) {
	GinkgoHelper()
	report, exit := runDiagnose(ctx, profile, pod)
	Expect(report.Whole()).To(BeTrue(), "%+v", report.Checks)
	Expect(exit).To(Equal(0))
	links := 8
	if pod != "" {
		links = 9
	}
	Expect(report.Checks).To(HaveLen(links), "every link checked")
}

// expectBroken checks that link, and no other, fails with detail and a fix,
// and that the plugin exits 1.
func expectBroken(ctx context.Context, profile, pod, link, detail string) {
	GinkgoHelper()
	report, exit := runDiagnose(ctx, profile, pod)
	Expect(exit).To(Equal(1), "a broken chain")
	var failed []diagnose.Check
	for _, c := range report.Checks {
		if c.Status == diagnose.Fail {
			failed = append(failed, c)
		}
	}
	Expect(failed).To(HaveLen(1), "only the broken link fails: %+v", report.Checks)
	Expect(failed[0].Link).To(Equal(link))
	Expect(failed[0].Detail).To(ContainSubstring(detail))
	Expect(failed[0].Fix).NotTo(BeEmpty())
}
