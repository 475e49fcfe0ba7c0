package e2e

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/e2e/framework"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/kubeflowtest"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// kubeflowTrustTimeout bounds how long Kubeflow's profile controller may
// take to reconcile a new Profile and edit its role through IAM.
const kubeflowTrustTimeout = 3 * time.Minute

// unmanagedProfile is a Profile a Kubeflow user creates with the plugin,
// outside any AwsKubeflowProfiles: the case the profile controller's own
// IRSA exists for. Its role is an admin's, and the plugin edits its trust.
type unmanagedProfile struct {
	name, role, roleARN string
	initialTrust        string
}

// createUnmanagedProfile creates the admin's role at path, trusting only a
// placeholder service account of the Profile's namespace through the
// cluster's OIDC provider, checks that it admits no pod of the namespace
// yet, and creates the Profile naming it. Both are removed when the spec
// ends. (Kubeflow puts its finalizer on a Profile only once the plugin has
// edited the role, so a Profile whose role IAM keeps the profile controller
// from editing is deleted at once.)
func createUnmanagedProfile(ctx context.Context, cr *v1alpha1.AwsKubeflowProfiles, name, path string) unmanagedProfile {
	GinkgoHelper()
	issuerHost := policy.IssuerHost(cr.Status.OIDCIssuerURL)
	u := unmanagedProfile{name: name, role: "e2e-unmanaged-" + name}
	// The plugin reads Statement[0]'s Federated principal and sub list, so
	// the admin's trust has that shape; the placeholder admits no pod.
	u.initialTrust = fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:aud":"sts.amazonaws.com","%s:sub":"system:serviceaccount:%s:e2e-placeholder"}}}]}`,
		cr.Status.OIDCProvider.ARN, issuerHost, issuerHost, name)
	out, err := env.IAM.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName: aws.String(u.role), Path: aws.String(path), AssumeRolePolicyDocument: aws.String(u.initialTrust),
		Tags: []iamtypes.Tag{{Key: aws.String(desired.TagCluster), Value: aws.String(env.Cluster.Name)}, {Key: aws.String("e2e"), Value: aws.String(cr.Name)}},
	})
	Expect(err).NotTo(HaveOccurred())
	u.roleARN = aws.ToString(out.Role.Arn)
	DeferCleanup(func(ctx SpecContext) { deleteRole(ctx, u.role) })
	admitted, err := u.admits(ctx, cr, name)
	Expect(err).NotTo(HaveOccurred())
	Expect(admitted).To(BeFalse(), "before Kubeflow acts, the role admits no pod of %s", name)

	profile := desired.NewProfileObject()
	profile.SetName(name)
	Expect(unstructured.SetNestedField(profile.Object, map[string]any{"kind": "User", "name": name + "@example.com"}, "spec", "owner")).To(Succeed())
	Expect(unstructured.SetNestedSlice(profile.Object, []any{map[string]any{
		"kind": "AwsIamForServiceAccount", "spec": map[string]any{"awsIamRole": u.roleARN},
	}}, "spec", "plugins")).To(Succeed())
	Expect(env.Kube.Resources().Create(ctx, profile)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) { deleteProfileAndWait(ctx, name) })
	return u
}

// admits tells whether the role's trust, as IAM holds it, admits a token of
// namespace's default-editor, judged by the operator's evaluator.
func (u unmanagedProfile) admits(ctx context.Context, cr *v1alpha1.AwsKubeflowProfiles, namespace string) (bool, error) {
	doc, err := trustOfRole(ctx, u.role)
	if err != nil {
		return false, err
	}
	d, err := policy.Evaluate(doc, policy.WebIdentityRequest(cr.Status.OIDCProvider.ARN, cr.Status.OIDCIssuerURL,
		policy.ServiceAccountSubject(namespace, editor), []string{policy.Audience}))
	return d.Allowed, err
}

func deleteProfileAndWait(ctx context.Context, name string) {
	GinkgoHelper()
	err := env.Kube.Resources().Delete(ctx, profileObject(name))
	if apierrors.IsNotFound(err) {
		return
	}
	Expect(err).NotTo(HaveOccurred())
	Eventually(func() bool {
		return apierrors.IsNotFound(env.Kube.Resources().Get(ctx, name, "", desired.NewProfileObject()))
	}).WithTimeout(kubeflowTrustTimeout).Should(BeTrue(), "Kubeflow's finalizer lets Profile %s go", name)
}

// editorRoleAnnotation is the role default-editor of namespace is annotated
// with, for polling.
func editorRoleAnnotation(ctx context.Context, namespace string) (string, error) {
	sa, err := env.Clientset.CoreV1().ServiceAccounts(namespace).Get(ctx, editor, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return sa.Annotations[roleARNAnnotation], nil
}

// trustOfRole reads a role's trust without failing the spec, for polling.
func trustOfRole(ctx context.Context, role string) (policy.Document, error) {
	return awsiamtest.RoleTrust(ctx, env.IAM, role)
}

func profileObject(name string) *unstructured.Unstructured {
	p := desired.NewProfileObject()
	p.SetName(name)
	return p
}

// profileControllerIRSA is the spec for the profile controller's own IRSA:
// for a Profile the operator does not manage, Kubeflow's plugin reads and
// rewrites the role's trust with the credentials the operator gave it, and
// nothing else makes that trust admit the Profile's default-editor. Where
// Kubeflow's profile controller does not run, the suite does the plugin's
// part with its own credentials (kubeflowtest mirrors the plugin's edits),
// which checks the spec's own reading of IAM but not the controller's IRSA.
func profileControllerIRSA(ctx context.Context, cr *v1alpha1.AwsKubeflowProfiles, name, otherNamespace string) {
	GinkgoHelper()
	kubeflow, why := target.Has(framework.NeedsKubeflow)
	By("an admin's role under the path the profile controller's policy covers, and a Profile for it the operator does not manage")
	u := createUnmanagedProfile(ctx, cr, name, fmt.Sprintf("/kubeflow/%s/", env.Cluster.Name))
	if !kubeflow {
		By(fmt.Sprintf("%s: %s; the suite does what the plugin does, with its own credentials", target.Name(), why))
		standInPlugin(ctx, u, kubeflowtest.Add)
	}

	By("Kubeflow annotates the Profile's default-editor with the role")
	Eventually(editorRoleAnnotation).WithArguments(ctx, name).WithTimeout(kubeflowTrustTimeout).Should(Equal(u.roleARN))

	By("and, as the profile controller's role, adds that default-editor to the role's trust in IAM")
	Eventually(func() (bool, error) { return u.admits(ctx, cr, name) }).WithTimeout(kubeflowTrustTimeout).
		Should(BeTrue(), "the trust of %s admits %s/%s; if not, the profile controller's log in the artifacts says why its IAM call failed", u.role, name, editor)
	Expect(u.admits(ctx, cr, otherNamespace)).To(BeFalse(), "and no other namespace's")

	By("deleting the Profile: Kubeflow's finalizer takes the subject out of the trust again, with the same credentials")
	if kubeflow {
		// Kubeflow adds its finalizer just after the plugin's edit; a Profile
		// deleted before that would go without the revoke.
		Eventually(func() ([]string, error) {
			p := desired.NewProfileObject()
			err := env.Kube.Resources().Get(ctx, name, "", p)
			return p.GetFinalizers(), err
		}).WithTimeout(kubeflowTrustTimeout).Should(ContainElement(kubeflowFinalizer))
	}
	deleteProfileAndWait(ctx, name)
	if !kubeflow {
		standInPlugin(ctx, u, func(encoded, namespace string) (string, bool, error) {
			doc, err := kubeflowtest.Revoke(encoded, namespace)
			return doc, true, err
		})
	}
	Eventually(func() (bool, error) { return u.admits(ctx, cr, name) }).WithTimeout(kubeflowTrustTimeout).Should(BeFalse())

	if ok, why := target.Has(framework.NeedsRealIAM); !ok {
		GinkgoWriter.Printf("%s: %s, so the policy's limit to the role path is not shown here\n", target.Name(), why)
		return
	}
	By("a role outside that path: IAM refuses the profile controller, and the trust stays the admin's")
	outside := createUnmanagedProfile(ctx, cr, name+"-outside", "/")
	Eventually(editorRoleAnnotation).WithArguments(ctx, outside.name).WithTimeout(kubeflowTrustTimeout).
		Should(Equal(outside.roleARN), "Kubeflow has reconciled the Profile")
	Consistently(func() (bool, error) {
		doc, err := trustOfRole(ctx, outside.role)
		if err != nil {
			return false, err
		}
		return policy.Equal(doc, mustParse(outside.initialTrust)), nil
	}).WithTimeout(time.Minute).WithPolling(5 * time.Second).Should(BeTrue())
}

// standInPlugin does the plugin's part for the Profile where Kubeflow's
// profile controller does not run: the namespace and default-editor,
// annotated with the role, and edit applied to the role's trust.
func standInPlugin(ctx context.Context, u unmanagedProfile, edit func(encoded, namespace string) (string, bool, error)) {
	GinkgoHelper()
	if _, err := env.Clientset.CoreV1().Namespaces().Get(ctx, u.name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		Expect(env.EnsureNamespaceAndServiceAccount(ctx, u.name, editor)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			_ = env.Clientset.CoreV1().Namespaces().Delete(ctx, u.name, metav1.DeleteOptions{})
		})
		sa, err := env.Clientset.CoreV1().ServiceAccounts(u.name).Get(ctx, editor, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		sa.Annotations = map[string]string{roleARNAnnotation: u.roleARN}
		_, err = env.Clientset.CoreV1().ServiceAccounts(u.name).Update(ctx, sa, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
	}
	role, err := env.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(u.role)})
	Expect(err).NotTo(HaveOccurred())
	doc, write, err := edit(aws.ToString(role.Role.AssumeRolePolicyDocument), u.name)
	Expect(err).NotTo(HaveOccurred())
	if write {
		_, err = env.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(u.role), PolicyDocument: aws.String(doc)})
		Expect(err).NotTo(HaveOccurred())
	}
}
